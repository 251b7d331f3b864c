package main

import (
	"context"
	"errors"
	"flag"
	"os"
	"strings"

	"proctor/analyzers"
	"proctor/internal/eval"
)

// runEvalVision is `proctor eval vision --data DIR`: every vision check on a labelled folder
// (layout in internal/eval's package doc; ../shared/data/faces works as is).
func runEvalVision(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("eval vision", flag.ContinueOnError)
	data := fs.String("data", "../shared/data/faces", "labelled folder: identities*/NAME/*, multi_person/*, optional no_face/*")
	names := fs.String("analyzers", strings.Join(eval.DefaultAnalyzers, ","), "analyzers to evaluate, in order")
	only := fs.String("checks", "", "comma-separated checks to run (default all: "+checkNames()+")")
	quiet := fs.Bool("q", false, "no progress or per-image misses on stderr")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{errors.New("usage: proctor eval vision [--data DIR] [--checks faces,identity,...]")}
	}
	var cfg analyzers.Config
	for _, n := range strings.Split(*names, ",") {
		if n = strings.TrimSpace(n); n != "" {
			cfg.Analyzers = append(cfg.Analyzers, n)
		}
	}
	o := eval.Options{Data: *data, Analyzers: cfg, Log: os.Stderr}
	if *quiet {
		o.Log = nil
	}
	for _, c := range strings.Split(*only, ",") {
		if c = strings.TrimSpace(c); c != "" {
			o.Only = append(o.Only, c)
		}
	}
	rep, err := eval.Run(ctx, o)
	if err != nil {
		return err
	}
	return rep.Print(os.Stdout)
}

func checkNames() string {
	var n []string
	for _, c := range eval.Checks {
		n = append(n, c.Name)
	}
	return strings.Join(n, ",")
}
