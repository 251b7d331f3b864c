package main

import (
	"context"
	"errors"
)

// runEval measures analyzers against labelled data: proctor eval audio|... [flags]. Each kind of
// evaluation is one case here.
func runEval(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageError{errors.New("usage: proctor eval audio|vision --data DIR")}
	}
	switch args[0] {
	case "audio":
		return runEvalAudio(ctx, args[1:])
	case "vision":
		return runEvalVision(ctx, args[1:])
	default:
		return usageError{errors.New("unknown evaluation " + args[0] + " (known: audio, vision)")}
	}
}
