// Package worker is what consumes the Kafka topics (package pipeline carries them): the frame,
// audio and event handlers that analyse, store and raise flags, the processor that turns
// uploaded recordings into frame and audio messages, and the watcher that keeps the analyzers on
// the active and shadow model versions. The API never imports it.
package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"proctor/analyzers"
	"proctor/pipeline"
	"proctor/rules"
	"proctor/store"
)

// FrameHandlers analyses frame messages and stores results and flags. ONNX sessions and OpenCV
// objects must not be shared between goroutines, so it keeps a pool of analyzer sets, one per
// concurrent handler, created on first use.
type FrameHandlers struct {
	cfg   analyzers.Config
	store *store.Store
	rules *rules.Engine
	log   *slog.Logger
	pool  livePool[*analyzers.Set]
	// galleries caches each session's reference faces (vision.go).
	galleries galleryCache

	analyzeSeconds  prometheus.Histogram
	pipelineSeconds prometheus.Histogram
	duplicates      prometheus.Counter
	maxConcurrent   int
}

// NewFrameHandlers builds the frame handler for up to maxConcurrent goroutines. It loads one
// analyzer set straight away so a missing model fails at start-up, not on the first frame.
func NewFrameHandlers(cfg analyzers.Config, maxConcurrent int, st *store.Store, eng *rules.Engine,
	metrics prometheus.Registerer, log *slog.Logger) (*FrameHandlers, error) {
	maxConcurrent = max(maxConcurrent, 1)
	if cfg.CameraMotion.Thumbs == nil {
		// One store for every pooled set: a session's consecutive frames may land on any of them.
		cfg.CameraMotion.Thumbs = analyzers.NewThumbStore(0)
	}
	h := &FrameHandlers{cfg: cfg, store: st, rules: eng, log: log}
	h.maxConcurrent = maxConcurrent
	if err := h.Reload(cfg); err != nil {
		return nil, err
	}
	h.analyzeSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "proctor_frame_analyze_seconds", Help: "Time to decode and analyse one frame.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 12)})
	h.pipelineSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "proctor_frame_pipeline_seconds", Help: "From API acceptance to stored result.",
		Buckets: prometheus.ExponentialBuckets(0.002, 2, 14)})
	h.duplicates = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "proctor_frame_duplicates_total", Help: "Frames skipped because they were already stored (redelivery or resend)."})
	if metrics != nil {
		metrics.MustRegister(h.analyzeSeconds, h.pipelineSeconds, h.duplicates)
	}
	return h, nil
}

// Close releases the analyzer sets. Call it only after every consumer has stopped.
func (h *FrameHandlers) Close() { h.pool.Close() }

// Reload builds analyzer sets from cfg (another active or shadow model version) and hands them
// to the next frames; frames being analysed finish on the old sets. On error nothing changes.
func (h *FrameHandlers) Reload(cfg analyzers.Config) error {
	if cfg.CameraMotion.Thumbs == nil {
		cfg.CameraMotion.Thumbs = h.cfg.CameraMotion.Thumbs
	}
	p, err := newSetPool(h.maxConcurrent, func() (*analyzers.Set, error) { return analyzers.NewSet(cfg) })
	if err != nil {
		return fmt.Errorf("load analyzers: %w", err)
	}
	h.cfg = cfg
	h.pool.swap(p)
	return nil
}

// Config is the analyzer configuration in force (the model watcher derives the next from it).
func (h *FrameHandlers) Config() analyzers.Config { return h.cfg }

// Handle analyses one frame message: decode → analyzers → store + rules in one transaction.
func (h *FrameHandlers) Handle(ctx context.Context, m kafka.Message) error {
	fm, err := pipeline.DecodeFrame(m)
	if err != nil {
		return pipeline.Permanent(fmt.Errorf("decode frame message: %w", err))
	}
	// A redelivered frame was stored before the crash; skipping it here saves the model time.
	// The unique key below still guards against a race.
	if done, err := h.store.FrameStored(ctx, fm.SessionID, fm.Camera, fm.Seq); err != nil {
		return err
	} else if done {
		h.duplicates.Inc()
		return nil
	}
	sess, err := h.store.GetSession(ctx, "", fm.SessionID)
	if errors.Is(err, store.ErrNotFound) {
		return pipeline.Permanent(fmt.Errorf("frame for unknown session %s", fm.SessionID))
	} else if err != nil {
		return err
	}
	// The exam's own settings (checks on/off, durations, weights); cached, not a query per frame.
	eng, err := h.rules.Effective(h.store.DB.WithContext(ctx), sess.OrgID, sess.ExamID)
	if err != nil {
		return err
	}

	pool := h.pool.load()
	set, err := pool.get(ctx)
	if err != nil {
		return err
	}
	start := time.Now()
	meta := analyzers.FrameMeta{Camera: fm.Camera, Session: fm.SessionID, CapturedAt: time.UnixMilli(fm.CapturedAtMs)}
	if fm.Camera == analyzers.CameraMain {
		if meta.Enrolled, err = h.enrollment(ctx, set, sess); err != nil {
			pool.put(set)
			return err
		}
	}
	obs, err := set.AnalyzeFrameJPEG(ctx, fm.JPEG, meta)
	version := modelVersion(set)
	pool.put(set)
	if err != nil {
		if invalidImage(err) {
			return pipeline.Permanent(fmt.Errorf("frame %s/%s/%d: %w", fm.SessionID, fm.Camera, fm.Seq, err))
		}
		return err
	}
	h.analyzeSeconds.Observe(time.Since(start).Seconds())

	obsJSON, err := json.Marshal(obs)
	if err != nil {
		return pipeline.Permanent(err)
	}
	signals, err := eng.Observe(&obs, fm.Camera)
	if err != nil {
		return pipeline.Permanent(err)
	}
	fr := &store.FrameResult{SessionID: fm.SessionID, Camera: fm.Camera, Seq: fm.Seq,
		CapturedAtMs: fm.CapturedAtMs, ReceivedAtMs: fm.ReceivedAtMs, Signals: signals, Observation: string(obsJSON)}
	var flagged []uint
	err = h.store.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		fr.StoredAtMs = time.Now().UnixMilli()
		isNew, err := store.InsertFrameResult(tx, fr)
		if err != nil || !isNew {
			return err
		}
		flagged, err = eng.ApplyFrame(tx, rules.FrameInput{Result: fr, JPEG: fm.JPEG, ModelVersion: version, Session: sess})
		if err != nil {
			return err
		}
		if err := h.updateGallery(tx, sess, fr, fm.JPEG, &obs, eng); err != nil {
			return err
		}
		if err := storeShadows(tx, fr, &obs); err != nil {
			return err
		}
		// Evidence frames feed the timing rules (recording gaps, A4 sheet, room scan), and new
		// flags need their phase stamped: both happen in the session's next timing check.
		if fr.Camera == analyzers.CameraEvidence || len(flagged) > 0 {
			return rules.MarkDirty(tx, fr.SessionID, time.Now())
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store frame %s/%s/%d: %w", fm.SessionID, fm.Camera, fm.Seq, err)
	}
	if fm.ReceivedAtMs > 0 {
		h.pipelineSeconds.Observe(float64(fr.StoredAtMs-fm.ReceivedAtMs) / 1000)
	}
	if len(flagged) > 0 {
		h.log.Debug("frame raised flags", "session", fm.SessionID, "seq", fm.Seq, "flags", flagged)
	}
	return nil
}

// storeShadows keeps what shadow model versions said about the frame's main face (the one the
// rules judge), apart from its result.
func storeShadows(tx *gorm.DB, fr *store.FrameResult, obs *analyzers.Observation) error {
	if len(obs.Shadow) == 0 {
		return nil // the usual case: no version in shadow
	}
	main := analyzers.MainFace(obs.Faces, 0)
	for _, sh := range obs.Shadow {
		outputs := make([]analyzers.ShadowOutput, 0, len(sh.Outputs))
		for _, o := range sh.Outputs {
			if o.Face == main {
				outputs = append(outputs, o)
			}
		}
		if len(outputs) == 0 {
			continue
		}
		sh.Outputs = outputs
		out, err := json.Marshal(sh.Outputs)
		if err != nil {
			return err
		}
		agree := true
		for _, o := range sh.Outputs {
			agree = agree && o.Active.Present == o.Shadow.Present
		}
		row := store.ShadowObservation{Model: sh.Model, SessionID: fr.SessionID, Camera: fr.Camera, Seq: fr.Seq,
			Active: sh.Active, CapturedAtMs: fr.CapturedAtMs, Outputs: string(out), Agree: agree, CreatedAt: time.Now().UTC()}
		if err := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&row).Error; err != nil {
			return err
		}
	}
	return nil
}

// invalidImage reports whether an analysis error is the frame's fault: retrying cannot help.
func invalidImage(err error) bool {
	for _, e := range []error{analyzers.ErrNotJPEG, analyzers.ErrTruncated, analyzers.ErrCorruptJPEG,
		analyzers.ErrUnsupported, analyzers.ErrTooSmall, analyzers.ErrTooLarge, analyzers.ErrDecode} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// modelVersion names the analyzers and model versions that produced a result, stored on flags.
func modelVersion(set *analyzers.Set) string {
	v := set.Versions()
	names := make([]string, 0, len(v))
	for n := range v {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for i, n := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(n + "=" + v[n])
	}
	return b.String()
}

// EventHandler stores exam-flow events. The exam-flow state machine builds on these rows.
func EventHandler(st *store.Store) pipeline.Handler {
	return func(ctx context.Context, m kafka.Message) error {
		em, err := pipeline.DecodeEvent(m)
		if err != nil {
			return pipeline.Permanent(fmt.Errorf("decode event message: %w", err))
		}
		return st.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			isNew, err := store.InsertEvent(tx, &store.Event{SessionID: em.SessionID, Seq: em.Seq,
				Type: em.Type, CapturedAtMs: em.CapturedAtMs, ReceivedAtMs: em.ReceivedAtMs, Payload: string(em.Payload)})
			if err != nil || !isNew {
				return err
			}
			return rules.MarkDirty(tx, em.SessionID, time.Now())
		})
	}
}
