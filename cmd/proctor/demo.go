package main

import (
	"context"
	"flag"
	"os"

	"proctor/internal/demo"
)

// runDemo: proctor demo [--exit] (internal/demo.Run does the work).
func runDemo(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	var sf serviceFlags
	sf.register(fs)
	exit := fs.Bool("exit", false, "exit after printing the flags instead of serving the API")
	if err := parse(fs, args); err != nil {
		return err
	}
	return demo.Run(ctx, sf.config(), demo.Options{Exit: *exit}, os.Stdout)
}
