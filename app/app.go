// Package app wires api, pipeline, worker, analyzers, rules and store into the service's roles:
// the API (ingest + reviewer HTTP), the workers (Kafka consumers), or both in one process.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"proctor/analyzers"
	"proctor/api"
	"proctor/pipeline"
	"proctor/privacy"
	"proctor/rules"
	"proctor/store"
	"proctor/worker"
)

// Config of a running service. Zero values take the defaults.
type Config struct {
	// Addr the HTTP API listens on. Default ":8080"; "127.0.0.1:0" picks a free port.
	Addr string
	// RunAPI and RunWorkers select the roles; both false means both (the "serve" role).
	RunAPI, RunWorkers bool
	Store              store.Config
	Kafka              pipeline.Config
	API                api.Config
	Rules              rules.Config
	Analyzers          analyzers.Config
	Audio              worker.AudioConfig // VAD, phrase spotting, answer rules
	// Recordings: processing of uploaded recordings. Its Dir (and API.Recordings.Dir) default to
	// DATA_DIR/recordings.
	Recordings worker.RecordingConfig
	// ModelPoll is how often workers check the model versions for another active or shadow
	// version. Default 10 s.
	ModelPoll time.Duration
	// AudioRetention is the service's default retention of stored audio (organisations and
	// exams may override it, like every class of privacy.Classes). Zero: the declared default.
	AudioRetention time.Duration
	// RetentionSweep is how often each worker's sweeper deletes expired data. Default 1 h.
	RetentionSweep time.Duration
	Log            *slog.Logger
}

// App is a running service.
type App struct {
	// URL of the HTTP API ("" when the API role is off).
	URL    string
	Store  *store.Store
	Kafka  pipeline.Config
	Broker *pipeline.EmbeddedBroker // nil when external brokers are configured
	// Metrics gathers what /metrics serves (`proctor bench` reads the analyzers' counters).
	Metrics prometheus.Gatherer

	cfg      Config
	http     *fiber.App
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	closers  []func()
	errMu    sync.Mutex
	firstErr error
}

// Start opens the database, connects to Kafka (starting the embedded broker when none is
// configured), creates the topics and starts the selected roles. Close stops everything.
func Start(ctx context.Context, cfg Config) (_ *App, err error) {
	if !cfg.RunAPI && !cfg.RunWorkers {
		cfg.RunAPI, cfg.RunWorkers = true, true
	}
	if cfg.Addr == "" {
		cfg.Addr = ":8080"
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Recordings.Dir == "" {
		cfg.Recordings.Dir = filepath.Join(dataDirOr(cfg.Store.DataDir), "recordings")
	}
	if cfg.API.Recordings.Dir == "" {
		cfg.API.Recordings.Dir = cfg.Recordings.Dir
	}
	log := cfg.Log
	runCtx, cancel := context.WithCancel(context.Background())
	a := &App{cfg: cfg, cancel: cancel}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()

	st, err := store.Open(ctx, cfg.Store)
	if err != nil {
		return nil, err
	}
	a.Store = st
	a.closers = append(a.closers, func() { st.Close() })

	kcfg := cfg.Kafka
	if kcfg.Logger == nil {
		kcfg.Logger = log
	}
	if len(kcfg.Brokers) == 0 {
		// The embedded broker persists next to the SQLite file, so frames accepted (202) but not
		// yet analysed survive a restart of the process.
		bcfg := pipeline.EmbeddedBrokerConfig{Logger: log}
		if cfg.Store.DSN == "" {
			bcfg.DataDir = filepath.Join(dataDirOr(cfg.Store.DataDir), "kafka")
		}
		b, err := pipeline.StartEmbeddedBroker(ctx, bcfg)
		if err != nil {
			return nil, fmt.Errorf("start embedded Kafka broker: %w", err)
		}
		a.Broker = b
		a.closers = append(a.closers, b.Close)
		kcfg.Brokers = []string{b.Addr()}
		log.Info("embedded Kafka broker started", "addr", b.Addr())
	}
	kcfg = kcfg.WithDefaults()
	a.Kafka = kcfg
	if err := pipeline.EnsureTopics(ctx, kcfg); err != nil {
		return nil, fmt.Errorf("create Kafka topics: %w", err)
	}

	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a.Metrics = registry
	// Each exam may override the rules (settings page); the engine looks them up, cached.
	engine := rules.New(cfg.Rules).WithSettings(rules.StoreSettings, 0)

	if cfg.RunWorkers {
		if err := a.startWorkers(runCtx, kcfg, engine, registry); err != nil {
			return nil, err
		}
	}
	if cfg.RunAPI {
		producer, err := pipeline.NewProducer(kcfg, registry)
		if err != nil {
			return nil, err
		}
		a.closers = append(a.closers, func() { producer.Close() })
		cfg.API.Topics = kcfg.Topics
		if days := int(cfg.AudioRetention.Hours() / 24); days > 0 && cfg.API.RetentionDefaults == nil {
			cfg.API.RetentionDefaults = privacy.Policy{privacy.Audio: days}
		}
		if cfg.API.Kafka == nil {
			cfg.API.Kafka = &pipeline.KafkaProbe{Config: kcfg}
		}
		fapp := api.New(cfg.API, st, producer, engine, registry, log)
		ln, err := net.Listen("tcp", cfg.Addr)
		if err != nil {
			return nil, fmt.Errorf("listen on %s: %w", cfg.Addr, err)
		}
		a.URL = "http://" + ln.Addr().String()
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			if err := fapp.Listener(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				a.fail(fmt.Errorf("http server: %w", err))
			}
		}()
		a.http = fapp
		log.Info("API listening", "url", a.URL)
	}
	return a, nil
}

// startWorkers runs one consumer group per topic. Each frame consumer goroutine gets its own
// analyzer set: ONNX sessions and OpenCV objects are not shared between goroutines.
func (a *App) startWorkers(ctx context.Context, kcfg pipeline.Config, engine *rules.Engine, registry *prometheus.Registry) error {
	log := a.cfg.Log
	frames, err := worker.NewFrameHandlers(a.cfg.Analyzers, kcfg.FrameSets, a.Store, engine, registry, log)
	if err != nil {
		return err
	}
	a.closers = append(a.closers, frames.Close)
	audio, err := worker.NewAudioHandlers(a.cfg.Audio, kcfg.Concurrency, a.Store, engine.Weights(), registry, log)
	if err != nil {
		return err
	}
	a.closers = append(a.closers, audio.Close)
	audio.Answers().UseExamSettings(engine)
	// The active model versions before the first message, then whatever gets promoted.
	watcher := &worker.ModelWatcher{Store: a.Store, Frames: frames, Audio: audio, Log: log, Metrics: registry}
	if err := watcher.Apply(ctx); err != nil {
		return err
	}
	dlq, err := pipeline.NewProducer(kcfg, registry)
	if err != nil {
		return err
	}
	a.closers = append(a.closers, func() { dlq.Close() })
	var consumers []*pipeline.Consumer
	for topic, h := range map[string]pipeline.Handler{
		kcfg.Topics.Frames: frames.Handle,
		kcfg.Topics.Audio:  audio.Handle,
		// Dead letters are recorded in the database for admins (GET /v1/admin/deadletter,
		// proctor deadletter list|replay).
		kcfg.Topics.DeadLetter: worker.DeadLetterRecorder(a.Store),
		kcfg.Topics.Events:     worker.AnswerEvents(worker.EventHandler(a.Store, registry), a.Store, audio.Answers()),
	} {
		ccfg := kcfg
		if topic == kcfg.Topics.Frames {
			ccfg.Concurrency = kcfg.FrameReaders // more Readers than analyzer sets
		}
		c, err := pipeline.NewConsumer(ccfg, topic, h, dlq, registry)
		if err != nil {
			return err
		}
		if topic == kcfg.Topics.Frames {
			// One transaction and one offset commit per fetched batch of frames.
			c.HandleBatches(frames.HandleBatch)
		}
		consumers = append(consumers, c)
	}
	for _, c := range consumers {
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			if err := c.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				a.fail(err)
			}
		}()
	}
	// Deadlines with no new input (uploads 30 min after the end, the start for the A4 sheet)
	// are fired by the scheduler; every worker runs one, and sessions are claimed before use.
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		engine.RunScheduler(ctx, a.Store, time.Second, log)
	}()
	// Uploaded recordings: claimed from the database like the scheduler's sessions, so every
	// worker runs a processor and a crashed one's recording is resumed by another.
	recordings := worker.NewRecordingProcessor(a.cfg.Recordings, a.Store, dlq, kcfg.Topics, log)
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		recordings.Run(ctx)
	}()
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		poll := a.cfg.ModelPoll
		if poll <= 0 {
			poll = 10 * time.Second
		}
		watcher.Run(ctx, poll)
	}()
	// Expired personal data (docs/privacy.md): every worker sweeps; claims keep it to once.
	defaults := privacy.Defaults()
	if days := int(a.cfg.AudioRetention.Hours() / 24); days > 0 {
		defaults[privacy.Audio] = days
	}
	sweeper := &privacy.Sweeper{Store: a.Store, RecordingsDir: a.cfg.Recordings.Dir, Defaults: defaults, Log: log}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		every := a.cfg.RetentionSweep
		if every <= 0 {
			every = time.Hour
		}
		sweeper.Run(ctx, every)
	}()
	log.Info("workers started", "topics", []string{kcfg.Topics.Frames, kcfg.Topics.Audio, kcfg.Topics.Events, kcfg.Topics.DeadLetter})
	return nil
}

func dataDirOr(dir string) string {
	if dir == "" {
		return "data"
	}
	return dir
}

func (a *App) fail(err error) {
	a.errMu.Lock()
	defer a.errMu.Unlock()
	if a.firstErr == nil {
		a.firstErr = err
		a.cfg.Log.Error("service failed", "err", err)
	}
}

// Err returns the first fatal error of a background role, if any.
func (a *App) Err() error {
	a.errMu.Lock()
	defer a.errMu.Unlock()
	return a.firstErr
}

// Close stops the roles and releases everything. Order matters: the HTTP server drains first so
// in-flight requests finish their Kafka writes, workers finish the message in hand, and only
// then are the producer, analyzers, broker and database closed.
func (a *App) Close() {
	a.cancel()
	if a.http != nil {
		_ = a.http.ShutdownWithTimeout(10 * time.Second)
	}
	a.wg.Wait()
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
	a.closers = nil
}
