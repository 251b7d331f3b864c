package api

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"proctor/store"
)

// The live feed: the reviewer page listens to GET /v1/live (server-sent events) and gets every
// flag created or changed in its organisation within about a second — new flags from the
// workers, verdicts by colleagues — without reloading.
//
// Workers may run in other processes, so the API cannot be told about new flags: one poller per
// API process reads flags changed since its last look (an indexed query, once per LivePoll for all
// listeners together) and fans them out by organisation. The poller runs only while someone
// listens.

// liveHub fans flag changes out to the listeners of each organisation.
type liveHub struct {
	store *store.Store
	every time.Duration
	log   *slog.Logger

	mu     sync.Mutex
	subs   map[*liveSub]struct{}
	cancel context.CancelFunc // stops the poller; nil while it is not running
	done   chan struct{}      // closed when the server shuts down
	closed bool
}

type liveSub struct {
	org string
	ch  chan store.FlagChange
}

func newLiveHub(st *store.Store, every time.Duration, log *slog.Logger) *liveHub {
	return &liveHub{store: st, every: every, log: log, subs: map[*liveSub]struct{}{}, done: make(chan struct{})}
}

// Close ends every stream (the server is shutting down).
func (h *liveHub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.closed {
		h.closed = true
		close(h.done)
		if h.cancel != nil {
			h.cancel()
		}
	}
}

func (h *liveHub) subscribe(org string) *liveSub {
	sub := &liveSub{org: org, ch: make(chan store.FlagChange, 256)}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.subs[sub] = struct{}{}
	if h.cancel == nil && !h.closed {
		ctx, cancel := context.WithCancel(context.Background())
		h.cancel = cancel
		go h.poll(ctx)
	}
	return sub
}

func (h *liveHub) unsubscribe(sub *liveSub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.subs, sub)
	if len(h.subs) == 0 && h.cancel != nil {
		h.cancel()
		h.cancel = nil
	}
}

// liveOverlap re-reads this far back on every poll: a transaction that committed late may carry
// an updated_at older than the last poll. Seen changes are remembered so none is sent twice.
const liveOverlap = 5 * time.Second

func (h *liveHub) poll(ctx context.Context) {
	t := time.NewTicker(h.every)
	defer t.Stop()
	last := time.Now()
	seen := map[string]time.Time{} // "id@updated_at" → updated_at
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		changes, err := h.store.FlagsChangedSince(ctx, last.Add(-liveOverlap), 1000)
		if err != nil {
			if ctx.Err() == nil {
				h.log.Warn("live feed: reading changed flags failed", "err", err)
			}
			continue
		}
		var fresh []store.FlagChange
		for _, fc := range changes {
			k := strconv.FormatUint(uint64(fc.ID), 10) + "@" + strconv.FormatInt(fc.UpdatedAt.UnixNano(), 10)
			if _, ok := seen[k]; !ok {
				seen[k] = fc.UpdatedAt
				fresh = append(fresh, fc)
			}
		}
		for k, at := range seen {
			if at.Before(now.Add(-3 * liveOverlap)) {
				delete(seen, k)
			}
		}
		last = now
		if len(fresh) == 0 {
			continue
		}
		h.mu.Lock()
		for sub := range h.subs {
			for _, fc := range fresh {
				if fc.OrgID != sub.org {
					continue
				}
				select {
				case sub.ch <- fc:
				default: // a stalled listener loses changes rather than stalling everyone; it reloads on reconnect
				}
			}
		}
		h.mu.Unlock()
	}
}

// liveFeed streams the organisation's flag changes as server-sent events ("event: flag", data:
// the flag with its session's risk and counts; id: the change's time in ms, so a reconnecting
// browser sends Last-Event-ID and gets what it missed).
func (s *Server) liveFeed(c *fiber.Ctx) error {
	org := principal(c).OrgID
	var since time.Time
	if v, err := strconv.ParseInt(c.Get("Last-Event-ID"), 10, 64); err == nil && v > 0 {
		since = time.UnixMilli(v)
	}
	c.Set(fiber.HeaderContentType, "text/event-stream")
	c.Set(fiber.HeaderCacheControl, "no-cache")
	c.Set("X-Accel-Buffering", "no")
	hub := s.live
	// Closed when the server shuts down, before it waits for open connections: a stream must end
	// then, or shutdown would wait for it until its timeout.
	serverDone := c.Context().Done()
	c.Context().SetBodyStreamWriter(fasthttp.StreamWriter(func(w *bufio.Writer) {
		sub := hub.subscribe(org)
		defer hub.unsubscribe(sub)
		send := func(fc store.FlagChange) error {
			data, _ := json.Marshal(fc)
			fmt.Fprintf(w, "id: %d\nevent: flag\ndata: %s\n\n", fc.UpdatedAt.UnixMilli(), data)
			return w.Flush()
		}
		fmt.Fprintf(w, "retry: 2000\nevent: hello\ndata: {}\n\n")
		if w.Flush() != nil {
			return
		}
		if !since.IsZero() { // catch up after a reconnect
			missed, err := s.store.FlagsChangedSince(context.Background(), since, 500)
			if err == nil {
				for _, fc := range missed {
					if fc.OrgID == org && send(fc) != nil {
						return
					}
				}
			}
		}
		// Comments keep proxies from closing an idle stream and reveal a gone browser.
		ping := time.NewTicker(15 * time.Second)
		defer ping.Stop()
		for {
			select {
			case fc := <-sub.ch:
				if send(fc) != nil {
					return
				}
			case <-ping.C:
				w.WriteString(": ping\n\n")
				if w.Flush() != nil {
					return
				}
			case <-hub.done:
				return
			case <-serverDone:
				return
			}
		}
	}))
	return nil
}
