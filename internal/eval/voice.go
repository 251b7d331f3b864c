package eval

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	"proctor/analyzers"
	"proctor/internal/wav"
	"proctor/rules"
)

// `proctor eval voice --data ../shared/data/speech/mandarin-speakers` measures SECOND_VOICE on
// real speakers: sessions built from one speaker's clips (false alarms per hour of same-speaker
// speech) and sessions where a second speaker of the same corpus speaks 6–20 dB quieter,
// after the candidate (concat) or over the candidate's speech (overlap), for the detection rate.
//
// Splits are by speaker and corpus: the tune split (AISHELL-3 SSB0005 with its corpus' other
// voices, THCHS-30 D4 alone) chose the defaults; the test split (AISHELL-1: S0252, S0765, S0901
// with S0906 as an intruder only) was never looked at while tuning.

// VoiceOptions configure RunVoice.
type VoiceOptions struct {
	Data     string // folder with speakers.tsv and the clips
	Split    string // "tune", "test" or "all"
	Sessions int    // same-speaker sessions per candidate (clip orders). Default 12.
	Repeats  int    // positive sessions per (candidate, intruder, level, mode). Default 2.
	Seed     uint64
	ChunkMs  int
	Voice    rules.VoiceConfig
	Audio    analyzers.AudioConfig // Voice window settings; Analyzers is set here
	// Sweep prints detection and false alarms for a grid of thresholds and minimum durations.
	Sweep bool
}

type voiceSplit struct {
	candidates []string
	intruders  map[string][]string // candidate → same-corpus voices
}

var voiceSplits = map[string]voiceSplit{
	"tune": {candidates: []string{"SSB0005", "D4"}, intruders: map[string][]string{
		// A3SEEN1–7: AISHELL-3 demo rows without corpus ids; one may be SSB0005 (README).
		"SSB0005": {"SSB1624", "A3SEEN1", "A3SEEN2", "A3SEEN3", "A3SEEN4", "A3SEEN5", "A3SEEN6", "A3SEEN7"},
		"D4":      nil, // THCHS-30 has one speaker here: false alarms only
	}},
	"test": {candidates: []string{"S0252", "S0765", "S0901"}, intruders: map[string][]string{
		"S0252": {"S0765", "S0901", "S0906"},
		"S0765": {"S0252", "S0901", "S0906"},
		"S0901": {"S0252", "S0765", "S0906"},
	}},
}

// voiceLevels are how much quieter the second voice is (dB): whispering across the room.
var voiceLevels = []float64{6, 10, 14, 20}

type voiceSession struct {
	kind             string // "same", "concat", "overlap"
	candidate, other string
	level            float64
	truth            rules.Span // the second voice (positives)
	enrolEndMs       int64
	speechMs         int64 // same-speaker speech after enrolment (VAD)
	windows          []rules.VoiceWindow
	durMs            int64
}

// VoiceReport is the result of RunVoice.
type VoiceReport struct {
	opts     VoiceOptions
	sessions []voiceSession
	audioMs  int64
	speechMs int64
	vadCPU   time.Duration
	fullCPU  time.Duration
}

// RunVoice builds the sessions, runs VAD + voice on each (and VAD alone, for the speaker stage's
// cost) and keeps the windows; the rules are applied in Print.
func RunVoice(ctx context.Context, o VoiceOptions) (*VoiceReport, error) {
	if o.Sessions <= 0 {
		o.Sessions = 12
	}
	if o.Repeats <= 0 {
		o.Repeats = 2
	}
	if o.ChunkMs <= 0 {
		o.ChunkMs = 1000
	}
	var splits []string
	switch o.Split {
	case "tune", "test":
		splits = []string{o.Split}
	case "all", "":
		splits = []string{"tune", "test"}
	default:
		return nil, fmt.Errorf("--split %q: want tune, test or all", o.Split)
	}
	clips, err := loadSpeakerClips(o.Data)
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(o.Seed, 0x5ec0d))
	type built struct {
		s       voiceSession
		samples []float32
	}
	var all []built
	enrolMs := o.Voice.Enrol.Milliseconds()
	if enrolMs <= 0 {
		enrolMs = int64(rules.DefaultVoiceEnrol * 1000)
	}
	for _, name := range splits {
		sp := voiceSplits[name]
		for _, c := range sp.candidates {
			if len(clips[c]) == 0 {
				return nil, fmt.Errorf("%s: no clips of %s in speakers.tsv", o.Data, c)
			}
			for range o.Sessions {
				b := newSessionBuilder(rng)
				b.candidateUntil(clips[c], -1) // every clip once, shuffled
				all = append(all, built{voiceSession{kind: "same", candidate: c, durMs: b.ms()}, b.out})
			}
			for _, other := range sp.intruders[c] {
				if len(clips[other]) == 0 {
					return nil, fmt.Errorf("%s: no clips of %s", o.Data, other)
				}
				for _, lvl := range voiceLevels {
					for _, mode := range []string{"concat", "overlap"} {
						for range o.Repeats {
							b := newSessionBuilder(rng)
							b.candidateUntil(clips[c], enrolMs+3000)
							oc := clips[other][rng.IntN(len(clips[other]))]
							var truth rules.Span
							if mode == "concat" {
								truth = b.add(oc, b.level-lvl)
								b.candidateUntil(clips[c], b.speech+2000)
							} else {
								truth = b.overlay(clips[c], oc, lvl)
							}
							all = append(all, built{voiceSession{kind: mode, candidate: c, other: other, level: lvl, truth: truth,
								durMs: b.ms()}, b.out})
						}
					}
				}
			}
		}
	}
	r := &VoiceReport{opts: o}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cfg := o.Audio
	cfg.Analyzers = []string{"vad", "voice"}
	full, err := analyzers.NewAudioSet(cfg)
	if err != nil {
		return nil, err
	}
	defer full.Close()
	cfg.Analyzers = []string{"vad"}
	vad, err := analyzers.NewAudioSet(cfg)
	if err != nil {
		return nil, err
	}
	defer vad.Close()
	for _, b := range all {
		t0 := analyzers.ThreadCPU()
		if _, err := vad.AnalyzeSamples(ctx, b.samples, analyzers.AudioRate, o.ChunkMs); err != nil {
			return nil, err
		}
		t1 := analyzers.ThreadCPU()
		res, err := full.AnalyzeSamples(ctx, b.samples, analyzers.AudioRate, o.ChunkMs)
		if err != nil {
			return nil, err
		}
		r.vadCPU += t1 - t0
		r.fullCPU += analyzers.ThreadCPU() - t1
		s := b.s
		for _, w := range res.VoiceWindows {
			s.windows = append(s.windows, rules.VoiceWindow{StartMs: w.StartMs, EndMs: w.EndMs, Embedding: w.Embedding})
		}
		turns := rules.TrackVoices(s.windows, o.Voice)
		for _, t := range turns {
			if t.Enrol {
				s.enrolEndMs = t.EndMs
			}
		}
		for _, sg := range res.Speech {
			s.speechMs += max(0, sg[1]-max(sg[0], s.enrolEndMs))
		}
		r.audioMs += s.durMs
		for _, sg := range res.Speech {
			r.speechMs += sg[1] - sg[0]
		}
		r.sessions = append(r.sessions, s)
	}
	return r, nil
}

// voiceScore is detection and false alarms at one setting.
type voiceScore struct {
	det, pos             map[string]int // by mode and by "mode/level"
	falseAlarms          int
	sameHours            float64
	sameSessions, missed int
}

func (r *VoiceReport) score(cfg rules.VoiceConfig) voiceScore {
	sc := voiceScore{det: map[string]int{}, pos: map[string]int{}}
	for _, s := range r.sessions {
		flags := rules.SecondVoiceFlags(rules.TrackVoices(s.windows, cfg), nil, cfg)
		if s.kind == "same" {
			sc.falseAlarms += len(flags)
			sc.sameHours += float64(s.speechMs) / 3.6e6
			sc.sameSessions++
			continue
		}
		hit := slices.ContainsFunc(flags, func(f rules.AnswerFlag) bool { return f.StartMs < s.truth.End && f.EndMs > s.truth.Start })
		for _, k := range []string{s.kind, fmt.Sprintf("%s/%g", s.kind, s.level)} {
			sc.pos[k]++
			if hit {
				sc.det[k]++
			}
		}
	}
	return sc
}

func (sc voiceScore) rate(k string) string {
	if sc.pos[k] == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f (%d/%d)", float64(sc.det[k])/float64(sc.pos[k]), sc.det[k], sc.pos[k])
}

func (sc voiceScore) faPerHour() float64 { return float64(sc.falseAlarms) / max(sc.sameHours, 1e-9) }

// Print writes the table (and the sweep when asked).
func (r *VoiceReport) Print(w io.Writer) error {
	cfg := r.opts.Voice
	eff := effectiveVoice(cfg)
	fmt.Fprintf(w, "voice eval: split %s, %d sessions, %.2f h of audio (%.2f h speech); threshold %.3f, min %.1f s, enrol %.1f s\n",
		orAll(r.opts.Split), len(r.sessions), float64(r.audioMs)/3.6e6, float64(r.speechMs)/3.6e6, eff.Threshold,
		eff.MinSpeech.Seconds(), eff.Enrol.Seconds())
	sc := r.score(cfg)
	fmt.Fprintf(w, "\n| second voice | detected |\n|---|---|\n")
	for _, mode := range []string{"concat", "overlap"} {
		fmt.Fprintf(w, "| %s, all levels | %s |\n", mode, sc.rate(mode))
		for _, l := range voiceLevels {
			fmt.Fprintf(w, "| %s, %g dB quieter | %s |\n", mode, l, sc.rate(fmt.Sprintf("%s/%g", mode, l)))
		}
	}
	fmt.Fprintf(w, "\nsame-speaker sessions: %d, %.3f h of speech after enrolment, %d false alarms = %.2f per hour\n",
		sc.sameSessions, sc.sameHours, sc.falseAlarms, sc.faPerHour())
	audioS := float64(r.audioMs) / 1000
	spk := r.fullCPU - r.vadCPU
	fmt.Fprintf(w, "speed (one core, CPU time): VAD %.0f× real time; VAD + speaker %.0f×; speaker stage alone %.0f× (%.1f ms per s of speech)\n",
		audioS/max(r.vadCPU.Seconds(), 1e-9), audioS/max(r.fullCPU.Seconds(), 1e-9), audioS/max(spk.Seconds(), 1e-9),
		1000*spk.Seconds()/max(float64(r.speechMs)/1000, 1e-9))
	if !r.opts.Sweep {
		return nil
	}
	fmt.Fprintf(w, "\n| threshold | min s | concat | overlap | FA/h |\n|---|---|---|---|---|\n")
	for _, minS := range []float64{0.8, 1.6, 3} {
		for thr := 0.50; thr <= 0.901; thr += 0.025 {
			c := cfg
			c.Threshold, c.MinSpeech = thr, time.Duration(minS*float64(time.Second))
			s := r.score(c)
			fmt.Fprintf(w, "| %.3f | %.1f | %s | %s | %.2f |\n", thr, minS, s.rate("concat"), s.rate("overlap"), s.faPerHour())
		}
	}
	return nil
}

func orAll(s string) string {
	if s == "" {
		return "all"
	}
	return s
}

func effectiveVoice(c rules.VoiceConfig) rules.VoiceConfig {
	if c.Threshold <= 0 {
		c.Threshold = rules.DefaultSecondVoiceThreshold
	}
	if c.MinSpeech <= 0 {
		c.MinSpeech = time.Duration(rules.DefaultSecondVoiceMin * float64(time.Second))
	}
	if c.Enrol <= 0 {
		c.Enrol = time.Duration(rules.DefaultVoiceEnrol * float64(time.Second))
	}
	return c
}

// sessionBuilder concatenates clips with pauses over a quiet noise floor.
type sessionBuilder struct {
	rng    *rand.Rand
	out    []float32
	level  float64 // the candidate's level this session (dBFS)
	speech int64   // candidate speech placed so far (ms)
	order  []int
	next   int
}

func newSessionBuilder(rng *rand.Rand) *sessionBuilder {
	b := &sessionBuilder{rng: rng, level: -28 + 10*rng.Float64()}
	b.pause()
	return b
}

func (b *sessionBuilder) ms() int64 { return int64(len(b.out)) * 1000 / analyzers.AudioRate }

// pause appends 0.4–1.5 s of a −65 dBFS noise floor.
func (b *sessionBuilder) pause() {
	n := analyzers.AudioRate * (400 + b.rng.IntN(1100)) / 1000
	for range n {
		b.out = append(b.out, float32(b.rng.NormFloat64()*math.Pow(10, -65.0/20)))
	}
}

// add appends clip at dBFS level (±0 dB), then a pause; it returns where the clip went.
func (b *sessionBuilder) add(clip []float32, level float64) rules.Span {
	start := b.ms()
	g := float32(math.Pow(10, (level-dBFS(clip))/20))
	for _, x := range clip {
		b.out = append(b.out, x*g+float32(b.rng.NormFloat64()*math.Pow(10, -65.0/20)))
	}
	sp := rules.Span{Start: start, End: b.ms()}
	b.pause()
	return sp
}

// candidateUntil appends the candidate's clips (shuffled, cycling, each ±2 dB) until untilMs of
// candidate speech (−1: each clip once).
func (b *sessionBuilder) candidateUntil(clips [][]float32, untilMs int64) {
	if b.order == nil {
		b.order = b.rng.Perm(len(clips))
	}
	for n := 0; ; n++ {
		if (untilMs < 0 && n == len(clips)) || (untilMs >= 0 && b.speech >= untilMs) {
			return
		}
		c := clips[b.order[b.next%len(b.order)]]
		b.next++
		b.add(c, b.level-2+4*b.rng.Float64())
		b.speech += int64(len(c)) * 1000 / analyzers.AudioRate
	}
}

// overlay appends the candidate's next clip with other mixed in lvl dB quieter from 0.3 s on.
func (b *sessionBuilder) overlay(clips [][]float32, other []float32, lvl float64) rules.Span {
	c := clips[b.order[b.next%len(b.order)]]
	b.next++
	at := len(b.out) + analyzers.AudioRate*3/10
	span := b.add(c, b.level)
	// Extend with the noise floor when the other voice outlasts the candidate's clip.
	for len(b.out) < at+len(other) {
		b.out = append(b.out, float32(b.rng.NormFloat64()*math.Pow(10, -65.0/20)))
	}
	g := float32(math.Pow(10, (b.level-lvl-dBFS(other))/20))
	for i, x := range other {
		b.out[at+i] += x * g
	}
	b.pause()
	return rules.Span{Start: int64(at) * 1000 / analyzers.AudioRate, End: max(span.End, int64(at+len(other))*1000/analyzers.AudioRate)}
}

func dBFS(x []float32) float64 {
	var s float64
	for _, v := range x {
		s += float64(v) * float64(v)
	}
	return 10 * math.Log10(max(s/float64(max(len(x), 1)), 1e-20))
}

// loadSpeakerClips reads speakers.tsv (file, speaker, …) and decodes every clip (16 kHz mono).
func loadSpeakerClips(dir string) (map[string][][]float32, error) {
	f, err := os.Open(filepath.Join(dir, "speakers.tsv"))
	if err != nil {
		return nil, fmt.Errorf("%w (the real speakers live in ../shared/data/speech/mandarin-speakers)", err)
	}
	defer f.Close()
	out := map[string][][]float32{}
	sc := bufio.NewScanner(f)
	var files []string
	for sc.Scan() {
		cols := strings.Split(sc.Text(), "\t")
		if len(cols) < 2 || cols[0] == "file" {
			continue
		}
		files = append(files, cols[0]+"\t"+cols[1])
	}
	sort.Strings(files)
	for _, fs := range files {
		file, spk, _ := strings.Cut(fs, "\t")
		data, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			return nil, err
		}
		s, rate, err := wav.Decode(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		if rate != analyzers.AudioRate {
			s = analyzers.Resample(s, rate, analyzers.AudioRate)
		}
		out[spk] = append(out[spk], s)
	}
	return out, sc.Err()
}
