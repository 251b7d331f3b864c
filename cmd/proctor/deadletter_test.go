package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"proctor/pipeline"
	"proctor/store"
)

// captureStdout runs fn and returns what it printed.
func captureStdout(t *testing.T, fn func() error) (string, error) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdout
	os.Stdout = w
	done := make(chan string)
	go func() { b, _ := io.ReadAll(r); done <- string(b) }()
	err = fn()
	w.Close()
	os.Stdout = old
	return <-done, err
}

// TestCLIDeadLetter lists a recorded dead letter and replays it to its topic: once, with its
// original key and headers; a second replay sends nothing; the replay is audit-logged.
func TestCLIDeadLetter(t *testing.T) {
	ctx := context.Background()
	dataDir := t.TempDir()
	st, err := store.Open(ctx, store.Config{DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	b, err := pipeline.StartEmbeddedBroker(ctx, pipeline.EmbeddedBrokerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cfg := pipeline.Config{Brokers: []string{b.Addr()}, Topics: pipeline.Topics{Frames: "cli.frames", Audio: "cli.audio",
		Events: "cli.events", DeadLetter: "cli.deadletter"}, Partitions: 1}
	if err := pipeline.EnsureTopics(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	hdr, _ := json.Marshal([]kafka.Header{{Key: "kind", Value: []byte("event")}, {Key: "seq", Value: []byte("4")}})
	if err := st.RecordDeadLetter(ctx, &store.DeadLetter{Topic: "cli.events", Partition: 0, Offset: 9, Key: []byte("sess-cli"),
		Class: "invalid", Reason: "event data: is not valid UTF-8", Headers: string(hdr), Payload: []byte("{\"a\":\"\xff\"}"),
		DeadAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	st.Close()

	db := "--data-dir=" + dataDir
	out, err := captureStdout(t, func() error { return runDeadLetter(ctx, []string{"list", db, "--payload"}) })
	if err != nil || !strings.Contains(out, `"topic":"cli.events"`) || !strings.Contains(out, `"session_id":"sess-cli"`) ||
		!strings.Contains(out, `"payload":"`) {
		t.Fatalf("list: %v\n%s", err, out)
	}
	if err := runDeadLetter(ctx, []string{"replay", db}); err == nil {
		t.Error("replay without --id or --all succeeded")
	}
	replay := []string{"replay", db, "--all", "--kafka-brokers=" + b.Addr(), "--kafka-topic-prefix=cli"}
	if out, err := captureStdout(t, func() error { return runDeadLetter(ctx, replay) }); err != nil || !strings.Contains(out, "replayed 1") {
		t.Fatalf("replay: %v %s", err, out)
	}
	if out, err := captureStdout(t, func() error { return runDeadLetter(ctx, []string{"replay", db, "--id=1", replay[3], replay[4]}) }); err != nil ||
		!strings.Contains(out, "replayed 0") || !strings.Contains(out, "skipped 1") {
		t.Fatalf("second replay: %v %s", err, out)
	}

	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{b.Addr()}, Topic: "cli.events", Partition: 0})
	defer r.Close()
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	m, err := r.ReadMessage(rctx)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Key) != "sess-cli" || string(m.Value) != "{\"a\":\"\xff\"}" || len(m.Headers) != 2 || string(m.Headers[1].Value) != "4" {
		t.Errorf("replayed message: key %q value %q headers %v", m.Key, m.Value, m.Headers)
	}
	if hw := r.Lag(); hw > 0 {
		t.Errorf("%d more messages in the topic: the second replay sent it again", hw)
	}
	st, err = store.Open(ctx, store.Config{DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var n int64
	st.DB.Model(&store.AuditEntry{}).Where("action = ?", "deadletter.replay").Count(&n)
	if n != 1 {
		t.Errorf("%d audit entries for the replay, want 1", n)
	}
}
