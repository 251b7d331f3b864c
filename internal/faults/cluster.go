package faults

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"proctor/pipeline"
	"proctor/store"
)

// ClusterConfig describes the processes the suite starts: one `proctor api` and two
// `proctor worker`s, all on loopback, against Kafka and PostgreSQL that are already running.
type ClusterConfig struct {
	// Bin is the proctor binary.
	Bin string
	// Brokers and DSN of the running Kafka and PostgreSQL.
	Brokers []string
	DSN     string
	// Scripts is the folder of kafka.sh and postgres.sh: their halt and resume restart the
	// broker and the database keeping their data (the environment chooses the ports).
	Scripts string
	// Dir receives the processes' logs and the shared recordings folder.
	Dir string
	// MaxLag is the API's --max-lag. Default 10 s.
	MaxLag time.Duration
	// WorkerArgs are extra flags of the workers (e.g. --analyzers).
	WorkerArgs []string
	// Log receives progress lines.
	Log io.Writer
}

// Cluster is the running processes.
type Cluster struct {
	cfg     ClusterConfig
	url     string
	kafka   pipeline.Config
	store   *store.Store
	api     *proc
	workers [2]*proc
	keys    [2]string
}

type proc struct {
	name string
	args []string
	log  *os.File
	mu   sync.Mutex
	cmd  *exec.Cmd
}

// StartCluster starts the API and the two workers and waits until the API is ready.
func StartCluster(ctx context.Context, cfg ClusterConfig) (_ *Cluster, err error) {
	if cfg.MaxLag <= 0 {
		cfg.MaxLag = 10 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	id := store.NewID()[:6]
	prefix, group := "faults"+id, "faults"+id
	c := &Cluster{cfg: cfg}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	c.kafka = pipeline.Config{Brokers: cfg.Brokers, GroupID: group,
		Topics: pipeline.Topics{Frames: prefix + ".frames", Audio: prefix + ".audio", Events: prefix + ".events",
			DeadLetter: prefix + ".deadletter"},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}.WithDefaults()
	// One throwaway encryption key for this run's processes (PostgreSQL has no default key).
	keyFile := filepath.Join(cfg.Dir, "encryption.key")
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(keyFile, []byte(store.NewKeyLine("faults-"+id)), 0o600); err != nil {
		return nil, err
	}
	if c.store, err = store.Open(ctx, store.Config{DSN: cfg.DSN, KeyFile: keyFile}); err != nil {
		return nil, err
	}
	org := "faults-" + id
	if err := c.store.EnsureOrganisation(ctx, org, org); err != nil {
		return nil, err
	}
	for i, scope := range []string{store.ScopeIngest, store.ScopeReview} {
		if c.keys[i], _, err = c.store.CreateAPIKey(ctx, org, "faults "+scope, []string{scope}); err != nil {
			return nil, err
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	c.url = "http://" + addr
	common := []string{"--kafka-brokers", strings.Join(cfg.Brokers, ","), "--database-dsn", cfg.DSN,
		"--encryption-key-file", keyFile,
		"--kafka-topic-prefix", prefix, "--kafka-group", group, "--kafka-partitions", "6",
		"--data-dir", filepath.Join(cfg.Dir, "data"), "--recordings-dir", filepath.Join(cfg.Dir, "recordings")}
	c.api = &proc{name: "api", args: append([]string{"api", "--addr", addr, "--max-lag", cfg.MaxLag.String()}, common...)}
	if err := c.start(c.api); err != nil {
		return nil, err
	}
	for i := range c.workers {
		c.workers[i] = &proc{name: fmt.Sprintf("worker-%d", i+1), args: append(append([]string{"worker"}, common...), cfg.WorkerArgs...)}
		if err := c.start(c.workers[i]); err != nil {
			return nil, err
		}
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := http.Get(c.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the API at %s was not ready within 2 min (logs in %s)", c.url, cfg.Dir)
		}
		time.Sleep(200 * time.Millisecond)
	}
	fmt.Fprintf(cfg.Log, "faults: api %s and 2 workers running (topics %s.*, logs in %s)\n", c.url, prefix, cfg.Dir)
	return c, nil
}

func (c *Cluster) start(p *proc) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.log == nil {
		f, err := os.Create(filepath.Join(c.cfg.Dir, p.name+".log"))
		if err != nil {
			return err
		}
		p.log = f
	}
	cmd := exec.Command(c.cfg.Bin, p.args...)
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	p.cmd = cmd
	return nil
}

// kill SIGKILLs p and reaps it.
func (p *proc) kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.cmd.Wait()
	p.cmd = nil
}

// stop asks p to stop (SIGTERM), SIGKILLs it after 15 s.
func (p *proc) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		p.cmd.Process.Signal(syscall.SIGKILL)
		<-done
	}
	p.cmd = nil
	if p.log != nil {
		p.log.Close()
	}
}

// Target is the cluster as the faults see it.
func (c *Cluster) Target() Target {
	script := func(name, action string) func() error {
		return func() error {
			out, err := exec.Command(filepath.Join(c.cfg.Scripts, name), action).CombinedOutput()
			fmt.Fprintf(c.cfg.Log, "faults: %s %s: %s", name, action, out)
			if err != nil {
				return fmt.Errorf("%s %s: %w", name, action, err)
			}
			return nil
		}
	}
	return Target{URL: c.url, Store: c.store, Kafka: c.kafka, IngestKey: c.keys[0], ReviewKey: c.keys[1],
		KillWorker: func(i int, restartAfter time.Duration) error {
			w := c.workers[i]
			w.kill()
			fmt.Fprintf(c.cfg.Log, "faults: SIGKILLed %s\n", w.name)
			time.Sleep(restartAfter)
			return c.start(w)
		},
		HaltBroker: script("kafka.sh", "halt"), ResumeBroker: script("kafka.sh", "resume"),
		HaltDatabase: script("postgres.sh", "halt"), ResumeDatabase: script("postgres.sh", "resume"),
	}
}

// Close stops the processes and closes the database.
func (c *Cluster) Close() {
	var wg sync.WaitGroup
	for _, p := range []*proc{c.api, c.workers[0], c.workers[1]} {
		if p != nil {
			wg.Add(1)
			go func() { defer wg.Done(); p.stop() }()
		}
	}
	wg.Wait()
	if c.store != nil {
		c.store.Close()
	}
}

// ErrFailed is returned when a fault lost, duplicated or misflagged something.
var ErrFailed = errors.New("faults: a fault failed (see the table)")
