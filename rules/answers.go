package rules

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"sync/atomic"
	"time"

	"gorm.io/gorm"

	"proctor/store"
)

// Flag types raised by the answer rules (audio).
const (
	// AnswerNotClosed: the next question (or the end of the exam) came and the answer was never
	// closed with "该题回答完毕".
	AnswerNotClosed = "ANSWER_NOT_CLOSED"
	// SpeechOutsideAnswer: sustained speech before answering started or after the exam ended.
	SpeechOutsideAnswer = "SPEECH_OUTSIDE_ANSWER"
	// LongSilence: no speech for a long time inside an answer.
	LongSilence = "LONG_SILENCE"
)

// Settings of the answers check.
const (
	SettingLongSilence      = "long_silence_sec"
	SettingSpeechOutsideMin = "speech_outside_min_sec"
)

// Two audio checks share one segmentation of the answers by the closing phrase
// (SegmentAnswers), from which AnswerEngine.Recompute raises their flags. They differ in the
// model that decides them: the phrase spotter closes answers, voice activity hears speech.
func init() {
	Register(Check{
		Name:      "answer-closed",
		Doc:       "Each answer is closed with \"该题回答完毕\" before the next question or the end.",
		Input:     InputAudio,
		Analyzers: []string{"vad", "phrase"},
		DecidedBy: "phrase",
		// Mostly a procedural slip.
		Flags: []FlagType{{Type: AnswerNotClosed, Severity: store.SeverityDetection, Weight: 0.1,
			Doc: "An answer was never closed with the phrase."}},
	})
	Register(Check{
		Name:      "speech",
		Doc:       "The candidate speaks in answer time, and does not fall silent inside an answer.",
		Input:     InputAudio,
		Analyzers: []string{"vad", "phrase"},
		DecidedBy: "vad",
		Flags: []FlagType{
			// Talking outside answer time may be someone helping.
			{Type: SpeechOutsideAnswer, Severity: store.SeverityDetection, Weight: 0.4,
				Doc: "Sustained speech before answering started or after the exam ended."},
			{Type: LongSilence, Severity: store.SeverityDetection, Weight: 0.15,
				Doc: "No speech for a long time inside an answer."},
		},
		Settings: []Setting{
			// 60 s: a candidate thinking before answering takes seconds, not a minute.
			{Key: SettingLongSilence, Unit: Seconds, Default: 60, Min: 5, Max: 3600,
				Doc: "No speech this long inside an answer raises LONG_SILENCE."},
			// 3 s, so a cough or "好的" to the screen is not a flag.
			{Key: SettingSpeechOutsideMin, Unit: Seconds, Default: 3, Min: 0.5, Max: 600,
				Doc: "Speech outside answer time this long (one run) raises SPEECH_OUTSIDE_ANSWER."},
		},
	})
}

// AudioFlagTypes are the flag types the answer rules own: recomputation may withdraw an open one
// that no longer holds (a late chunk brought the phrase that closes the answer).
var AudioFlagTypes = []string{AnswerNotClosed, SpeechOutsideAnswer, LongSilence, SecondVoice}

// audioCamera is the Flag.Camera of audio flags: the main client records the microphone.
const audioCamera = "main"

// AnswerConfig holds the thresholds of the answer rules. Zero values take the defaults.
type AnswerConfig struct {
	// LongSilence: no speech this long inside an answer raises LONG_SILENCE. Default 60 s: a
	// candidate thinking before answering takes seconds, not a minute.
	LongSilence time.Duration
	// SpeechOutsideMin: speech outside answer time this long (one run) raises
	// SPEECH_OUTSIDE_ANSWER. Default 3 s, so a cough or "好的" to the screen is not a flag.
	SpeechOutsideMin time.Duration
	// PhraseGrace: a phrase ending this long after the next question appeared still closes the
	// previous answer (the candidate clicks on while saying it; client clocks jitter). Default 3 s.
	PhraseGrace time.Duration
	// MergeGap: speech segments closer than this form one run for SPEECH_OUTSIDE_ANSWER.
	// Default 1 s.
	MergeGap time.Duration
	// Voice holds the SECOND_VOICE thresholds (rules/check_voice.go).
	Voice VoiceConfig
	// ChunkGap: audio chunks further apart than this leave a gap in coverage: silence is only
	// judged where audio was analysed (an outage is not evidence of silence). Default 250 ms:
	// consecutive chunks' captured_at jitter by tens of ms, a lost chunk is a second or more.
	ChunkGap time.Duration
}

func (c AnswerConfig) withDefaults() AnswerConfig {
	set := func(d *time.Duration, def time.Duration) {
		if *d <= 0 {
			*d = def
		}
	}
	set(&c.LongSilence, 60*time.Second)
	set(&c.SpeechOutsideMin, 3*time.Second)
	set(&c.PhraseGrace, 3*time.Second)
	set(&c.MergeGap, time.Second)
	set(&c.ChunkGap, 250*time.Millisecond)
	return c
}

// Span is a time interval in ms, [Start, End).
type Span struct{ Start, End int64 }

// Phrase is one spotted closing phrase.
type Phrase struct {
	StartMs, EndMs int64
	Score          float32
}

// QuestionShown is a question_shown event.
type QuestionShown struct {
	Question int
	AtMs     int64
}

// AnswerInput is everything answer segmentation looks at, in one clock (client ms).
type AnswerInput struct {
	Questions        int   // questions in the exam (0 = unknown)
	AnsweringStartMs int64 // answering_started (0 = not seen)
	ExamEndMs        int64 // exam_ended (0 = not seen)
	Shown            []QuestionShown
	Speech           []Span // VAD segments, any order, may overlap
	Phrases          []Phrase
	Coverage         []Span // where audio was analysed
}

// Answer is one answer segment.
type Answer struct {
	Question       int     `json:"question"`
	StartMs        int64   `json:"start_ms"`
	EndMs          int64   `json:"end_ms"`
	ClosedByPhrase bool    `json:"closed_by_phrase"`
	PhraseScore    float32 `json:"phrase_score,omitempty"`
	SpeechMs       int64   `json:"speech_ms"`
	Status         string  `json:"status"`
	Source         string  `json:"source"`
}

// AnswerFlag is a flag the answer rules want to exist.
type AnswerFlag struct {
	Type           string
	StartMs, EndMs int64
	Confidence     float64
	Details        map[string]any
}

// AnswerResult is the segmentation of one session.
type AnswerResult struct {
	Answers []Answer
	Flags   []AnswerFlag
}

// SegmentAnswers turns events, speech and phrases into one answer per question and the flags
// that follow. It is a pure function of its input: recomputing after any change (a late chunk, a
// late event, a redelivery) gives the same result as if everything had arrived in order.
//
// With question_shown events, answer k runs from question k's display to the end of the phrase
// that closed it (or to the next question / the end of the exam when none did). Without them
// (DESIGN.md §4), answer k runs from the end of phrase k−1 (or the start of answering) to the end
// of phrase k; fewer phrases than questions when the exam has ended means the next answer was
// not closed.
func SegmentAnswers(in AnswerInput, cfg AnswerConfig) AnswerResult {
	cfg = cfg.withDefaults()
	speech := mergeSpans(in.Speech, 0)
	coverage := mergeSpans(in.Coverage, cfg.ChunkGap.Milliseconds())
	var audioEnd int64
	if len(coverage) > 0 {
		audioEnd = coverage[len(coverage)-1].End
	}
	grace := cfg.PhraseGrace.Milliseconds()
	// reached: the audio up to t has been analysed (or the recording ended before it: the
	// client stops recording at exam_ended, so a second of slack there).
	reached := func(t int64) bool {
		if in.ExamEndMs > 0 && t > in.ExamEndMs-1000 {
			t = in.ExamEndMs - 1000
		}
		return audioEnd >= t
	}
	phrases := dedupePhrases(in.Phrases, 2000)
	shown := firstShows(in.Shown)

	var res AnswerResult
	answerStart := in.AnsweringStartMs
	if len(shown) > 0 && (answerStart == 0 || shown[0].AtMs < answerStart) {
		answerStart = shown[0].AtMs
	}
	if len(shown) > 0 {
		res.Answers = answersFromShows(in, shown, phrases, grace, audioEnd, reached)
	} else {
		start := answerStart
		if start == 0 && len(coverage) > 0 {
			start = coverage[0].Start
		}
		res.Answers = answersFromPhrases(in, phrases, start, audioEnd, grace, reached)
	}
	for i := range res.Answers {
		a := &res.Answers[i]
		a.SpeechMs = overlap(speech, Span{a.StartMs, a.EndMs})
		if a.Status == store.AnswerNotClosed && a.EndMs > a.StartMs {
			gap := (a.EndMs - a.StartMs) - overlap(coverage, Span{a.StartMs, a.EndMs})
			res.Flags = append(res.Flags, AnswerFlag{Type: AnswerNotClosed, StartMs: a.StartMs, EndMs: a.EndMs,
				// The spotter's measured recall is ~0.9; audio missing from the answer (an
				// outage) may have held the phrase, so confidence drops with the gap.
				Confidence: 0.9 * float64(a.EndMs-a.StartMs-gap) / float64(a.EndMs-a.StartMs),
				Details: map[string]any{"question": a.Question, "source": a.Source, "audio_gap_ms": gap,
					"questions_not_closed": notClosedList(res.Answers, i)}})
		}
	}
	// Not-closed answers with no audio at all (fewer phrases than questions) are listed but
	// share the first unclosed answer's flag.
	res.Flags = dedupeFlagStarts(res.Flags)

	// SPEECH_OUTSIDE_ANSWER: runs of speech before answering started or after the exam ended.
	minOut := cfg.SpeechOutsideMin.Milliseconds()
	for _, run := range mergeSpans(speech, cfg.MergeGap.Milliseconds()) {
		if answerStart > 0 && run.Start < answerStart {
			part := Span{run.Start, min(run.End, answerStart)}
			if part.End-part.Start >= minOut {
				res.Flags = append(res.Flags, AnswerFlag{Type: SpeechOutsideAnswer, StartMs: part.Start, EndMs: part.End,
					Confidence: 0.8, Details: map[string]any{"when": "before_answering", "speech_ms": overlap(speech, part)}})
			}
		}
		// One second of slack after the end: the last words of an answer as the exam closes.
		if after := in.ExamEndMs + 1000; in.ExamEndMs > 0 && run.End > after {
			part := Span{max(run.Start, after), run.End}
			if part.End-part.Start >= minOut {
				res.Flags = append(res.Flags, AnswerFlag{Type: SpeechOutsideAnswer, StartMs: part.Start, EndMs: part.End,
					Confidence: 0.8, Details: map[string]any{"when": "after_exam_end", "speech_ms": overlap(speech, part)}})
			}
		}
	}

	// LONG_SILENCE: analysed audio inside an answer with no speech for LongSilence.
	long := cfg.LongSilence.Milliseconds()
	for _, a := range res.Answers {
		if a.EndMs <= a.StartMs {
			continue
		}
		for _, cov := range coverage {
			w := Span{max(a.StartMs, cov.Start), min(a.EndMs, cov.End)}
			if w.End <= w.Start {
				continue
			}
			prev := w.Start
			for _, sp := range append(speech, Span{w.End, w.End}) {
				if sp.End <= w.Start || sp.Start > w.End {
					continue
				}
				if s := max(sp.Start, w.Start); s-prev >= long {
					res.Flags = append(res.Flags, AnswerFlag{Type: LongSilence, StartMs: prev, EndMs: s, Confidence: 0.7,
						Details: map[string]any{"question": a.Question, "silence_ms": s - prev, "threshold_ms": long}})
				}
				prev = max(prev, sp.End)
			}
		}
	}
	return res
}

func answersFromShows(in AnswerInput, shown []QuestionShown, phrases []Phrase, grace, audioEnd int64,
	reached func(int64) bool) []Answer {
	answers := make([]Answer, len(shown))
	closing := make([]int, len(shown))
	for k := range closing {
		closing[k] = -1
	}
	bound := func(k int) int64 { // end of question k's window, 0 if still open
		if k+1 < len(shown) {
			return shown[k+1].AtMs
		}
		return in.ExamEndMs
	}
	// Each phrase closes the earliest answer whose window (plus grace) holds its end; the last
	// such phrase is the closing one (an earlier one was a false alarm or a restart).
	for pi, p := range phrases {
		for k := range shown {
			b := bound(k)
			if p.EndMs > shown[k].AtMs && (b == 0 || p.EndMs <= b+grace) {
				closing[k] = pi
				break
			}
		}
	}
	for k, s := range shown {
		a := Answer{Question: s.Question, StartMs: s.AtMs, Source: "question_shown"}
		b := bound(k)
		switch {
		case closing[k] >= 0:
			p := phrases[closing[k]]
			a.EndMs, a.ClosedByPhrase, a.PhraseScore, a.Status = p.EndMs, true, p.Score, store.AnswerClosed
		case b == 0:
			a.EndMs, a.Status = max(s.AtMs, audioEnd), store.AnswerAnswering
		case reached(b + grace):
			a.EndMs, a.Status = b, store.AnswerNotClosed
		default:
			a.EndMs, a.Status = b, store.AnswerAwaitingAudio
		}
		answers[k] = a
	}
	return answers
}

func answersFromPhrases(in AnswerInput, phrases []Phrase, start, audioEnd, grace int64,
	reached func(int64) bool) []Answer {
	var answers []Answer
	prev := start
	for _, p := range phrases {
		if p.EndMs <= start || (in.ExamEndMs > 0 && p.EndMs > in.ExamEndMs+grace) {
			continue // before answering or after the end: not an answer's close
		}
		answers = append(answers, Answer{Question: len(answers) + 1, StartMs: prev, EndMs: p.EndMs, ClosedByPhrase: true,
			PhraseScore: p.Score, Status: store.AnswerClosed, Source: "phrase"})
		prev = p.EndMs
	}
	ended := in.ExamEndMs > 0 && reached(in.ExamEndMs)
	switch {
	case ended && len(answers) < in.Questions:
		for q := len(answers) + 1; q <= in.Questions; q++ {
			answers = append(answers, Answer{Question: q, StartMs: prev, EndMs: in.ExamEndMs, Status: store.AnswerNotClosed, Source: "phrase"})
			prev = in.ExamEndMs // later questions have no audio of their own
		}
	case !ended && (in.Questions == 0 || len(answers) < in.Questions) && start > 0:
		status := store.AnswerAnswering
		end := max(prev, audioEnd)
		if in.ExamEndMs > 0 {
			status, end = store.AnswerAwaitingAudio, in.ExamEndMs
		}
		answers = append(answers, Answer{Question: len(answers) + 1, StartMs: prev, EndMs: end, Status: status, Source: "phrase"})
	}
	return answers
}

func notClosedList(answers []Answer, from int) []int {
	if answers[from].Source != "phrase" {
		return []int{answers[from].Question}
	}
	var qs []int // without question events, every later question is unclosed too
	for _, a := range answers[from:] {
		if a.Status == store.AnswerNotClosed {
			qs = append(qs, a.Question)
		}
	}
	return qs
}

func dedupeFlagStarts(fs []AnswerFlag) []AnswerFlag {
	out := fs[:0]
	seen := map[[2]any]bool{}
	for _, f := range fs {
		k := [2]any{f.Type, f.StartMs}
		if !seen[k] {
			seen[k] = true
			out = append(out, f)
		}
	}
	return out
}

// firstShows keeps the first display of each question, in time order.
func firstShows(shown []QuestionShown) []QuestionShown {
	s := append([]QuestionShown(nil), shown...)
	sort.SliceStable(s, func(i, j int) bool { return s[i].AtMs < s[j].AtMs })
	seen := map[int]bool{}
	out := s[:0]
	for _, q := range s {
		if !seen[q.Question] {
			seen[q.Question] = true
			out = append(out, q)
		}
	}
	return out
}

// dedupePhrases merges detections whose ends are within gapMs (the same phrase heard by the
// live stream and by an uploaded recording, or by two stretches), keeping the best score.
func dedupePhrases(ps []Phrase, gapMs int64) []Phrase {
	s := append([]Phrase(nil), ps...)
	sort.Slice(s, func(i, j int) bool { return s[i].EndMs < s[j].EndMs })
	var out []Phrase
	for _, p := range s {
		if n := len(out); n > 0 && p.EndMs-out[n-1].EndMs <= gapMs {
			if p.Score > out[n-1].Score {
				out[n-1] = p
			}
			continue
		}
		out = append(out, p)
	}
	return out
}

// mergeSpans sorts spans and joins those that overlap or are at most gap apart.
func mergeSpans(spans []Span, gap int64) []Span {
	s := append([]Span(nil), spans...)
	sort.Slice(s, func(i, j int) bool { return s[i].Start < s[j].Start })
	var out []Span
	for _, sp := range s {
		if sp.End <= sp.Start {
			continue
		}
		if n := len(out); n > 0 && sp.Start <= out[n-1].End+gap {
			out[n-1].End = max(out[n-1].End, sp.End)
			continue
		}
		out = append(out, sp)
	}
	return out
}

// overlap is how much of w the (merged, sorted) spans cover.
func overlap(spans []Span, w Span) int64 {
	var total int64
	for _, s := range spans {
		if a, b := max(s.Start, w.Start), min(s.End, w.End); b > a {
			total += b - a
		}
	}
	return total
}

// AnswerEngine recomputes a session's answers and audio flags in the database.
type AnswerEngine struct {
	cfg     AnswerConfig
	weights map[string]float64
	// exams, when set, supplies each exam's settings (checks switched off, risk weights), the
	// same ones the frame and timing rules use.
	exams *Engine
	// voice holds the SECOND_VOICE thresholds (exam settings override them).
	voice VoiceConfig
	// version is stored on the flags it raises (the audio analyzers' models and thresholds);
	// it changes when another phrase model version is activated.
	version atomic.Pointer[string]
}

// NewAnswerEngine returns an engine with cfg's thresholds; weights are the risk weights (nil:
// DefaultWeights).
func NewAnswerEngine(cfg AnswerConfig, weights map[string]float64, version string) *AnswerEngine {
	if weights == nil {
		weights = DefaultWeights()
	}
	e := &AnswerEngine{cfg: cfg.withDefaults(), weights: weights, voice: cfg.Voice}
	e.SetVersion(version)
	return e
}

// SetVersion sets the model version stored on the flags raised from now on.
func (e *AnswerEngine) SetVersion(v string) { e.version.Store(&v) }

// Version is the model version stored on the flags it raises.
func (e *AnswerEngine) Version() string { return *e.version.Load() }

// Config returns the thresholds in force.
func (e *AnswerEngine) Config() AnswerConfig { return e.cfg }

// UseExamSettings makes the engine honour each exam's settings through eng.Effective: audio flags
// of a switched-off type are not raised, and the risk uses the exam's weights.
func (e *AnswerEngine) UseExamSettings(eng *Engine) { e.exams = eng }

// Recompute rebuilds the session's answers and audio flags from what is stored, inside tx.
// Flags that no longer hold are withdrawn while still open; a reviewer's verdict is never undone.
func (e *AnswerEngine) Recompute(tx *gorm.DB, postgres bool, sessionID string) error {
	if err := store.LockSession(tx, postgres, sessionID); err != nil {
		return err
	}
	var sess store.Session
	if err := tx.Select("id, questions, org_id, exam_id").Take(&sess, "id = ?", sessionID).Error; err != nil {
		return fmt.Errorf("answers of %s: %w", sessionID, err)
	}
	weights, enabled, cfg, vcfg := e.weights, func(string) bool { return true }, e.cfg, e.voice
	if e.exams != nil {
		eff, err := e.exams.Effective(tx, sess.OrgID, sess.ExamID)
		if err != nil {
			return err
		}
		weights, enabled = eff.Weights(), eff.Enabled
		// The exam's own values win over the service's (AnswerConfig, --long-silence).
		if v, ok := eff.Override(SettingLongSilence); ok {
			cfg.LongSilence = time.Duration(v * float64(time.Second))
		}
		if v, ok := eff.Override(SettingSpeechOutsideMin); ok {
			cfg.SpeechOutsideMin = time.Duration(v * float64(time.Second))
		}
		vcfg = vcfg.withExam(eff)
	}
	in := AnswerInput{Questions: sess.Questions}
	var events []store.Event
	if err := tx.Where("session_id = ? AND type IN ?", sessionID, []string{"answering_started", "question_shown", "exam_ended"}).
		Order("captured_at_ms").Find(&events).Error; err != nil {
		return err
	}
	for _, ev := range events {
		switch ev.Type {
		case "answering_started":
			if in.AnsweringStartMs == 0 {
				in.AnsweringStartMs = ev.CapturedAtMs
			}
		case "exam_ended":
			if in.ExamEndMs == 0 {
				in.ExamEndMs = ev.CapturedAtMs
			}
		case "question_shown":
			var p struct {
				Question int `json:"question"`
			}
			if json.Unmarshal([]byte(ev.Payload), &p) == nil && p.Question > 0 {
				in.Shown = append(in.Shown, QuestionShown{Question: p.Question, AtMs: ev.CapturedAtMs})
			}
		}
	}
	audio, err := store.LoadSessionAudio(tx, sessionID)
	if err != nil {
		return err
	}
	for _, s := range audio.Speech {
		in.Speech = append(in.Speech, Span{s.StartMs, s.EndMs})
	}
	for _, p := range audio.Phrases {
		in.Phrases = append(in.Phrases, Phrase{p.StartMs, p.EndMs, p.Score})
	}
	for _, st := range audio.Stretches {
		in.Coverage = append(in.Coverage, Span{st.StartMs, st.EndMs})
	}
	res := SegmentAnswers(in, cfg)
	voiceFlags, err := secondVoiceOf(tx, sessionID, res.Answers, vcfg)
	if err != nil {
		return err
	}
	res.Flags = append(res.Flags, voiceFlags...)
	rows := make([]store.AnswerSegment, len(res.Answers))
	for i, a := range res.Answers {
		rows[i] = store.AnswerSegment{Question: a.Question, StartMs: a.StartMs, EndMs: a.EndMs,
			ClosedByPhrase: a.ClosedByPhrase, PhraseScore: a.PhraseScore, SpeechMs: a.SpeechMs, Status: a.Status, Source: a.Source}
	}
	if err := store.ReplaceAnswers(tx, sessionID, rows); err != nil {
		return err
	}
	res.Flags = slices.DeleteFunc(res.Flags, func(f AnswerFlag) bool { return !enabled(f.Type) })
	return e.syncFlags(tx, sessionID, res.Flags, weights)
}

// syncFlags makes the session's audio flags equal to want: creates, extends, and withdraws open
// ones that no longer hold. The flag key (session, type, camera, start) keeps it idempotent.
func (e *AnswerEngine) syncFlags(tx *gorm.DB, sessionID string, want []AnswerFlag, weights map[string]float64) error {
	var have []store.Flag
	if err := tx.Where("session_id = ? AND type IN ?", sessionID, AudioFlagTypes).Find(&have).Error; err != nil {
		return err
	}
	byKey := map[string]store.Flag{}
	for _, f := range have {
		byKey[fmt.Sprint(f.Type, "/", f.StartMs)] = f
	}
	changed := false
	for _, w := range want {
		k := fmt.Sprint(w.Type, "/", w.StartMs)
		details, _ := json.Marshal(w.Details)
		if f, ok := byKey[k]; ok {
			delete(byKey, k)
			if f.EndMs != w.EndMs || string(details) != f.Details || f.Confidence != clamp01(w.Confidence) {
				if err := tx.Model(&store.Flag{}).Where("id = ?", f.ID).Updates(map[string]any{"end_ms": w.EndMs,
					"confidence": clamp01(w.Confidence), "details": string(details)}).Error; err != nil {
					return err
				}
				changed = true
			}
			continue
		}
		f := store.Flag{SessionID: sessionID, Type: w.Type, Camera: audioCamera, StartMs: w.StartMs, EndMs: w.EndMs,
			Severity: Severity(w.Type), Confidence: clamp01(w.Confidence), ModelVersion: e.Version(),
			Status: store.StatusOpen, Details: string(details)}
		if err := tx.Create(&f).Error; err != nil {
			return err
		}
		changed = true
	}
	for _, f := range byKey { // no longer holds
		if f.Status != store.StatusOpen {
			continue // judged by a reviewer: keep it
		}
		if err := tx.Delete(&store.Flag{}, f.ID).Error; err != nil {
			return err
		}
		changed = true
	}
	if changed {
		return RecomputeRisk(tx, sessionID, weights)
	}
	return nil
}
