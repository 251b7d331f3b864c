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
//	proctor keys      create API keys; create or rotate the encryption key; reseal biometric data
//	proctor delete    erase a session or a candidate (rows, files, export items), audit-logged
//	proctor retention sweep: delete what has expired under the retention policy
//	proctor users     create reviewer-page users
//	proctor models    list models; register, shadow, promote, roll back versions
//	proctor export    export reviewer-labelled data for retraining
//	proctor precision flags raised and confirmed per flag type and model version
//	proctor checks    list every check with its flag types, settings and models
//	proctor deadletter list or replay the messages the workers gave up on
//	proctor faults    the fault suite (scripts/faults.sh): kill workers, restart Kafka and the database, poison, burst
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

	"proctor/store"
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
             eval voice [--data DIR] [--split tune|test|all] [--sweep]   SECOND_VOICE detection, false alarms/h, speed
             eval vision [--data DIR] [--checks faces,identity,...]   precision, recall, F1 per vision check
  bench      replay frames through the whole pipeline and print throughput and latency
  migrate    create or upgrade the database schema
  keys       keys create --org ORG --name NAME --scopes ingest,review,data,admin
             keys encryption-key --out FILE [--id ID]   new key file, or rotate: the new key seals, old ones still open
             keys reseal   re-encrypt biometric data under the current key (after a rotation)
  delete     delete --org ORG (--session ID | --candidate ID) --reason WHY   erase every trace (rows, files, export items)
  retention  retention sweep   delete what the retention policy says has expired (workers do it hourly)
  users      users create --org ORG --email EMAIL --role reviewer|data|admin [--password-stdin]
  models     models list | register DIR | shadow|unshadow|promote NAME VERSION | rollback NAME | compare NAME VERSION
  export     export --org ORG --purpose WHY --out DIR [--from --to --exam --flag-types --model --verdicts --kinds]
  precision  precision [--org ORG] [--bucket day|week|all]   flags raised, confirmed, dismissed per model version
  checks     checks list [--json | --markdown]   every check: flag types, severity, weight, settings, analyzers, models
  faults     faults --kafka-brokers B --database-dsn DSN   the fault suite (scripts/faults.sh runs it)
  deadletter deadletter list [--topic T] [--session S] [--pending] [--payload] | replay (--id N,N... | --all) --kafka-brokers B

Run 'proctor <command> -h' (or 'proctor <command> <subcommand> -h') for the flags of a command.
Every flag can also be set with the environment variable shown in its help.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

// command is one subcommand of proctor. run gets the arguments after the command's name. A group
// (analyze, eval, keys, users, models) has subs instead, picked by the next argument, and usage,
// printed for --help and on a mistake.
type command struct {
	name  string
	run   func(ctx context.Context, args []string) error
	subs  []command
	usage string
}

// commands is the dispatch table: every subcommand is reached through it, and the --help test
// walks it, so a new one cannot miss either.
func commands() []command {
	return []command{
		{name: "serve", run: service(true, true)},
		{name: "api", run: service(true, false)},
		{name: "worker", run: service(false, true)},
		{name: "demo", run: runDemo},
		{name: "analyze", usage: "usage: proctor analyze image FILE... | proctor analyze audio FILE.wav [--questions MS,...] | " +
			"proctor analyze video FILE [--camera main|evidence] [--fps 1] [--start MS]",
			subs: []command{
				{name: "image", run: runAnalyzeImage},
				{name: "audio", run: runAnalyzeAudio},
				{name: "video", run: func(ctx context.Context, args []string) error {
					return runAnalyzeVideo(ctx, args, os.Stdout, os.Stderr)
				}},
			}},
		{name: "eval", usage: "usage: proctor eval audio|voice|vision --data DIR",
			subs: []command{{name: "audio", run: runEvalAudio}, {name: "voice", run: runEvalVoice}, {name: "vision", run: runEvalVision}}},
		{name: "bench", run: runBench},
		{name: "faults", run: runFaults},
		{name: "migrate", run: runMigrate},
		{name: "keys", usage: "usage: proctor keys create --org ORG --name NAME --scopes ingest,review,data,admin | " +
			"keys encryption-key --out FILE [--id ID] | keys reseal",
			subs: []command{{name: "create", run: runKeysCreate}, {name: "encryption-key", run: runEncryptionKey},
				{name: "reseal", run: runReseal}}},
		{name: "delete", run: runDelete},
		{name: "retention", usage: "usage: proctor retention sweep",
			subs: []command{{name: "sweep", run: runRetentionSweep}}},
		{name: "users", usage: "usage: proctor users create --org ORG --email EMAIL --role reviewer|data|admin " +
			"[--password-stdin]",
			subs: []command{{name: "create", run: runUsersCreate}}},
		{name: "models", usage: "usage: proctor models list | register DIR | shadow|unshadow|promote NAME VERSION | rollback NAME | " +
			"compare NAME VERSION [--since RFC3339]",
			subs: []command{
				{name: "list", run: listModels},
				{name: "register", run: registerModel},
				{name: "shadow", run: changeModel(store.ActionShadow)},
				{name: "unshadow", run: changeModel(store.ActionUnshadow)},
				{name: "promote", run: changeModel(store.ActionPromote)},
				{name: "rollback", run: changeModel(store.ActionRollback)},
				{name: "compare", run: compareModel},
			}},
		{name: "export", run: runExport},
		{name: "precision", run: runPrecision},
		{name: "checks", usage: "usage: proctor checks list [--json | --markdown]",
			subs: []command{{name: "list", run: runChecksList}}},
		{name: "deadletter", usage: deadLetterUsage,
			subs: []command{
				{name: "list", run: func(ctx context.Context, args []string) error {
					return runDeadLetter(ctx, append([]string{"list"}, args...))
				}},
				{name: "replay", run: func(ctx context.Context, args []string) error {
					return runDeadLetter(ctx, append([]string{"replay"}, args...))
				}},
			}},
	}
}

// run runs the command line args (without the program name) and returns the exit code: 0, 1 for
// a failure, 2 for a mistake in the command line. -h, --help and help print usage to stdout and
// exit 0, for proctor itself and for every command and group.
func run(ctx context.Context, args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return 2
	}
	switch args[0] {
	case "-h", "--help", "help":
		fmt.Print(usage)
		return 0
	}
	err := dispatch(ctx, commands(), "", args)
	var unknown unknownCommand
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &unknown) && unknown.group == "":
		fmt.Fprintf(os.Stderr, "proctor: unknown command %q\n\n%s", unknown.name, usage)
		return 2
	}
	fmt.Fprintf(os.Stderr, "proctor %s: %v\n", args[0], err)
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

// unknownCommand is a command name that is not in the table of its group ("" for proctor's).
type unknownCommand struct{ group, name string }

func (u unknownCommand) Error() string { return fmt.Sprintf("unknown command %q", u.name) }

// dispatch finds args[0] in cmds (the commands of group, "" at the top) and runs it with the rest.
func dispatch(ctx context.Context, cmds []command, group string, args []string) error {
	for _, c := range cmds {
		if c.name != args[0] {
			continue
		}
		if c.subs == nil {
			return c.run(ctx, args[1:])
		}
		rest := args[1:]
		if len(rest) == 0 {
			return usageError{errors.New(c.usage)}
		}
		switch rest[0] {
		case "-h", "--help", "help":
			fmt.Printf("%s\n\nRun 'proctor %s <command> -h' for the flags of each.\n", c.usage, c.name)
			return flag.ErrHelp
		}
		err := dispatch(ctx, c.subs, c.name, rest)
		if errors.As(err, new(unknownCommand)) {
			return usageError{fmt.Errorf("unknown %s command %q; %s", c.name, rest[0], c.usage)}
		}
		return err
	}
	return unknownCommand{group, args[0]}
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
