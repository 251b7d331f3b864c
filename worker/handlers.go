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
	"sync"
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
	// sched is the analysis schedule of the sessions whose partitions this worker owns.
	sched *analyzers.Schedule

	analyzeSeconds  prometheus.Histogram
	pipelineSeconds prometheus.Histogram
	duplicates      prometheus.Counter
	// Per analyzer: CPU seconds spent, and frames it ran on or the schedule skipped.
	analyzerSeconds *prometheus.CounterVec
	analyzerFrames  *prometheus.CounterVec
	deleted         *prometheus.CounterVec // frames of deleted sessions, dropped (deleted.go)
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
	cfg = cfg.Scheduled() // identity's cadence is part of the analysis schedule
	h := &FrameHandlers{cfg: cfg, store: st, rules: eng, log: log, sched: analyzers.NewSchedule(cfg.Schedule)}
	h.maxConcurrent = maxConcurrent
	h.analyzerSeconds = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "proctor_analyzer_seconds_total", Help: "CPU time spent in each frame analyzer (its thread's, Linux)."}, []string{"analyzer"})
	h.analyzerFrames = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "proctor_analyzer_frames_total", Help: "Frames each analyzer ran on (ran=true) or the analysis schedule skipped (ran=false)."},
		[]string{"analyzer", "ran"})
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
		metrics.MustRegister(h.analyzeSeconds, h.pipelineSeconds, h.duplicates, h.analyzerSeconds, h.analyzerFrames)
	}
	h.deleted = deletedMessages(metrics)
	return h, nil
}

func (h *FrameHandlers) observeAnalyzer(name string, ran bool, d time.Duration) {
	if ran {
		h.analyzerSeconds.WithLabelValues(name).Add(d.Seconds())
		h.analyzerFrames.WithLabelValues(name, "true").Inc()
	} else {
		h.analyzerFrames.WithLabelValues(name, "false").Inc()
	}
}

// Close releases the analyzer sets. Call it only after every consumer has stopped.
func (h *FrameHandlers) Close() { h.pool.Close() }

// Reload builds analyzer sets from cfg (another active or shadow model version) and hands them
// to the next frames; frames being analysed finish on the old sets. On error nothing changes.
func (h *FrameHandlers) Reload(cfg analyzers.Config) error {
	if cfg.CameraMotion.Thumbs == nil {
		cfg.CameraMotion.Thumbs = h.cfg.CameraMotion.Thumbs
	}
	p, err := newSetPool(h.maxConcurrent, func() (*analyzers.Set, error) {
		s, err := analyzers.NewSet(cfg)
		if err == nil {
			s.ObserveAnalyzers(h.observeAnalyzer)
		}
		return s, err
	})
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
	return h.HandleBatch(ctx, []kafka.Message{m})
}

// frameJob is one frame of a batch on its way to the store.
type frameJob struct {
	fm      pipeline.FrameMessage
	eng     *rules.Engine
	obs     analyzers.Observation
	fr      *store.FrameResult
	version string
	enr     *analyzers.Enrollment // what a main-camera frame was compared with (nil: nothing)
}

// HandleBatch analyses a fetched batch of frame messages and stores their results, the rules'
// flags and shadow outputs in one transaction: one multi-row insert, the rules' state read once
// per session and camera, each session's risk recomputed once. Either every frame of the batch is
// stored or none is. Any error (a Permanent one included) makes the consumer retry the batch
// message by message, which isolates a poison message (pipeline.BatchHandler).
func (h *FrameHandlers) HandleBatch(ctx context.Context, msgs []kafka.Message) error {
	jobs := make([]frameJob, 0, len(msgs))
	var enrol []string
	for _, m := range msgs {
		if pipeline.Kind(m) == pipeline.KindEnroll {
			e, err := pipeline.DecodeEnroll(m)
			if err != nil {
				return err
			}
			enrol = append(enrol, e.SessionID)
			continue
		}
		fm, err := pipeline.DecodeFrame(m)
		if err != nil {
			return pipeline.Permanent(fmt.Errorf("decode frame message: %w", err))
		}
		jobs = append(jobs, frameJob{fm: fm})
	}
	// A session's enrol request comes before its frames (same key, same partition).
	if err := h.enrollAhead(ctx, enrol); err != nil {
		return err
	}
	if len(jobs) == 0 {
		return nil
	}
	// A redelivered frame was stored before the crash; skipping it here saves the model time.
	// The unique key still guards against a race (the insert below then fails and is retried).
	jobs, err := h.skipStored(ctx, jobs)
	if err != nil || len(jobs) == 0 {
		return err
	}
	sessions := map[string]*store.Session{}
	engines := map[string]*rules.Engine{}
	deleted := map[string]bool{}
	for i := range jobs {
		id := jobs[i].fm.SessionID
		if sessions[id] == nil && !deleted[id] {
			sess, err := h.store.GetSession(ctx, "", id)
			if errors.Is(err, store.ErrNotFound) {
				if gone, err := store.SessionDeleted(h.store.DB.WithContext(ctx), id); err != nil {
					return err
				} else if gone {
					deleted[id] = true
					continue
				}
				return pipeline.Permanent(fmt.Errorf("frame for unknown session %s", id))
			} else if err != nil {
				return err
			}
			// The exam's own settings (checks on/off, durations, weights); cached, not a query.
			if engines[id], err = h.rules.Effective(h.store.DB.WithContext(ctx), sess.OrgID, sess.ExamID); err != nil {
				return err
			}
			sessions[id] = sess
		}
		jobs[i].eng = engines[id]
	}
	if len(deleted) > 0 {
		kept := jobs[:0]
		for _, j := range jobs {
			if deleted[j.fm.SessionID] {
				h.deleted.WithLabelValues("frames").Inc()
				continue
			}
			kept = append(kept, j)
		}
		if jobs = kept; len(jobs) == 0 {
			return nil
		}
	}

	if err := h.analyzeBatch(ctx, sessions, jobs); err != nil {
		return err
	}

	err = h.store.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		for id := range sessions {
			if err := checkAlive(tx, h.store.Postgres, id); err != nil {
				return err
			}
		}
		now := time.Now().UnixMilli()
		rows := make([]*store.FrameResult, len(jobs))
		b := rules.NewBatch(tx)
		for i := range jobs {
			jobs[i].fr.StoredAtMs = now
			rows[i] = jobs[i].fr
			b.Pending(jobs[i].fr.SessionID, jobs[i].fr.Camera, jobs[i].fr.Seq)
		}
		if err := store.InsertFrameResults(tx, rows); err != nil {
			return err
		}
		// The JPEGs are kept for the reviewer's filmstrip (both cameras around a flag), in the
		// same transaction as the results: a frame listed is a frame whose image was kept.
		imgs := make([]*store.FrameImage, len(jobs))
		for i := range jobs {
			imgs[i] = &store.FrameImage{SessionID: jobs[i].fr.SessionID, Camera: jobs[i].fr.Camera, Seq: jobs[i].fr.Seq,
				CapturedAtMs: jobs[i].fr.CapturedAtMs, JPEG: jobs[i].fm.JPEG}
		}
		if err := store.InsertFrameImages(tx, imgs); err != nil {
			return err
		}
		dirty := map[string]bool{}
		for i := range jobs {
			j := &jobs[i]
			sess := sessions[j.fm.SessionID]
			flagged, err := j.eng.ApplyBatch(b, rules.FrameInput{Result: j.fr, JPEG: j.fm.JPEG, ModelVersion: j.version, Session: sess})
			if err != nil {
				return fmt.Errorf("frame %s/%s/%d: %w", j.fm.SessionID, j.fm.Camera, j.fm.Seq, err)
			}
			if err := h.updateGallery(tx, sess, j.fr, j.fm.JPEG, &j.obs, j.eng, j.enr); err != nil {
				return err
			}
			if err := storeShadows(tx, j.fr, &j.obs); err != nil {
				return err
			}
			// Evidence frames feed the timing rules (recording gaps, A4 sheet, room scan), and new
			// flags need their phase stamped: both happen in the session's next timing check.
			if j.fr.Camera == analyzers.CameraEvidence || len(flagged) > 0 {
				dirty[j.fr.SessionID] = true
			}
			if len(flagged) > 0 {
				h.log.Debug("frame raised flags", "session", j.fm.SessionID, "seq", j.fm.Seq, "flags", flagged)
			}
		}
		if err := b.Finish(); err != nil {
			return err
		}
		for id := range dirty {
			if err := rules.MarkDirty(tx, id, time.Now()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store %d frames (first %s/%s/%d): %w", len(jobs), jobs[0].fm.SessionID, jobs[0].fm.Camera, jobs[0].fm.Seq, err)
	}
	for i := range jobs {
		if fm := &jobs[i].fm; fm.ReceivedAtMs > 0 {
			h.pipelineSeconds.Observe(float64(jobs[i].fr.StoredAtMs-fm.ReceivedAtMs) / 1000)
		}
	}
	return nil
}

// skipStored drops the frames already stored (redeliveries, resends) and repeats within the batch.
func (h *FrameHandlers) skipStored(ctx context.Context, jobs []frameJob) ([]frameJob, error) {
	type key struct {
		session, camera string
		seq             int64
	}
	bySession := map[string][]int64{}
	for _, j := range jobs {
		bySession[j.fm.SessionID] = append(bySession[j.fm.SessionID], j.fm.Seq)
	}
	seen := map[key]bool{}
	for id, seqs := range bySession {
		stored, err := h.store.StoredFrames(ctx, id, seqs)
		if err != nil {
			return nil, err
		}
		for _, k := range stored {
			seen[key{id, k.Camera, k.Seq}] = true
		}
	}
	out := jobs[:0]
	for _, j := range jobs {
		k := key{j.fm.SessionID, j.fm.Camera, j.fm.Seq}
		if seen[k] {
			h.duplicates.Inc()
			continue
		}
		seen[k] = true
		out = append(out, j)
	}
	return out, nil
}

// analyze runs the analyzers on one frame of a batch and prepares its result row.
// analyzeBatch analyses a batch's frames: each session's in order on its own analyzer set, the
// sessions side by side (as many at once as the pool has sets), so a reader whose partitions
// hold more sessions than another's still keeps every core busy.
func (h *FrameHandlers) analyzeBatch(ctx context.Context, sessions map[string]*store.Session, jobs []frameJob) error {
	bySession := map[string][]int{}
	var order []string
	for i := range jobs {
		id := jobs[i].fm.SessionID
		if bySession[id] == nil {
			order = append(order, id)
		}
		bySession[id] = append(bySession[id], i)
	}
	return h.withSets(order, func(set *analyzers.Set, id string) error {
		for _, i := range bySession[id] {
			if err := h.analyze(ctx, set, sessions[id], &jobs[i]); err != nil {
				return err
			}
		}
		return nil
	})
}

// withSets runs fn for each session on an analyzer set of the pool, the sessions side by side
// (as many at once as the pool has sets), and returns the first error.
func (h *FrameHandlers) withSets(sessions []string, fn func(set *analyzers.Set, session string) error) error {
	pool := h.pool.load()
	run := func(id string) error {
		set, release, err := pool.acquire(id)
		if err != nil {
			return err
		}
		defer release()
		return fn(set, id)
	}
	if len(sessions) == 1 {
		return run(sessions[0])
	}
	errs := make([]error, len(sessions))
	var wg sync.WaitGroup
	for k, id := range sessions {
		wg.Go(func() { errs[k] = run(id) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err // a failed batch is retried message by message: the first error is enough
		}
	}
	return nil
}

func (h *FrameHandlers) analyze(ctx context.Context, set *analyzers.Set, sess *store.Session, j *frameJob) error {
	fm := &j.fm
	start := time.Now()
	meta := analyzers.FrameMeta{Camera: fm.Camera, Session: fm.SessionID, CapturedAt: time.UnixMilli(fm.CapturedAtMs),
		Plan: h.sched.Plan(fm.SessionID, fm.Camera)}
	var err error
	if fm.Camera == analyzers.CameraMain {
		if meta.Enrolled, err = h.enrollment(ctx, set, sess); err != nil {
			return err
		}
		if meta.Enrolled != nil && rules.BeforeAnswering(sess.Phase) {
			// A login frame may join the gallery: the full model measures it while there is room.
			if meta.Enrolled.Gathering, err = h.galleryHasRoom(ctx, sess, meta.Enrolled.Model, j.eng); err != nil {
				return err
			}
		}
		j.enr = meta.Enrolled
	}
	j.obs, err = set.AnalyzeFrameJPEG(ctx, fm.JPEG, meta)
	j.version = modelVersion(set)
	if err != nil {
		if invalidImage(err) {
			return pipeline.Permanent(fmt.Errorf("frame %s/%s/%d: %w", fm.SessionID, fm.Camera, fm.Seq, err))
		}
		return err
	}
	h.analyzeSeconds.Observe(time.Since(start).Seconds())
	obsJSON, err := json.Marshal(j.obs)
	if err != nil {
		return pipeline.Permanent(err)
	}
	signals, err := j.eng.Observe(&j.obs, fm.Camera)
	if err != nil {
		return pipeline.Permanent(err)
	}
	j.fr = &store.FrameResult{SessionID: fm.SessionID, Camera: fm.Camera, Seq: fm.Seq,
		CapturedAtMs: fm.CapturedAtMs, ReceivedAtMs: fm.ReceivedAtMs, Signals: signals, Observation: string(obsJSON)}
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
func EventHandler(st *store.Store, metrics prometheus.Registerer) pipeline.Handler {
	deleted := deletedMessages(metrics)
	return func(ctx context.Context, m kafka.Message) error {
		em, err := pipeline.DecodeEvent(m)
		if err != nil {
			return pipeline.Permanent(fmt.Errorf("decode event message: %w", err))
		}
		if gone, err := store.SessionDeleted(st.DB.WithContext(ctx), em.SessionID); err != nil {
			return err
		} else if gone {
			deleted.WithLabelValues("events").Inc()
			return nil
		}
		return st.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			if err := checkAlive(tx, st.Postgres, em.SessionID); err != nil {
				return err
			}
			isNew, err := store.InsertEvent(tx, &store.Event{SessionID: em.SessionID, Seq: em.Seq,
				Type: em.Type, CapturedAtMs: em.CapturedAtMs, ReceivedAtMs: em.ReceivedAtMs, Payload: string(em.Payload)})
			if err != nil || !isNew {
				return err
			}
			return rules.MarkDirty(tx, em.SessionID, time.Now())
		})
	}
}
