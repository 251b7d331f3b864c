// Package api is the HTTP side of the service (Fiber): ingest for the exam platform, the
// reviewer API, admin calls, health, metrics and the OpenAPI document.
package api

import (
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/gofiber/fiber/v2/utils"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"proctor/export"
	"proctor/pipeline"
	"proctor/privacy"
	"proctor/rules"
	"proctor/store"
)

// Config of the HTTP API. Zero values take the defaults.
type Config struct {
	// MaxFrameBytes caps one JPEG frame. Default 900 KiB: a 1080p JPEG is ~300 KiB, and one
	// Kafka message must stay under the broker's 1 MiB message.max.bytes default.
	MaxFrameBytes int
	// MaxAudioBytes caps one audio chunk. Default 900 KiB (~28 s of 16 kHz s16le), for the
	// same Kafka limit.
	MaxAudioBytes int
	// MaxPhotoBytes caps the registration photo. Default 5 MiB.
	MaxPhotoBytes int
	// MaxFutureSkew: captured_at may be at most this far ahead of the server clock. Default 5 min.
	MaxFutureSkew time.Duration
	// MaxAge: captured_at may be at most this old (late uploads after a reconnect). Default 7 days.
	MaxAge time.Duration
	// Topics the API produces to.
	Topics pipeline.Topics
	// SignInBurst failed sign-ins per account (email) are allowed in a row, then one more per
	// SignInEvery; the account then answers 429 with Retry-After. Defaults 10 and 30 s.
	SignInBurst int
	SignInEvery time.Duration
	// SignInIPBurst failed sign-ins per client address, over all accounts, leaking at the same
	// rate. Higher than SignInBurst: one person's typos must not lock out everyone behind the
	// same NAT, while a guesser trying many accounts from one address is still stopped.
	// Default 10 × SignInBurst.
	SignInIPBurst int
	// LivePoll is how often the live feed (server-sent events) looks for changed flags. Default 1 s.
	LivePoll time.Duration
	// Recordings configures uploads of whole recordings (recordings.go).
	Recordings RecordingUploads
	// RetentionDefaults override the declared retention defaults for this service (privacy.go);
	// organisations and exams override them in turn.
	RetentionDefaults privacy.Policy
	// Kafka is checked by /healthz, /readyz and GET /v1/admin/status. Nil: not checked, and
	// left out of their answers.
	Kafka *pipeline.KafkaProbe
	// HealthCacheTTL: /healthz and /readyz reuse a check this recent, so load balancers polling
	// every instance do not hammer the database and the brokers. Default 2 s.
	HealthCacheTTL time.Duration
	// MaxLag bounds the analysis delay: while the oldest frame (or audio chunk) that the workers
	// have not processed was accepted longer ago than this, posts of frames (audio) answer 429
	// with Retry-After (backpressure.go). Zero: no bound. The binary's default is 30 s.
	MaxLag time.Duration
	// MaxLagMessages bounds the same backlog in messages per topic. Zero: no bound.
	MaxLagMessages int64
	// BacklogEvery is how often the backlog is read from Kafka (Kafka is needed). Default 1 s.
	BacklogEvery time.Duration
}

func (c Config) withDefaults() Config {
	if c.MaxFrameBytes == 0 {
		c.MaxFrameBytes = 900 << 10
	}
	if c.MaxAudioBytes == 0 {
		c.MaxAudioBytes = 900 << 10
	}
	if c.MaxPhotoBytes == 0 {
		c.MaxPhotoBytes = 5 << 20
	}
	if c.MaxFutureSkew == 0 {
		c.MaxFutureSkew = 5 * time.Minute
	}
	if c.MaxAge == 0 {
		c.MaxAge = 7 * 24 * time.Hour
	}
	if c.SignInBurst == 0 {
		c.SignInBurst = 10
	}
	if c.SignInIPBurst == 0 {
		c.SignInIPBurst = 10 * c.SignInBurst
	}
	if c.BacklogEvery == 0 {
		c.BacklogEvery = time.Second
	}
	if c.HealthCacheTTL == 0 {
		c.HealthCacheTTL = 2 * time.Second
	}
	if c.SignInEvery == 0 {
		c.SignInEvery = 30 * time.Second
	}
	if c.LivePoll == 0 {
		c.LivePoll = time.Second
	}
	c.Recordings = c.Recordings.withDefaults()
	return c
}

// Server holds what the handlers need.
type Server struct {
	cfg       Config
	store     *store.Store
	pub       pipeline.Sender
	rules     *rules.Engine
	log       *slog.Logger
	registry  *prometheus.Registry
	bodyLimit int
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec

	// timelineExtras add sections to the timeline (answers, recordings) from other features.
	timelineExtras []func(c *fiber.Ctx, sess *store.Session, body fiber.Map) error

	// sessionKeys caches organisation + the platform's session id → the session's key for the
	// ingest hot path; sessions never move, and a deletion removes its entries here (another API
	// process's stale entry only sends messages the workers drop and count).
	sessionKeys sync.Map

	signIn   limiter      // failed sign-ins per account (auth.go)
	signInIP limiter      // failed sign-ins per client address (auth.go)
	health   healthState  // last check of the database and Kafka (health.go)
	backlogs backlogState // the consumer groups' backlog, for backpressure (backpressure.go)
	live     *liveHub     // flag changes for the reviewer page (live.go)
	// media caches the reviewer's filmstrip thumbnails (media.go).
	media mediaState
	// cropper aligns faces for dataset exports, loaded on the first export (dataloop.go).
	cropper export.Cropper
	// ears draws an evidence frame's ear crops for ear flags (review_ears.go).
	ears earStrip
}

// New builds the Fiber app. registry receives the HTTP metrics and is served at /metrics.
func New(cfg Config, st *store.Store, pub pipeline.Sender, eng *rules.Engine, registry *prometheus.Registry, log *slog.Logger) *fiber.App {
	cfg = cfg.withDefaults()
	s := &Server{cfg: cfg, store: st, pub: pub, rules: eng, log: log, registry: registry,
		signIn:   limiter{Burst: cfg.SignInBurst, Every: cfg.SignInEvery},
		signInIP: limiter{Burst: cfg.SignInIPBurst, Every: cfg.SignInEvery}}
	s.media.thumbs.max = thumbCacheSize
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "proctor_http_requests_total", Help: "HTTP requests by route and status.",
	}, []string{"route", "status"})
	s.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "proctor_http_request_seconds", Help: "HTTP request latency by route.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
	}, []string{"route"})
	registry.MustRegister(s.requests, s.latency)
	s.registerBacklog(registry)

	s.bodyLimit = max(cfg.MaxFrameBytes, cfg.MaxAudioBytes, cfg.MaxPhotoBytes, cfg.Recordings.MaxChunkBytes) + 64<<10
	app := fiber.New(fiber.Config{
		AppName:   "proctor",
		BodyLimit: s.bodyLimit,
		// The request line and headers: room for every query parameter at its 1024-character
		// limit, percent-encoded; beyond it fasthttp answers 431 itself.
		ReadBufferSize: maxHeaderBytes,
		// Handlers see path parameters decoded ("%41" is "A"): the id a client percent-encodes
		// is the id it means, and limits count its characters, not its escapes.
		UnescapePath:          true,
		ReadTimeout:           30 * time.Second,
		WriteTimeout:          30 * time.Second,
		IdleTimeout:           90 * time.Second,
		DisableStartupMessage: true,
		ErrorHandler:          s.errorHandler,
	})
	app.Use(recover.New(), s.observe)

	app.Get("/healthz", s.healthz)
	app.Get("/readyz", s.readyz)
	app.Get("/metrics", adaptor.HTTPHandler(promhttp.HandlerFor(registry, promhttp.HandlerOpts{})))
	app.Get("/openapi.yaml", func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, "application/yaml")
		return c.Send(openAPI)
	})

	v1 := app.Group("/v1", s.checkText) // text.go: no invalid UTF-8, NUL or oversized strings
	ingest, review, admin := s.auth(store.ScopeIngest), s.auth(store.ScopeReview), s.auth(store.ScopeAdmin)
	v1.Get("/admin/status", admin, s.adminStatus)
	v1.Post("/sessions", ingest, s.createSession)
	v1.Post("/sessions/:id/frames", ingest, s.postFrame)
	v1.Post("/sessions/:id/audio", ingest, s.postAudio)
	v1.Post("/sessions/:id/events", ingest, s.postEvents)
	v1.Post("/sessions/:id/recordings", ingest, s.createRecording)
	v1.Get("/sessions/:id/recordings", ingest, s.listRecordings)
	v1.Put("/sessions/:id/recordings/:rid", ingest, maxParams(recordingID), s.putChunk)
	v1.Get("/sessions/:id/recordings/:rid", ingest, maxParams(recordingID), s.getRecording)
	s.timelineExtras = append(s.timelineExtras, s.recordingsTimeline)

	v1.Get("/sessions", review, maxParams(queueParams), s.listSessions)
	v1.Get("/sessions/:id", review, s.getSession)
	v1.Get("/sessions/:id/answers", review, s.getAnswers)
	s.timelineExtras = append(s.timelineExtras, s.answersTimeline)
	v1.Get("/sessions/:id/timeline", review, s.getTimeline)
	// The reviewer's media: filmstrip frames, stored audio, playable recordings (media.go).
	v1.Get("/sessions/:id/media", review, s.getMedia)
	v1.Get("/sessions/:id/frames", review, s.listFrames)
	v1.Get("/sessions/:id/frames/:camera/:seq", review, s.getFrameImage)
	v1.Get("/sessions/:id/audio", review, s.getAudio)
	v1.Get("/sessions/:id/audio/peaks", review, s.getAudioPeaks)
	v1.Get("/sessions/:id/recordings/:rid/video", review, maxParams(recordingID), s.getRecordingVideo)
	v1.Get("/flags/:id", review, s.getFlag)
	v1.Get("/flags/:id/evidence", review, s.getEvidence)
	v1.Post("/flags/:id/verdict", review, s.postVerdict)

	v1.Post("/keys", admin, s.createKey)
	s.privacyRoutes(v1, admin)
	v1.Get("/audit", admin, maxParams(map[string]int{"action": 64, "actor": 320, "target": 320}), s.listAudit)

	// Reviewer workspace: sign-in, users, verdicts, live feed, reports, settings, the web page.
	s.workspaceRoutes(app, v1)

	// Last: a known path asked with another method answers 405 with Allow (methods.go).
	rt := &routeTable{app: app}
	app.Use(methodNotAllowed(rt))
	unknownMethods(app, rt)
	return app
}

//go:embed openapi.yaml
var openAPI []byte

// maxHeaderBytes bounds the request line and headers (documented in api/openapi.yaml).
const maxHeaderBytes = 64 << 10

// apiError is the JSON body of every 4xx/5xx answer.
type apiError struct {
	Error string `json:"error"`
}

func (s *Server) errorHandler(c *fiber.Ctx, err error) error {
	code := fiber.StatusInternalServerError
	msg := "internal error"
	var fe *fiber.Error
	switch {
	case errors.As(err, &fe):
		code, msg = fe.Code, fe.Message
		if code == fiber.StatusRequestEntityTooLarge && msg == utils.StatusMessage(code) {
			msg = fmt.Sprintf("request body too large: the limit is %d bytes", s.bodyLimit)
		}
	case store.Unavailable(err):
		// The database is down, restarting or too slow: the same request will work again, so
		// say so (503 + Retry-After), and keep the driver's text (hosts, ports) in the log.
		code, msg = fiber.StatusServiceUnavailable, "service temporarily unavailable (database unreachable): retry in a few seconds"
		s.log.Warn("request failed: database unavailable", "method", c.Method(), "path", c.Path(), "err", err)
	default:
		s.log.Error("request failed", "method", c.Method(), "path", c.Path(), "err", err)
	}
	if code == fiber.StatusServiceUnavailable && len(c.Response().Header.Peek(fiber.HeaderRetryAfter)) == 0 {
		c.Set(fiber.HeaderRetryAfter, retryAfterSeconds)
	}
	return c.Status(code).JSON(apiError{Error: msg})
}

func (s *Server) observe(c *fiber.Ctx) error {
	start := time.Now()
	err := c.Next()
	status := c.Response().StatusCode()
	if err != nil {
		var fe *fiber.Error
		switch {
		case errors.As(err, &fe):
			status = fe.Code
		case store.Unavailable(err):
			status = fiber.StatusServiceUnavailable
		default:
			status = fiber.StatusInternalServerError
		}
	}
	route := c.Route().Path
	s.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	s.latency.WithLabelValues(route).Observe(time.Since(start).Seconds())
	return err
}

// bad answers a 4xx with a message that says what was wrong.
func bad(code int, msg string) error { return fiber.NewError(code, msg) }
