package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"

	"proctor/pipeline"
	"proctor/store"
	"proctor/worker"
)

const deadLetterUsage = `usage: proctor deadletter list [--topic T] [--session S] [--pending] [--limit N] [--payload]
       proctor deadletter replay (--id N,N... | --all) [--topic T] [--session S] --kafka-brokers HOST:PORT`

// runDeadLetter lists the messages the workers dead-lettered (recorded by the workers from the
// dead-letter topic) and replays them to their original topics after a fix.
func runDeadLetter(ctx context.Context, args []string) error {
	if len(args) == 0 || (args[0] != "list" && args[0] != "replay") {
		return usageError{fmt.Errorf("%s", deadLetterUsage)}
	}
	sub := args[0]
	fs := flag.NewFlagSet("deadletter "+sub, flag.ContinueOnError)
	var sf serviceFlags
	sf.register(fs)
	topic := fs.String("topic", "", "only dead letters from this topic (e.g. proctor.events)")
	session := fs.String("session", "", "only dead letters of this session")
	limit := fs.Int("limit", 100, "at most this many (list; replay takes up to 1000 per run)")
	pending := fs.Bool("pending", false, "list: only those not replayed yet")
	payload := fs.Bool("payload", false, "list: include each payload, base64")
	ids := fs.String("id", "", "replay: comma-separated dead letter ids")
	all := fs.Bool("all", false, "replay: every dead letter not replayed yet (narrow with --topic, --session)")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	f := store.DeadLetterFilter{Topic: *topic, SessionID: *session, Limit: *limit, Pending: *pending}
	if sub == "replay" {
		if (*ids == "") == !*all {
			return usageError{fmt.Errorf("give --id N,N... or --all\n%s", deadLetterUsage)}
		}
		for _, v := range strings.Split(*ids, ",") {
			if v = strings.TrimSpace(v); v == "" {
				continue
			}
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return usageError{fmt.Errorf("--id: %q is not a dead letter id", v)}
			}
			f.IDs = append(f.IDs, uint(n))
		}
		if *all {
			f.Pending, f.Limit = true, 1000
		}
		cfg := sf.config()
		if len(cfg.Kafka.Brokers) == 0 {
			return usageError{fmt.Errorf("replay needs --kafka-brokers (the embedded broker is private to its 'serve' process)")}
		}
	}
	st, err := store.Open(ctx, sf.storeConfig())
	if err != nil {
		return err
	}
	defer st.Close()
	if sub == "list" {
		list, err := st.DeadLettersForReplay(ctx, f) // with payloads, oldest first
		if err != nil {
			return err
		}
		enc := json.NewEncoder(os.Stdout)
		for _, d := range list {
			row := map[string]any{"id": d.ID, "topic": d.Topic, "partition": d.Partition, "offset": d.Offset,
				"key": string(d.Key), "session_id": d.SessionID, "class": d.Class, "reason": d.Reason,
				"attempts": d.Attempts, "group": d.Group, "payload_bytes": d.PayloadBytes, "dead_at": d.DeadAt,
				"replayed_at": d.ReplayedAt, "replayed_by": d.ReplayedBy, "headers": json.RawMessage(orJSON(d.Headers))}
			if *payload {
				row["payload"] = d.Payload // []byte: base64 in JSON
			}
			if err := enc.Encode(row); err != nil {
				return err
			}
		}
		return nil
	}
	cfg := sf.config()
	p, err := pipeline.NewProducer(cfg.Kafka, nil)
	if err != nil {
		return err
	}
	defer p.Close()
	res, err := worker.ReplayDeadLetters(ctx, st, p, f, cliActor())
	fmt.Printf("replayed %d %v, skipped %d already replayed %v\n", len(res.Replayed), res.Replayed, len(res.Skipped), res.Skipped)
	return err
}

func orJSON(s string) string {
	if s == "" {
		return "null"
	}
	return s
}

// cliActor names the person running the CLI in the audit log.
func cliActor() string {
	if u, err := user.Current(); err == nil {
		return "cli:" + u.Username
	}
	return "cli"
}
