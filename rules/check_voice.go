package rules

import (
	"math"
	"sort"
	"time"

	"gorm.io/gorm"

	"proctor/store"
)

// SecondVoice: a voice other than the candidate's speaks for a sustained time, inside an answer
// (someone answering or prompting) or outside the answers (someone talking in the room).
const SecondVoice = "SECOND_VOICE"

// Settings of the voice check.
const (
	SettingSecondVoiceThreshold = "second_voice_threshold"
	SettingSecondVoiceMin       = "second_voice_min_sec"
	SettingVoiceEnrol           = "voice_enrol_sec"
)

// Defaults of the voice check, chosen on the tuning speakers of `proctor eval voice` (AISHELL-3
// and THCHS-30) and reported on the held-back AISHELL-1 speakers (docs/audio.md).
const (
	DefaultSecondVoiceThreshold = 0.675
	DefaultSecondVoiceMin       = 0.8
	DefaultVoiceEnrol           = 6.0
)

func init() {
	Register(Check{
		Name:      "voice",
		Doc:       "Only the candidate's voice is heard: the voice enrolled from their first speech.",
		Input:     InputAudio,
		Analyzers: []string{"vad", "voice"},
		DecidedBy: "voice",
		// Whispered answers or a second person talking is the commonest cheat in an oral exam,
		// but a TV or a family member in the next room sounds the same to the model.
		Flags: []FlagType{{Type: SecondVoice, Severity: store.SeverityDetection, Weight: 0.5,
			Doc: "A voice other than the enrolled candidate's spoke for a sustained time."}},
		Settings: []Setting{
			{Key: SettingSecondVoiceThreshold, Unit: Score, Default: DefaultSecondVoiceThreshold, Min: 0.3, Max: 0.99,
				Doc: "Speaker similarity to the enrolled voice below which a stretch of speech is another voice."},
			{Key: SettingSecondVoiceMin, Unit: Seconds, Default: DefaultSecondVoiceMin, Min: 0.8, Max: 600,
				Doc: "Another voice's speech this long (windows less than 10 s apart) raises SECOND_VOICE."},
			{Key: SettingVoiceEnrol, Unit: Seconds, Default: DefaultVoiceEnrol, Min: 1.6, Max: 120,
				Doc: "The candidate's voice is enrolled from their first this many seconds of speech (device check or first answer)."},
		},
	})
}

// VoiceConfig holds the voice check's thresholds. Zero values take the defaults.
type VoiceConfig struct {
	// Threshold: cosine similarity to the enrolled voice below which a window is another voice.
	Threshold float64
	// MinSpeech: another voice's speech this long (one run) raises SECOND_VOICE.
	MinSpeech time.Duration
	// Enrol: the first this much speech is the candidate's voice (the device check or the first
	// answer): its windows' mean embedding is the enrolment.
	Enrol time.Duration
	// MergeGap: other-voice windows less than this apart form one run (a prompter's words come
	// in bursts, with the candidate repeating in between). Default 10 s.
	MergeGap time.Duration
	// Adapt: a later window at least this far above the threshold joins the enrolment (the
	// candidate's voice as heard through the session, not only its first seconds). Default 0.1;
	// negative: never.
	Adapt float64
}

func (c VoiceConfig) withDefaults() VoiceConfig {
	if c.Threshold <= 0 {
		c.Threshold = DefaultSecondVoiceThreshold
	}
	if c.MinSpeech <= 0 {
		c.MinSpeech = time.Duration(DefaultSecondVoiceMin * float64(time.Second))
	}
	if c.Enrol <= 0 {
		c.Enrol = time.Duration(DefaultVoiceEnrol * float64(time.Second))
	}
	if c.MergeGap <= 0 {
		c.MergeGap = 10 * time.Second
	}
	if c.Adapt == 0 {
		c.Adapt = 0.1
	}
	return c
}

// VoiceWindow is one speaker embedding of speech, in session ms.
type VoiceWindow struct {
	StartMs, EndMs int64
	Embedding      []float32
}

// VoiceTurn is one window's verdict: Speaker 0 is the enrolled (first) voice, others are numbered
// in order of appearance; Score is the cosine similarity to the enrolled voice.
type VoiceTurn struct {
	StartMs int64   `json:"start_ms"`
	EndMs   int64   `json:"end_ms"`
	Speaker int     `json:"speaker"`
	Score   float64 `json:"score"`
	Enrol   bool    `json:"-"` // part of the enrolment
}

// TrackVoices enrols the first cfg.Enrol of speech as speaker 0 and labels every window: at or
// above the threshold it is speaker 0; below, it joins the most similar other voice heard so far
// (when at or above the threshold) or starts a new one. A pure function of the windows (any
// order): recomputing after a late chunk gives the same result as one pass.
func TrackVoices(ws []VoiceWindow, cfg VoiceConfig) []VoiceTurn {
	cfg = cfg.withDefaults()
	ws = append([]VoiceWindow(nil), ws...)
	sort.SliceStable(ws, func(i, j int) bool { return ws[i].StartMs < ws[j].StartMs })
	turns := make([]VoiceTurn, len(ws))
	if len(ws) == 0 {
		return turns
	}
	dim := len(ws[0].Embedding)
	enrol := make([]float64, dim)
	var enrolled int64
	n := 0
	for n < len(ws) && (n == 0 || enrolled < cfg.Enrol.Milliseconds()) {
		addTo(enrol, ws[n].Embedding)
		enrolled += ws[n].EndMs - ws[n].StartMs
		n++
	}
	sum := append([]float64(nil), enrol...)
	normalise(enrol)
	var others [][]float64 // running sums of the other voices' embeddings
	for i, w := range ws {
		s0 := cosineTo(enrol, w.Embedding)
		t := VoiceTurn{StartMs: w.StartMs, EndMs: w.EndMs, Score: math.Round(s0*1000) / 1000, Enrol: i < n}
		if i >= n && cfg.Adapt > 0 && s0 >= cfg.Threshold+cfg.Adapt {
			addTo(sum, w.Embedding)
			copy(enrol, sum)
			normalise(enrol)
		}
		if i >= n && s0 < cfg.Threshold {
			best, bestSim := -1, cfg.Threshold
			for k, o := range others {
				if s := cosineTo(o, w.Embedding); s >= bestSim {
					best, bestSim = k, s
				}
			}
			if best < 0 {
				others = append(others, make([]float64, dim))
				best = len(others) - 1
			}
			addTo(others[best], w.Embedding)
			t.Speaker = best + 1
		}
		turns[i] = t
	}
	return turns
}

// SecondVoiceFlags raises SECOND_VOICE for runs of other-voice windows (less than MergeGap apart)
// holding at least MinSpeech of speech; answers say whether the run was inside an answer.
func SecondVoiceFlags(turns []VoiceTurn, answers []Answer, cfg VoiceConfig) []AnswerFlag {
	cfg = cfg.withDefaults()
	var flags []AnswerFlag
	var run []VoiceTurn
	flush := func() {
		var speech int64
		var sim float64
		speakers := map[int]bool{}
		for _, t := range run {
			speech += t.EndMs - t.StartMs
			sim += t.Score
			speakers[t.Speaker] = true
		}
		if len(run) == 0 || speech < cfg.MinSpeech.Milliseconds() {
			run = run[:0]
			return
		}
		span := Span{run[0].StartMs, run[len(run)-1].EndMs}
		sim /= float64(len(run))
		when, questions := "outside_answers", []int{}
		for _, a := range answers {
			if o := min(a.EndMs, span.End) - max(a.StartMs, span.Start); o > 0 && a.EndMs > a.StartMs {
				when = "answer"
				questions = append(questions, a.Question)
			}
		}
		flags = append(flags, AnswerFlag{Type: SecondVoice, StartMs: span.Start, EndMs: span.End,
			// Further below the threshold is surer; a just-below run is a coin toss.
			Confidence: math.Min(0.95, 0.5+(cfg.Threshold-sim)),
			Details: map[string]any{"when": when, "questions": questions, "speech_ms": speech, "windows": len(run),
				"voices": len(speakers), "similarity": math.Round(sim*1000) / 1000, "threshold": cfg.Threshold}})
		run = run[:0]
	}
	for _, t := range turns {
		if t.Speaker == 0 {
			continue
		}
		if len(run) > 0 && t.StartMs-run[len(run)-1].EndMs > cfg.MergeGap.Milliseconds() {
			flush()
		}
		run = append(run, t)
	}
	flush()
	return flags
}

func addTo(sum []float64, e []float32) {
	for i := range min(len(sum), len(e)) {
		sum[i] += float64(e[i])
	}
}

func normalise(v []float64) {
	var n float64
	for _, x := range v {
		n += x * x
	}
	if n = math.Sqrt(n); n > 0 {
		for i := range v {
			v[i] /= n
		}
	}
}

// cosineTo is the cosine similarity of a (any length) and e.
func cosineTo(a []float64, e []float32) float64 {
	var ab, aa, bb float64
	for i := range min(len(a), len(e)) {
		ab += a[i] * float64(e[i])
		aa += a[i] * a[i]
		bb += float64(e[i]) * float64(e[i])
	}
	if aa == 0 || bb == 0 {
		return 0
	}
	return ab / math.Sqrt(aa*bb)
}

// withExam applies the exam's own voice settings.
func (c VoiceConfig) withExam(eff *Engine) VoiceConfig {
	if v, ok := eff.Override(SettingSecondVoiceThreshold); ok {
		c.Threshold = v
	}
	if v, ok := eff.Override(SettingSecondVoiceMin); ok {
		c.MinSpeech = time.Duration(v * float64(time.Second))
	}
	if v, ok := eff.Override(SettingVoiceEnrol); ok {
		c.Enrol = time.Duration(v * float64(time.Second))
	}
	return c
}

// secondVoiceOf tracks the session's stored voice windows and returns the SECOND_VOICE flags.
func secondVoiceOf(tx *gorm.DB, sessionID string, answers []Answer, cfg VoiceConfig) ([]AnswerFlag, error) {
	rows, err := store.SessionVoiceWindows(tx, sessionID)
	if err != nil || len(rows) == 0 {
		return nil, err
	}
	ws := make([]VoiceWindow, len(rows))
	for i, r := range rows {
		ws[i] = VoiceWindow{StartMs: r.StartMs, EndMs: r.EndMs, Embedding: store.DecodeVoiceEmbedding(r.Embedding)}
	}
	return SecondVoiceFlags(TrackVoices(ws, cfg), answers, cfg), nil
}
