package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"proctor/internal/bench"
)

// runBench: proctor bench [flags] (internal/bench.Run does the work) on the embedded defaults
// in a temporary data directory, or on the configured brokers/database.
func runBench(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var sf serviceFlags
	sf.register(fs)
	n := fs.Int("n", 300, "frames to replay")
	sessions := fs.Int("sessions", 6, "concurrent candidate sessions (spread over Kafka partitions), each at 1 frame/s of capture time")
	rate := fs.Float64("rate", 0, "frames/s to post in total (0 = as fast as the API takes them: measures throughput; a rate below capacity measures latency without queueing)")
	workers := fs.Int("workers", 0, "run the API here and N `proctor worker` processes on the same broker and database; prints 1 process vs N")
	cpuProfile := fs.String("cpuprofile", "", "write a Go CPU profile of the pipeline round (API, Kafka, workers, database) to this file (`go tool pprof bin/proctor FILE`)")
	login := fs.Bool("login", false, "replay the face-login hour before the exam instead of the answering phase: frames measured for the session's gallery and the login check")
	moving := fs.Bool("moving", false, "candidates shift in view every 4 s (crops of the same photo a few percent apart, background included): the schedule's harder case")
	baseline := fs.Bool("baseline", false, "as before issue #14, for comparison: every analyzer on every frame, one transaction and offset commit per frame")
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
	if sf.brokers != "" && sf.topicPrefix == "proctor" {
		// Fresh topics and groups on a shared broker: no earlier run's backlog in the figures.
		sf.topicPrefix = fmt.Sprint("proctor-bench-", time.Now().Unix())
		sf.group = sf.topicPrefix
	}
	if sf.logLevel == "info" {
		sf.logLevel = "warn"
	}
	cfg := sf.config()
	if *baseline {
		cfg.Analyzers.Schedule.PersonsEvery, cfg.Analyzers.Schedule.HeadPoseEvery, cfg.Analyzers.Schedule.StillMax = -1, -1, -1
		cfg.Analyzers.Identity.Every = 3 // identity's own default before the schedule
		cfg.Kafka.MaxBatch = 1
	}
	o := bench.Options{N: *n, Sessions: *sessions, Rate: *rate, Workers: *workers, CPUProfile: *cpuProfile, Moving: *moving, Login: *login}
	if *workers > 0 {
		o.StartWorkers = func(ctx context.Context, count int, brokers []string) (func() error, error) {
			return startWorkers(ctx, sf, count, brokers)
		}
	}
	return bench.Run(ctx, cfg, o, os.Stdout, os.Stderr)
}

// startWorkers starts count `proctor worker` processes (this binary) with the bench's database,
// topics and analyzers on brokers, and returns a function that stops them (SIGTERM, then wait).
func startWorkers(ctx context.Context, sf serviceFlags, count int, brokers []string) (func() error, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	var cmds []*exec.Cmd
	stop := func() error {
		var errs []error
		for _, c := range cmds {
			_ = c.Process.Signal(syscall.SIGTERM)
		}
		for _, c := range cmds {
			if err := c.Wait(); err != nil && !strings.Contains(err.Error(), "signal: terminated") {
				errs = append(errs, fmt.Errorf("worker %d: %w", c.Process.Pid, err))
			}
		}
		return errors.Join(errs...)
	}
	for i := range count {
		c := exec.CommandContext(ctx, self, "worker",
			"--kafka-brokers", strings.Join(brokers, ","),
			"--kafka-topic-prefix", sf.topicPrefix, "--kafka-group", sf.group,
			"--kafka-partitions", strconv.Itoa(sf.partitions),
			"--concurrency", strconv.Itoa(sf.concurrency), "--frame-readers", strconv.Itoa(sf.frameReaders),
			"--data-dir", sf.dataDir, "--database-dsn", sf.dsn, "--encryption-key-file", sf.keyFile,
			"--analyzers", sf.analyzers, "--identity-model", sf.identityModel, "--identity-first-look", sf.firstLook, "--persons-model", sf.personsModel, "--evidence-persons-model", sf.evidencePersonsModel,
			"--log-level", sf.logLevel,
			"--addr", "127.0.0.1:0")
		c.Stdout, c.Stderr = os.Stderr, os.Stderr
		if err := c.Start(); err != nil {
			_ = stop()
			return nil, fmt.Errorf("start worker %d: %w", i, err)
		}
		cmds = append(cmds, c)
	}
	return stop, nil
}
