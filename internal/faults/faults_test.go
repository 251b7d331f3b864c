package faults

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"proctor/analyzers"
	"proctor/api"
	"proctor/app"
	"proctor/pipeline"
	"proctor/store"
)

// TestPoisonAndBurstEmbedded runs the two faults that need no process control against the
// service in this process (embedded broker + SQLite): a poison event among good ones is
// dead-lettered while the window switch behind it raises its flag, and a burst gets 429s with
// nothing accepted lost. scripts/faults.sh runs all five on Apache Kafka + PostgreSQL.
func TestPoisonAndBurstEmbedded(t *testing.T) {
	if testing.Short() {
		t.Skip("replays sessions through the whole pipeline")
	}
	ctx := context.Background()
	if _, err := sampleFrames(ctx); err != nil {
		t.Skipf("sample frames unavailable (%v): run scripts/setup.sh", err)
	}
	id := store.NewID()[:8]
	a, err := app.Start(ctx, app.Config{Addr: "127.0.0.1:0", Store: store.Config{DataDir: t.TempDir()},
		Kafka: pipeline.Config{Partitions: 3, GroupID: "f" + id, Topics: pipeline.Topics{Frames: "f" + id + ".frames",
			Audio: "f" + id + ".audio", Events: "f" + id + ".events", DeadLetter: "f" + id + ".dlq"}},
		API:       api.Config{MaxLag: time.Second, MaxLagMessages: 100}, // 100: a 429 soon on any machine
		Analyzers: analyzers.Config{Analyzers: []string{"faces"}},
		Log:       slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.Store.EnsureOrganisation(ctx, "faults", "faults"); err != nil {
		t.Fatal(err)
	}
	ingest, _, err := a.Store.CreateAPIKey(ctx, "faults", "platform", []string{store.ScopeIngest})
	if err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	results, err := Run(ctx, Target{URL: a.URL, Store: a.Store, Kafka: a.Kafka, IngestKey: ingest},
		Options{Sessions: 2, BurstSessions: 8, BurstRepeat: 2, MaxRetryWait: 100 * time.Millisecond, Only: []string{"poison", "burst"}, Drain: 2 * time.Minute, Log: &log})
	var table strings.Builder
	ok := Report(&table, results)
	t.Logf("\n%s%s", log.String(), table.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 2 || !ok {
		t.Fatalf("%d faults ran; want poison and burst, both ok", len(results))
	}
}
