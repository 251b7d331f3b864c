package api

import (
	"context"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"proctor/internal/modelversions"
	"proctor/pipeline"
)

// Health: /healthz and /readyz say only ok/degraded per component — they are public, so never a
// host, a port or an error text. The details go to the log (when a component changes state) and
// to the admin-only GET /v1/admin/status.

// retryAfterSeconds is the Retry-After of a 503: long enough for a database or broker restart
// not to be hammered, short enough for the platform's client to resend soon.
const retryAfterSeconds = "5"

// healthCheck is one check of the components.
type healthCheck struct {
	at       time.Time
	dbErr    error
	kafkaErr error // nil also when Kafka is not checked (no probe)
	kafka    pipeline.KafkaStatus
	models   map[string]string
}

func (h *healthCheck) ok() bool { return h.dbErr == nil && h.kafkaErr == nil }

// healthState caches the last check for Config.HealthCacheTTL, so load balancers polling every
// instance do not hammer the database and the brokers.
type healthState struct {
	mu   sync.Mutex
	last *healthCheck
}

// check reuses the last check while it is recent, or runs one. The admin status asks for a
// fresh one (skipping the cache) with the consumer groups' lag (withLag).
func (s *Server) check(ctx context.Context, fresh, withLag bool) *healthCheck {
	s.health.mu.Lock()
	defer s.health.mu.Unlock()
	if last := s.health.last; !fresh && last != nil && time.Since(last.at) < s.cfg.HealthCacheTTL {
		return last
	}
	h := &healthCheck{at: time.Now()}
	var wg sync.WaitGroup
	if s.cfg.Kafka != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.kafka, h.kafkaErr = s.cfg.Kafka.Check(ctx, withLag)
		}()
	}
	dbCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
	if h.dbErr = s.store.Ping(dbCtx); h.dbErr == nil {
		h.models, h.dbErr = modelversions.InForce(dbCtx, s.store)
	}
	cancel()
	wg.Wait()
	s.logChanges(s.health.last, h)
	s.health.last = h
	return h
}

// logChanges logs a component that went down (with why) or came back, once per change.
func (s *Server) logChanges(prev, now *healthCheck) {
	var db, kafka error
	if prev != nil {
		db, kafka = prev.dbErr, prev.kafkaErr
	}
	for _, c := range []struct {
		name    string
		was, is error
	}{{"database", db, now.dbErr}, {"kafka", kafka, now.kafkaErr}} {
		switch {
		case c.is != nil && c.was == nil:
			s.log.Warn("component down", "component", c.name, "err", c.is)
		case c.is == nil && c.was != nil:
			s.log.Info("component back", "component", c.name)
		}
	}
}

func okOrDown(err error) string {
	if err != nil {
		return "down"
	}
	return "ok"
}

// publicBody is the body of /healthz and /readyz: component names and states only.
func (s *Server) publicBody(h *healthCheck) (int, fiber.Map) {
	comps := fiber.Map{"database": okOrDown(h.dbErr)}
	if s.cfg.Kafka != nil {
		comps["kafka"] = okOrDown(h.kafkaErr)
	}
	if h.ok() {
		return fiber.StatusOK, fiber.Map{"status": "ok", "components": comps}
	}
	return fiber.StatusServiceUnavailable, fiber.Map{"status": "degraded", "components": comps}
}

// healthz: 200 {"status":"ok"} when the database and Kafka answer, 503 {"status":"degraded"}
// otherwise, with each component's state and the model versions in force.
func (s *Server) healthz(c *fiber.Ctx) error {
	h := s.check(c.UserContext(), false, false)
	code, body := s.publicBody(h)
	if h.models != nil {
		body["models"] = h.models
	}
	if code != fiber.StatusOK {
		c.Set(fiber.HeaderRetryAfter, retryAfterSeconds)
	}
	return c.Status(code).JSON(body)
}

// readyz is for load balancers: 200 only while this process can serve (database and Kafka
// reachable).
func (s *Server) readyz(c *fiber.Ctx) error {
	code, body := s.publicBody(s.check(c.UserContext(), false, false))
	if code != fiber.StatusOK {
		c.Set(fiber.HeaderRetryAfter, retryAfterSeconds)
	}
	return c.Status(code).JSON(body)
}

// adminStatus is the operator's view: a fresh check with error texts, the brokers and the
// consumer groups' lag. It answers 200 whatever the components' state: the body says it.
func (s *Server) adminStatus(c *fiber.Ctx) error {
	h := s.check(c.UserContext(), true, true)
	errText := func(err error) any {
		if err == nil {
			return nil
		}
		return err.Error()
	}
	db := fiber.Map{"status": okOrDown(h.dbErr), "driver": map[bool]string{true: "postgres", false: "sqlite"}[s.store.Postgres],
		"error": errText(h.dbErr)}
	comps := fiber.Map{"database": db}
	if p := s.cfg.Kafka; p != nil {
		comps["kafka"] = fiber.Map{"status": okOrDown(h.kafkaErr), "error": errText(h.kafkaErr),
			"bootstrap": p.Config.Brokers, "brokers": h.kafka.Brokers, "lag": h.kafka.Lag, "lag_error": h.kafka.LagError,
			"backlog": h.kafka.Backlog, "max_lag_seconds": s.cfg.MaxLag.Seconds(), "max_lag_messages": s.cfg.MaxLagMessages}
	}
	_, body := s.publicBody(h)
	body["components"] = comps
	body["checked_at"] = h.at.UTC()
	if h.models != nil {
		body["models"] = h.models
	}
	return c.JSON(body)
}
