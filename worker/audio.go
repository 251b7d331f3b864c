package worker

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"proctor/analyzers"
	"proctor/internal/wav"
	"proctor/pipeline"
	"proctor/rules"
	"proctor/store"
)

// AudioConfig configures the audio workers.
type AudioConfig struct {
	Analyzers analyzers.AudioConfig
	Answers   rules.AnswerConfig
	// StretchTolerance: a chunk continues the stretch whose next seq it carries only if its
	// captured_at is within this of where the stretch's audio ends; otherwise the recording
	// paused (microphone off, client restarted) and a new stretch starts. Default 2 s: client
	// clocks and sample clocks drift apart by far less within one exam.
	StretchTolerance time.Duration
	// DiscardAudio stops storing each chunk's PCM (store.AudioSample). Kept by default so
	// reviewer labels can be exported as training snippets; workers purge it after the
	// retention period (app.Config.AudioRetention).
	DiscardAudio bool
}

// AudioHandlers analyses audio chunks as per-session streams: voice activity and the closing
// phrase, then the answer segmentation of the session.
//
// The stream state lives in the database (store.AudioStretch), written in the same transaction
// as the chunk's results, and the worker keeps none between messages. So after a crash or a
// rebalance the next worker continues every stretch exactly: nothing is lost, and the chunks
// Kafka redelivers (those after the last committed offset) are recognised by their AudioChunk
// row and skipped without being analysed twice. Late chunks (a seq below what was analysed,
// sent after a reconnect) are analysed too: a late chunk continues the stretch it belongs to
// if that stretch ended just before it, else it starts a stretch of its own with fresh model
// state (losing only the first ~2 s of context for the phrase spotter and ~100 ms for the VAD).
type AudioHandlers struct {
	cfg     AudioConfig
	store   *store.Store
	answers *rules.AnswerEngine
	log     *slog.Logger
	pool    livePool[*analyzers.AudioSet]
	// version is the analyzer versions of the current pool (stored with each stretch's state).
	version       atomic.Pointer[string]
	maxConcurrent int

	analyzeSeconds prometheus.Histogram
	realtime       prometheus.Histogram
	duplicates     prometheus.Counter
	stretches      prometheus.Counter
	deleted        *prometheus.CounterVec // chunks of deleted sessions, dropped (deleted.go)
}

// NewAudioHandlers loads one analyzer set straight away (a missing model fails at start-up) and
// allows up to maxConcurrent (one per consumer goroutine).
func NewAudioHandlers(cfg AudioConfig, maxConcurrent int, st *store.Store, weights map[string]float64,
	metrics prometheus.Registerer, log *slog.Logger) (*AudioHandlers, error) {
	maxConcurrent = max(maxConcurrent, 1)
	if cfg.StretchTolerance <= 0 {
		cfg.StretchTolerance = 2 * time.Second
	}
	h := &AudioHandlers{cfg: cfg, store: st, log: log, maxConcurrent: maxConcurrent}
	h.answers = rules.NewAnswerEngine(cfg.Answers, weights, "")
	if err := h.Reload(cfg.Analyzers); err != nil {
		return nil, err
	}
	h.analyzeSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "proctor_audio_analyze_seconds", Help: "Time to analyse one audio chunk.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)})
	h.realtime = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "proctor_audio_realtime_factor", Help: "Analysis time divided by the chunk's duration.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 12)})
	h.duplicates = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "proctor_audio_duplicates_total", Help: "Audio chunks skipped because they were already analysed."})
	h.stretches = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "proctor_audio_stretches_total", Help: "Audio stretches started (session starts, gaps, late chunks)."})
	if metrics != nil {
		metrics.MustRegister(h.analyzeSeconds, h.realtime, h.duplicates, h.stretches)
	}
	h.deleted = deletedMessages(metrics)
	return h, nil
}

// Answers is the answer engine (shared with the events consumer, see AnswerEvents).
func (h *AudioHandlers) Answers() *rules.AnswerEngine { return h.answers }

// Close releases the analyzer sets; call it after every consumer stopped.
func (h *AudioHandlers) Close() { h.pool.Close() }

// Reload builds audio analyzer sets from cfg (another active phrase model version) for the
// next chunks; chunks being analysed finish on the old sets. On error nothing changes.
func (h *AudioHandlers) Reload(cfg analyzers.AudioConfig) error {
	var first *analyzers.AudioSet
	p, err := newSetPool(h.maxConcurrent, func() (*analyzers.AudioSet, error) {
		s, err := analyzers.NewAudioSet(cfg)
		if first == nil {
			first = s
		}
		return s, err
	})
	if err != nil {
		return fmt.Errorf("load audio analyzers: %w", err)
	}
	v := first.Version()
	h.cfg.Analyzers = cfg
	h.version.Store(&v)
	h.answers.SetVersion(first.ShortVersion())
	h.pool.swap(p)
	return nil
}

// AnalyzerConfig is the audio analyzer configuration in force.
func (h *AudioHandlers) AnalyzerConfig() analyzers.AudioConfig { return h.cfg.Analyzers }

// Handle analyses one chunk: find its stretch, restore the stream state, run VAD and phrase
// spotting, then store chunk, results, new state and the recomputed answers in one transaction.
func (h *AudioHandlers) Handle(ctx context.Context, m kafka.Message) error {
	am, err := pipeline.DecodeAudio(m)
	if err != nil {
		return pipeline.Permanent(fmt.Errorf("decode audio message: %w", err))
	}
	if done, err := h.store.AudioChunkStored(ctx, am.SessionID, am.Seq); err != nil {
		return err
	} else if done {
		h.duplicates.Inc()
		return nil
	}
	if _, err := h.store.GetSession(ctx, "", am.SessionID); errors.Is(err, store.ErrNotFound) {
		if gone, err := store.SessionDeleted(h.store.DB.WithContext(ctx), am.SessionID); err != nil {
			return err
		} else if gone {
			h.deleted.WithLabelValues("audio").Inc()
			return nil
		}
		return pipeline.Permanent(fmt.Errorf("audio for unknown session %s", am.SessionID))
	} else if err != nil {
		return err
	}
	stretch, err := h.store.FindStretch(ctx, am.SessionID, am.Seq)
	if err != nil {
		return err
	}
	tol := h.cfg.StretchTolerance.Milliseconds()
	if stretch != nil && (stretch.SampleRate != am.SampleRate || absInt64(am.CapturedAtMs-stretch.EndMs) > tol) {
		stretch = nil // the recording paused or changed device: a new stretch
	}

	set, release, err := h.pool.load().acquire(am.SessionID)
	if err != nil {
		return err
	}
	start := time.Now()
	if stretch != nil {
		if err := set.UnmarshalState(stretch.State); err != nil {
			// Written by another build (a rolling upgrade): start a new stretch here rather
			// than fail; the loss is the old stretch's context.
			h.log.Warn("audio state not restorable, new stretch", "session", am.SessionID, "seq", am.Seq, "err", err)
			stretch = nil
		}
	}
	fresh := stretch == nil
	if fresh {
		set.Reset(am.SampleRate)
		stretch = &store.AudioStretch{SessionID: am.SessionID, StartSeq: am.Seq, StartMs: am.CapturedAtMs,
			SampleRate: am.SampleRate}
	}
	var obs analyzers.AudioObservation
	err = set.ProcessPCM(ctx, am.PCM, &obs)
	state := set.MarshalState()
	release()
	if err != nil {
		return fmt.Errorf("analyse audio %s/%d: %w", am.SessionID, am.Seq, err)
	}
	took := time.Since(start)
	durMs := int64(len(am.PCM)/2) * 1000 / int64(am.SampleRate)
	h.analyzeSeconds.Observe(took.Seconds())
	if durMs > 0 {
		h.realtime.Observe(took.Seconds() * 1000 / float64(durMs))
	}

	fromSeq := stretch.NextSeq
	stretch.NextSeq, stretch.EndMs, stretch.State, stretch.Version = am.Seq+1, stretch.StartMs+obs.ProcessedMs, state, *h.version.Load()
	stretch.Chunks++
	chunk := &store.AudioChunk{SessionID: am.SessionID, Seq: am.Seq, CapturedAtMs: am.CapturedAtMs,
		ReceivedAtMs: am.ReceivedAtMs, SampleRate: am.SampleRate, DurationMs: durMs, LevelDBFS: levelDBFS(am.PCM)}
	err = h.store.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := checkAlive(tx, h.store.Postgres, am.SessionID); err != nil {
			return err
		}
		isNew, err := store.InsertAudioChunk(tx, chunk)
		if err != nil || !isNew {
			return err // a concurrent worker stored it first: its results stand
		}
		if !h.cfg.DiscardAudio {
			// Kept for reviewer-labelled training snippets (export); purged after retention.
			if err := store.InsertAudioSample(tx, &store.AudioSample{SessionID: am.SessionID, Seq: am.Seq,
				CapturedAtMs: am.CapturedAtMs, SampleRate: am.SampleRate, PCM: am.PCM}); err != nil {
				return err
			}
		}
		if err := store.SaveStretch(tx, stretch, fromSeq); err != nil {
			return err
		}
		speech := make([]store.SpeechSegment, len(obs.Speech))
		for i, s := range obs.Speech {
			speech[i] = store.SpeechSegment{SessionID: am.SessionID, StartMs: stretch.StartMs + s.StartMs,
				EndMs: stretch.StartMs + s.EndMs, Open: s.Open, StretchID: stretch.ID}
		}
		if err := store.UpsertSpeech(tx, speech); err != nil {
			return err
		}
		phrases := make([]store.PhraseDetection, len(obs.Phrases))
		for i, p := range obs.Phrases {
			phrases[i] = store.PhraseDetection{SessionID: am.SessionID, OnsetMs: stretch.StartMs + p.OnsetMs,
				StartMs: stretch.StartMs + p.StartMs, EndMs: stretch.StartMs + p.EndMs, Score: p.Score, Final: p.Final,
				StretchID: stretch.ID}
		}
		if err := store.UpsertPhrases(tx, phrases); err != nil {
			return err
		}
		voices := make([]store.VoiceWindow, len(obs.Voices))
		for i, v := range obs.Voices {
			voices[i] = store.VoiceWindow{SessionID: am.SessionID, StartMs: stretch.StartMs + v.StartMs,
				EndMs: stretch.StartMs + v.EndMs, Embedding: store.EncodeVoiceEmbedding(v.Embedding), StretchID: stretch.ID}
		}
		if err := store.InsertVoiceWindows(tx, voices); err != nil {
			return err
		}
		if obs.ShadowModel != "" {
			if err := storeShadowPhrases(tx, &am, stretch.StartMs, durMs, &obs); err != nil {
				return err
			}
		}
		return h.answers.Recompute(tx, h.store.Postgres, am.SessionID)
	})
	if err != nil {
		return fmt.Errorf("store audio %s/%d: %w", am.SessionID, am.Seq, err)
	}
	if fresh {
		h.stretches.Inc()
		h.log.Debug("audio stretch started", "session", am.SessionID, "seq", am.Seq, "captured_at", am.CapturedAtMs)
	}
	return nil
}

func absInt64(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

// answerEvents are the event types answer segmentation reads.
var answerEvents = map[string]bool{"answering_started": true, "question_shown": true, "exam_ended": true}

// AnswerEvents wraps the events handler: after next has stored an event that bounds answers
// (answering_started, question_shown, exam_ended), the session's answers are recomputed. Events
// and audio travel on different topics, so either may arrive first; recomputing from what is
// stored on both sides makes the result independent of that order.
func AnswerEvents(next pipeline.Handler, st *store.Store, answers *rules.AnswerEngine) pipeline.Handler {
	return func(ctx context.Context, m kafka.Message) error {
		if err := next(ctx, m); err != nil {
			return err
		}
		em, err := pipeline.DecodeEvent(m)
		if err != nil || !answerEvents[em.Type] {
			return nil // next already judged the message
		}
		return st.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			return answers.Recompute(tx, st.Postgres, em.SessionID)
		})
	}
}

// RecordingMessages splits the audio track of an uploaded recording (a WAV file: any PCM
// layout wav.Decode reads) into audio messages as the live client would have sent them: mono
// s16le chunks of chunkDur at the file's rate (resampled to 16 kHz if outside 8–48 kHz),
// captured_at from startMs, seq from seqBase. Use a seqBase above the live chunks' range
// (e.g. 1<<40) so the recording forms a stretch of its own; answer segmentation merges speech
// and phrases the live stream and the recording both heard.
func RecordingMessages(sessionID string, wavFile []byte, startMs, seqBase int64, chunkDur time.Duration) ([]pipeline.AudioMessage, error) {
	samples, rate, err := wav.Decode(wavFile)
	if err != nil {
		return nil, fmt.Errorf("recording of %s: %w", sessionID, err)
	}
	if rate < wav.MinRate || rate > wav.MaxRate {
		samples, rate = analyzers.Resample(samples, rate, analyzers.AudioRate), analyzers.AudioRate
	}
	if chunkDur <= 0 {
		chunkDur = 10 * time.Second
	}
	step := max(1, int(int64(rate)*chunkDur.Milliseconds()/1000))
	now := time.Now().UnixMilli()
	var out []pipeline.AudioMessage
	for i := 0; i < len(samples); i += step {
		part := samples[i:min(len(samples), i+step)]
		out = append(out, pipeline.AudioMessage{SessionID: sessionID, Seq: seqBase + int64(len(out)),
			CapturedAtMs: startMs + int64(i)*1000/int64(rate), ReceivedAtMs: now, SampleRate: rate,
			PCM: analyzers.EncodePCM16(part)})
	}
	return out, nil
}

// levelDBFS is the RMS level of s16le samples in dB relative to full scale (-100 for silence).
func levelDBFS(pcm []byte) float64 {
	n := len(pcm) / 2
	if n == 0 {
		return -100
	}
	var sum float64
	for i := 0; i < n; i++ {
		v := float64(int16(binary.LittleEndian.Uint16(pcm[2*i:]))) / 32768
		sum += v * v
	}
	rms := math.Sqrt(sum / float64(n))
	if rms < 1e-5 {
		return -100
	}
	return math.Round(20*math.Log10(rms)*10) / 10
}

// shadowChunk is the Outputs JSON of a shadow phrase head's observation of one chunk: the span it
// heard (session ms) and what it spotted, so a comparison knows where both heads listened.
type shadowChunk struct {
	StartMs int64                `json:"start_ms"`
	EndMs   int64                `json:"end_ms"`
	Phrases []store.ShadowPhrase `json:"phrases"`
}

// storeShadowPhrases keeps a shadow phrase head's detections of one chunk apart from the active
// head's: one row per chunk, even without detections (it records what the shadow heard).
func storeShadowPhrases(tx *gorm.DB, am *pipeline.AudioMessage, stretchStart, durMs int64, obs *analyzers.AudioObservation) error {
	c := shadowChunk{StartMs: am.CapturedAtMs, EndMs: am.CapturedAtMs + durMs, Phrases: []store.ShadowPhrase{}}
	for _, p := range obs.ShadowPhrases {
		c.Phrases = append(c.Phrases, store.ShadowPhrase{OnsetMs: stretchStart + p.OnsetMs, StartMs: stretchStart + p.StartMs,
			EndMs: stretchStart + p.EndMs, Score: p.Score, Final: p.Final})
	}
	out, err := json.Marshal(c)
	if err != nil {
		return err
	}
	row := store.ShadowObservation{Model: obs.ShadowModel, SessionID: am.SessionID, Camera: store.ShadowAudio, Seq: am.Seq,
		Active: obs.ActiveModel, CapturedAtMs: am.CapturedAtMs, Outputs: string(out), CreatedAt: time.Now().UTC()}
	return tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&row).Error
}
