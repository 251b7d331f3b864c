package app

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"proctor/analyzers"
	"proctor/internal/platform"
	"proctor/internal/scenario"
	"proctor/pipeline"
	"proctor/rules"
	"proctor/store"
)

// buildProctor compiles the real binary once per test run.
var buildProctor = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "proctor-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "proctor")
	out, err := exec.Command("go", "build", "-o", bin, "proctor/cmd/proctor").CombinedOutput()
	if err != nil {
		return "", &buildError{string(out)}
	}
	return bin, nil
})

type buildError struct{ out string }

func (e *buildError) Error() string { return "go build: " + e.out }

// startWorker runs `proctor worker` as a separate process, logging to a file in the test's dir.
func startWorker(t *testing.T, bin, name string, args []string) *exec.Cmd {
	t.Helper()
	logf, err := os.Create(filepath.Join(t.TempDir(), name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{"worker"}, args...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("%s log:\n%s", name, b)
		}
	})
	return cmd
}

// TestWorkerCrash kills a worker process (SIGKILL) in the middle of a stream and starts another:
// every posted frame must be analysed exactly once and no flag may be duplicated.
func TestWorkerCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real worker processes")
	}
	f := sampleFrames(t)
	bin, err := buildProctor()
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			kcfg := kafkaConfig(b)
			if b.brokers == nil {
				// The API and the workers are separate processes here, so the test owns the broker.
				br, err := pipeline.StartEmbeddedBroker(ctx, pipeline.EmbeddedBrokerConfig{Logger: quietLog()})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(br.Close)
				kcfg.Brokers = []string{br.Addr()}
			}
			prefix := strings.TrimSuffix(kcfg.Topics.Frames, ".frames")
			kcfg.Topics = pipeline.Topics{Frames: prefix + ".frames", Audio: prefix + ".audio",
				Events: prefix + ".events", DeadLetter: prefix + ".deadletter"}
			dataDir := t.TempDir()
			a := startApp(t, b, func(c *Config) {
				c.RunAPI = true
				c.Kafka = kcfg
				c.Store.DataDir = dataDir
			})
			workerArgs := []string{"--kafka-brokers", strings.Join(kcfg.Brokers, ","), "--kafka-group", kcfg.GroupID,
				"--kafka-topic-prefix", prefix, "--kafka-partitions", "3", "--data-dir", dataDir, "--database-dsn", b.dsn,
				"--log-level", "info", "--encryption-key-file", testKeyFile(t)}
			first := startWorker(t, bin, "worker-1", workerArgs)

			ingestKey, reviewKey := keys(t, a, "org-crash")
			plat := platform.New(a.URL, ingestKey)
			timeline := scenario.DemoTimeline(f)
			start := time.Now().Add(-time.Hour).Truncate(time.Second)
			var ids []string
			for i := range 4 {
				s, err := plat.CreateSession(ctx, platform.NewSession{ExamID: "crash", CandidateID: string(rune('a' + i)),
					ScheduledStart: start, DurationSec: 3600, Questions: 2, Photo: f.Photo})
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, s.ID)
			}
			total := int64(len(ids) * len(timeline))
			postErr := make(chan error, 1)
			go func() {
				for i, shot := range timeline {
					for _, id := range ids {
						if _, err := plat.PostFrame(ctx, id, analyzers.CameraMain, int64(i), start.Add(time.Duration(i)*time.Second), shot.JPEG); err != nil {
							postErr <- err
							return
						}
						time.Sleep(10 * time.Millisecond)
					}
				}
				postErr <- nil
			}()
			stored := func() int64 {
				var n int64
				a.Store.DB.Model(&store.FrameResult{}).Where("session_id IN ?", ids).Count(&n)
				return n
			}
			waitFor(t, func() bool { return stored() >= 20 }, "the first worker to analyse 20 frames")
			if err := first.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			first.Wait()
			killedAt := stored()
			t.Logf("worker-1 killed after %d of %d frames were stored", killedAt, total)
			startWorker(t, bin, "worker-2", workerArgs)
			if err := <-postErr; err != nil {
				t.Fatalf("posting frames: %v", err)
			}
			deadline := time.Now().Add(2 * time.Minute)
			for stored() < total && time.Now().Before(deadline) {
				time.Sleep(100 * time.Millisecond)
			}
			if n := stored(); n != total {
				t.Fatalf("%d of %d frames analysed after the crash", n, total)
			}
			if killedAt >= total {
				t.Errorf("the crash came after every frame was stored: nothing was tested")
			}
			rev := platform.New(a.URL, reviewKey)
			for _, id := range ids {
				d, err := rev.Session(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				d.Flags = faceFlags(d.Flags)
				got := map[string]int{}
				for _, fl := range d.Flags {
					got[fl.Type]++
				}
				if d.Session.Frames != int64(len(timeline)) || len(d.Flags) != 2 || got[rules.FaceAbsent] != 1 || got[rules.MultipleFaces] != 1 {
					t.Errorf("session %s: %d frames, flags %v; want %d frames, one FACE_ABSENT, one MULTIPLE_FACES",
						id, d.Session.Frames, got, len(timeline))
				}
			}
		})
	}
}

// testKeyFile writes the tests' encryption key (store.InsecureTestKeys, which the in-process
// service uses) for a worker subprocess.
func testKeyFile(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "test.key")
	if err := os.WriteFile(p, []byte(store.InsecureTestKeyLine()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
