// Command proctor is the AI proctoring analysis service: one binary, several roles.
//
//	proctor serve     API + workers in one process (embedded Kafka + SQLite when nothing is configured)
//	proctor api       HTTP API only (produces to Kafka)
//	proctor worker    Kafka consumers only (analyse, store, flag)
//	proctor demo      run everything on the embedded defaults and replay a sample session
//	proctor analyze   run the analyzers on files and print JSON
//	proctor eval      measure analyzers against labelled data
//	proctor bench     replay frames through API → Kafka → analyzers → DB and print throughput
//	proctor migrate   create or upgrade the database schema
//	proctor keys      create API keys
//	proctor users     create reviewer-page users
//	proctor models    list models; register, shadow, promote, roll back versions
//	proctor export    export reviewer-labelled data for retraining
//	proctor precision flags raised and confirmed per flag type and model version
//	proctor checks    list every check with its flag types, settings and models
//	proctor deadletter list or replay the messages the workers gave up on
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

const usage = `usage: proctor <command> [flags]

commands:
  serve      API and workers in one process
  api        HTTP API only (scale out: several behind a load balancer)
  worker     Kafka consumer workers only (scale out: more processes join the groups)
  demo       start everything on the embedded defaults and replay a sample session
  analyze    analyze image FILE...   print one JSON line per image
             analyze audio FILE.wav [--questions MS,...]   speech, phrases (and answers) as JSON
             analyze video FILE [--camera main|evidence] [--fps 1] [--start MS]   flags as JSON lines, progress on stderr
  eval       eval audio --data DIR   VAD accuracy, phrase recall, false alarms per hour, speed
  bench      replay frames through the whole pipeline and print throughput and latency
  migrate    create or upgrade the database schema
  keys       keys create --org ORG --name NAME --scopes ingest,review,data,admin
  users      users create --org ORG --email EMAIL --role reviewer|data|admin [--password-stdin]
  models     models list | register DIR | shadow|unshadow|promote NAME VERSION | rollback NAME | compare NAME VERSION
  export     export --org ORG --purpose WHY --out DIR [--from --to --exam --flag-types --model --verdicts --kinds]
  precision  precision [--org ORG] [--bucket day|week|all]   flags raised, confirmed, dismissed per model version
  checks     checks list [--json | --markdown]   every check: flag types, severity, weight, settings, analyzers, models
  deadletter deadletter list [--topic T] [--session S] [--pending] [--payload] | replay (--id N,N... | --all) --kafka-brokers B

Run 'proctor <command> -h' for the flags of a command. Every flag can also be set with the
environment variable shown in its help.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd, args := os.Args[1], os.Args[2:]
	var err error
	switch cmd {
	case "serve":
		err = runService(ctx, args, true, true)
	case "api":
		err = runService(ctx, args, true, false)
	case "worker":
		err = runService(ctx, args, false, true)
	case "demo":
		err = runDemo(ctx, args)
	case "analyze":
		err = runAnalyze(ctx, args)
	case "eval":
		err = runEval(ctx, args)
	case "bench":
		err = runBench(ctx, args)
	case "migrate":
		err = runMigrate(ctx, args)
	case "keys":
		err = runKeys(ctx, args)
	case "users":
		err = runUsers(ctx, args)
	case "models":
		err = runModels(ctx, args)
	case "export":
		err = runExport(ctx, args)
	case "precision":
		err = runPrecision(ctx, args)
	case "checks":
		err = runChecks(ctx, args)
	case "deadletter":
		err = runDeadLetter(ctx, args)
	case "-h", "--help", "help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "proctor: unknown command %q\n\n%s", cmd, usage)
		os.Exit(2)
	}
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(os.Stderr, "proctor %s: %v\n", cmd, err)
			os.Exit(2)
		}
		fmt.Fprintf(os.Stderr, "proctor %s: %v\n", cmd, err)
		os.Exit(1)
	}
}

// usageError is a mistake in the command line (exit code 2).
type usageError struct{ error }

func newLogger(level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}
