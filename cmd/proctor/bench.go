package main

import (
	"context"
	"flag"
	"os"

	"proctor/internal/bench"
)

// runBench: proctor bench [flags] (internal/bench.Run does the work) on the embedded defaults
// in a temporary data directory, or on the configured brokers/database.
func runBench(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var sf serviceFlags
	sf.register(fs)
	n := fs.Int("n", 300, "frames to replay")
	sessions := fs.Int("sessions", 6, "concurrent candidate sessions (spread over Kafka partitions)")
	rate := fs.Float64("rate", 0, "frames/s to post in total (0 = as fast as the API takes them: measures throughput; a rate below capacity measures latency without queueing)")
	fs.Lookup("addr").DefValue = "127.0.0.1:0"
	if err := parse(fs, args); err != nil {
		return err
	}
	if sf.addr == ":8080" {
		sf.addr = "127.0.0.1:0"
	}
	if sf.dataDir == "data" && sf.dsn == "" {
		dir, err := os.MkdirTemp("", "proctor-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		sf.dataDir = dir
	}
	// bench measures capacity: a backpressure bound would cap the queue it measures, so it is
	// off unless asked for.
	explicit := false
	fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "max-lag" })
	if !explicit && os.Getenv("PROCTOR_MAX_LAG") == "" {
		sf.maxLag = 0
	}
	if sf.logLevel == "info" {
		sf.logLevel = "warn"
	}
	return bench.Run(ctx, sf.config(), bench.Options{N: *n, Sessions: *sessions, Rate: *rate}, os.Stdout, os.Stderr)
}
