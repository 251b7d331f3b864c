package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"proctor/internal/faults"
)

// runFaults: proctor faults --kafka-brokers B --database-dsn DSN [flags] (internal/faults does
// the work; scripts/faults.sh starts Kafka and PostgreSQL and runs it).
func runFaults(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("faults", flag.ContinueOnError)
	self, _ := os.Executable()
	bin := fs.String("bin", self, "the proctor binary the api and worker processes run")
	brokers := fs.String("kafka-brokers", env("PROCTOR_KAFKA_BROKERS", ""), "Apache Kafka bootstrap brokers (loopback; required)")
	dsn := fs.String("database-dsn", env("PROCTOR_DATABASE_DSN", ""), "PostgreSQL DSN (required)")
	scripts := fs.String("scripts", "scripts", "folder of kafka.sh and postgres.sh (halt|resume restart the broker and the database; KAFKA_PORT and PGPORT_TEST choose the instances)")
	dir := fs.String("dir", "", "folder for the processes' logs (default: a new temporary folder)")
	only := fs.String("only", "", "comma-separated faults to run: "+strings.Join(faults.Faults, ","))
	sessions := fs.Int("sessions", 4, "sessions replayed per fault (the demo timeline: 31 frames each)")
	burst := fs.Int("burst-sessions", 16, "sessions posted at once, as fast as the API answers, in the burst")
	maxLag := fs.Duration("max-lag", 10*time.Second, "the API's --max-lag")
	analyzers := fs.String("analyzers", "", "the workers' --analyzers (default: theirs)")
	kills := fs.Int("kills", 4, "SIGKILLs in the worker-kill fault")
	budget := fs.Duration("timeout", 15*time.Minute, "give up (and fail) after this long")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *brokers == "" || *dsn == "" {
		return usageError{fmt.Errorf("--kafka-brokers and --database-dsn are required (scripts/faults.sh starts both)")}
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "proctor-faults-")
		if err != nil {
			return err
		}
		*dir = d
	}
	if abs, err := filepath.Abs(*scripts); err == nil {
		*scripts = abs
	}
	var workerArgs []string
	if *analyzers != "" {
		workerArgs = append(workerArgs, "--analyzers", *analyzers)
	}
	var onlyList []string
	for _, f := range strings.Split(*only, ",") {
		if f = strings.TrimSpace(f); f != "" {
			onlyList = append(onlyList, f)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, *budget)
	defer cancel()
	c, err := faults.StartCluster(ctx, faults.ClusterConfig{Bin: *bin, Brokers: strings.Split(*brokers, ","), DSN: *dsn,
		Scripts: *scripts, Dir: *dir, MaxLag: *maxLag, WorkerArgs: workerArgs, Log: os.Stderr})
	if err != nil {
		return err
	}
	defer c.Close()
	results, err := faults.Run(ctx, c.Target(), faults.Options{Sessions: *sessions, BurstSessions: *burst, Kills: *kills, Only: onlyList, Log: os.Stderr})
	ok := faults.Report(os.Stdout, results)
	if err != nil {
		return err
	}
	if !ok {
		return faults.ErrFailed
	}
	return nil
}
