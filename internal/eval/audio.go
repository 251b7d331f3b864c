package eval

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"proctor/analyzers"
	"proctor/internal/wav"
	"proctor/models"
)

// `proctor eval audio --data DIR` measures the audio analyzers on a folder of WAV files, each
// with a same-named .json sidecar of labels (training/phrase/train.py writes them): VAD frame
// accuracy, phrase recall, false alarms per hour of speech without the phrase, and speed.

// AudioOptions configure RunAudio.
type AudioOptions struct {
	// Data is the folder of WAV files and their .json labels.
	Data string
	// Jobs is how many files are analysed in parallel (the real-time factor is per core either
	// way). Default 1.
	Jobs int
	// ChunkMs is the chunk size the files are fed in, as the live stream arrives. Default 1000.
	ChunkMs int
	// Analyzers is the audio analyzer configuration (its Phrase.Active: a retrained head).
	Analyzers analyzers.AudioConfig
	// Negatives is a folder of real recordings without the phrase (WAV, any rate, searched
	// recursively; ../shared/data/speech): every detection in them is a false alarm, reported
	// per subfolder and apart from the labelled (synthetic) split. Empty: none.
	Negatives string
}

// AudioReport is the result of RunAudio: totals over every file.
type AudioReport struct {
	Data  string
	Files int
	// Model is the phrase model evaluated (the built-in one unless Analyzers.Phrase.Active).
	Model   *models.Manifest
	total   audioFile
	results []audioFile
	// real: the Negatives folder's files by subfolder; stages: thread CPU per stage, all files.
	real   map[string]*audioFile
	stages []analyzers.StageCost
}

// AudioSummary is what `proctor eval audio --json` prints (and retrain.sh stores in a version
// directory's eval.json): the table's numbers. Field names are stable.
type AudioSummary struct {
	Data           string  `json:"data"`
	Model          string  `json:"model"`
	Files          int     `json:"files"`
	AudioHours     float64 `json:"audio_hours"`
	VADAccuracy    float64 `json:"vad_frame_accuracy"`
	VADRecall      float64 `json:"vad_speech_recall"`
	VADPrecision   float64 `json:"vad_speech_precision"`
	Recall         float64 `json:"phrase_recall"`
	Hits           int     `json:"phrase_hits"`
	Phrases        int     `json:"phrases"`
	FalseAlarms    int     `json:"false_alarms"`
	NegSpeechHours float64 `json:"negative_speech_hours"`
	FAPerHour      float64 `json:"false_alarms_per_hour"`
	VariantHits    int     `json:"variant_hits"`
	Variants       int     `json:"variants"`
	RealTimeFactor float64 `json:"analysis_time_per_audio_time"`
	// Stages is seconds of audio per CPU second (× real time, one core) for each stage and
	// "total", over the labelled split and the real negatives.
	Stages map[string]float64 `json:"x_realtime_per_stage,omitempty"`
	// Runs is how many times each stage's main network ran per second of audio (analyzers.ModelRuns).
	Runs map[string]float64 `json:"network_runs_per_audio_second,omitempty"`
	// Real is the false alarms on real recordings without the phrase, per subfolder.
	Real      map[string]RealNegatives `json:"real_negatives,omitempty"`
	Threshold float32                  `json:"threshold"`
	MinRun    int                      `json:"min_run"`
	PerVoice  map[string]string        `json:"per_voice,omitempty"`
}

// RealNegatives is what the spotter did on real recordings that never contain the phrase.
type RealNegatives struct {
	Files       int     `json:"files"`
	AudioHours  float64 `json:"audio_hours"`
	SpeechHours float64 `json:"vad_speech_hours"`
	FalseAlarms int     `json:"false_alarms"`
	FAPerHour   float64 `json:"false_alarms_per_hour_of_speech"`
}

// audioLabels is the sidecar JSON of an evaluation WAV: speech, phrase and same-meaning-variant
// segments in ms.
type audioLabels struct {
	Speech   [][2]int64 `json:"speech"`
	Phrases  [][2]int64 `json:"phrases"`
	Variants [][2]int64 `json:"variants"`
	Voice    struct {
		Variant string `json:"variant"`
	} `json:"voice"`
}

// audioFile is one file's counts (and, summed, the totals).
type audioFile struct {
	durMs                   int64
	frames, agree           int64 // 10 ms VAD frames
	speechFrames, speechHit int64 // labelled speech frames, and those the VAD called speech
	predFrames              int64 // frames the VAD called speech
	phrases, hits           int
	variants, variantHits   int
	falseAlarms             int
	negSpeechMs             int64
	took                    time.Duration
	voice                   string
	files                   int
	vadSpeechMs             int64 // what the VAD called speech (real negatives: no labels)
}

func (t *audioFile) add(r audioFile) {
	t.durMs += r.durMs
	t.frames, t.agree, t.speechFrames, t.speechHit, t.predFrames = t.frames+r.frames, t.agree+r.agree,
		t.speechFrames+r.speechFrames, t.speechHit+r.speechHit, t.predFrames+r.predFrames
	t.phrases, t.hits, t.variants, t.variantHits = t.phrases+r.phrases, t.hits+r.hits, t.variants+r.variants, t.variantHits+r.variantHits
	t.falseAlarms += r.falseAlarms
	t.negSpeechMs += r.negSpeechMs
	t.took += r.took
	t.files += r.files
	t.vadSpeechMs += r.vadSpeechMs
}

// RunAudio analyses every WAV file under o.Data and scores it against its labels.
func RunAudio(ctx context.Context, o AudioOptions) (*AudioReport, error) {
	head := o.Analyzers.Phrase.Active
	if head == nil {
		name := o.Analyzers.Phrase.Model
		if name == "" {
			name = analyzers.DefaultPhraseHead
		}
		var err error
		if head, err = models.Lookup(name); err != nil {
			return nil, err
		}
	}
	if o.ChunkMs <= 0 {
		o.ChunkMs = 1000
	}
	wavs, err := filepath.Glob(filepath.Join(o.Data, "*.wav"))
	if err != nil || len(wavs) == 0 {
		return nil, fmt.Errorf("no .wav files in %s: run training/phrase/train.sh to build the held-back test split", o.Data)
	}
	sort.Strings(wavs)
	var negs []string
	if o.Negatives != "" {
		err := filepath.WalkDir(o.Negatives, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.EqualFold(filepath.Ext(p), ".wav") {
				negs = append(negs, p)
			}
			return err
		})
		if err != nil || len(negs) == 0 {
			return nil, fmt.Errorf("no .wav files under --negatives %s: %v", o.Negatives, err)
		}
		sort.Strings(negs)
	}
	all := append(slices.Clone(wavs), negs...)
	results := make([]audioFile, len(all))
	errs := make([]error, len(all))
	next := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	stages := map[string]time.Duration{}
	runs := map[string]int64{}
	var order []string
	for range max(1, o.Jobs) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			set, err := analyzers.NewAudioSet(o.Analyzers)
			if err != nil {
				for i := range next {
					errs[i] = err
				}
				return
			}
			defer set.Close()
			for i := range next {
				if i < len(wavs) {
					results[i], errs[i] = evalAudioFile(ctx, set, all[i], o.ChunkMs)
				} else {
					results[i], errs[i] = evalNegativeFile(ctx, set, all[i], o.ChunkMs)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			for _, st := range set.StageCPU() {
				if _, ok := stages[st.Name]; !ok {
					order = append(order, st.Name)
				}
				stages[st.Name] += st.CPU
				runs[st.Name] += st.Runs
			}
		}()
	}
	for i := range all {
		next <- i
	}
	close(next)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	rep := &AudioReport{Data: o.Data, Files: len(wavs), Model: head, results: results[:len(wavs)], real: map[string]*audioFile{}}
	for _, r := range rep.results {
		rep.total.add(r)
	}
	for i, r := range results[len(wavs):] {
		group := "."
		if rel, err := filepath.Rel(o.Negatives, filepath.Dir(negs[i])); err == nil {
			group = rel
		}
		if rep.real[group] == nil {
			rep.real[group] = &audioFile{}
		}
		rep.real[group].add(r)
	}
	for _, n := range order {
		rep.stages = append(rep.stages, analyzers.StageCost{Name: n, CPU: stages[n], Runs: runs[n]})
	}
	return rep, nil
}

// evalNegativeFile runs the set over a real recording that never contains the phrase: every
// detection is a false alarm, counted per hour of what the VAD called speech.
func evalNegativeFile(ctx context.Context, set *analyzers.AudioSet, path string, chunkMs int) (audioFile, error) {
	r := audioFile{files: 1}
	data, err := os.ReadFile(path)
	if err != nil {
		return r, err
	}
	samples, rate, err := wav.Decode(data)
	if err != nil {
		return r, fmt.Errorf("%s: %w", path, err)
	}
	res, err := set.AnalyzeSamples(ctx, samples, rate, chunkMs)
	if err != nil {
		return r, fmt.Errorf("%s: %w", path, err)
	}
	r.durMs, r.falseAlarms = res.DurationMs, len(res.Phrases)
	for _, s := range res.Speech {
		r.vadSpeechMs += s[1] - s[0]
	}
	return r, nil
}

// audioMs is the audio analysed in all: the labelled split and the real negatives.
func (r *AudioReport) audioMs() int64 {
	ms := r.total.durMs
	for _, g := range r.real {
		ms += g.durMs
	}
	return ms
}

// stageSpeed is seconds of audio per CPU second for each stage and "total".
func (r *AudioReport) stageSpeed() map[string]float64 {
	out := map[string]float64{}
	var total time.Duration
	audio := float64(r.audioMs()) / 1000
	for _, st := range r.stages {
		total += st.CPU
		out[st.Name] = math.Round(audio/math.Max(st.CPU.Seconds(), 1e-9)*10) / 10
	}
	out["total"] = math.Round(audio/math.Max(total.Seconds(), 1e-9)*10) / 10
	return out
}

// stageRuns is each stage's network runs per second of audio (stages without a count left out).
func (r *AudioReport) stageRuns() map[string]float64 {
	out := map[string]float64{}
	audio := float64(r.audioMs()) / 1000
	for _, st := range r.stages {
		if st.Runs > 0 {
			out[st.Name] = math.Round(float64(st.Runs)/math.Max(audio, 1e-9)*1000) / 1000
		}
	}
	return out
}

func (r *AudioReport) realSummary() map[string]RealNegatives {
	if len(r.real) == 0 {
		return nil
	}
	out := map[string]RealNegatives{}
	for k, g := range r.real {
		h := float64(g.vadSpeechMs) / 3.6e6
		out[k] = RealNegatives{Files: g.files, AudioHours: round4(float64(g.durMs) / 3.6e6), SpeechHours: round4(h),
			FalseAlarms: g.falseAlarms, FAPerHour: round4(float64(g.falseAlarms) / math.Max(h, 1e-9))}
	}
	return out
}

// negSpeechHours is the labelled speech without the phrase, in hours: what false alarms are
// counted per.
func (r *AudioReport) negSpeechHours() float64 { return float64(r.total.negSpeechMs) / 3.6e6 }

// realTimeFactor is analysis time over audio time, on one core.
func (r *AudioReport) realTimeFactor() float64 {
	return r.total.took.Seconds() / (float64(r.total.durMs) / 1000)
}

// Summary is the report as `proctor eval audio --json` prints it.
func (r *AudioReport) Summary() AudioSummary {
	t, hours := r.total, r.negSpeechHours()
	perVoice := map[string][2]int{}
	for _, f := range r.results {
		if f.voice != "" {
			v := perVoice[f.voice]
			perVoice[f.voice] = [2]int{v[0] + f.hits, v[1] + f.phrases}
		}
	}
	sum := AudioSummary{Data: r.Data, Model: r.Model.ID(), Files: r.Files, AudioHours: round4(float64(t.durMs) / 3.6e6),
		VADAccuracy:  round4(float64(t.agree) / float64(max(t.frames, 1))),
		VADRecall:    round4(float64(t.speechHit) / float64(max(t.speechFrames, 1))),
		VADPrecision: round4(float64(t.speechHit) / float64(max(t.predFrames, 1))),
		Recall:       round4(float64(t.hits) / float64(max(t.phrases, 1))), Hits: t.hits, Phrases: t.phrases,
		FalseAlarms: t.falseAlarms, NegSpeechHours: round4(hours), FAPerHour: round4(float64(t.falseAlarms) / math.Max(hours, 1e-9)),
		VariantHits: t.variantHits, Variants: t.variants, RealTimeFactor: round4(r.realTimeFactor()),
		Threshold: r.Model.Thresholds.Score, MinRun: r.Model.Audio.MinRun, Stages: r.stageSpeed(), Runs: r.stageRuns(), Real: r.realSummary()}
	if len(perVoice) > 0 {
		sum.PerVoice = map[string]string{}
		for k, v := range perVoice {
			sum.PerVoice[k] = fmt.Sprintf("%d/%d", v[0], v[1])
		}
	}
	return sum
}

// WriteJSON writes the Summary as one JSON object.
func (r *AudioReport) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(r.Summary())
}

// Print writes the report as a Markdown table.
func (r *AudioReport) Print(w io.Writer) error {
	t, hours, rtf := r.total, r.negSpeechHours(), r.realTimeFactor()
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("proctor eval audio --data %s  (%d files, %.2f h of audio, %s, %s)\n\n", r.Data, r.Files,
		float64(t.durMs)/3.6e6, runtime.GOARCH, r.Model.ID())
	p("| metric | value |\n")
	p("|---|---|\n")
	p("| VAD frame accuracy (10 ms frames) | %.3f |\n", float64(t.agree)/float64(max(t.frames, 1)))
	p("| VAD speech recall / precision | %.3f / %.3f |\n", float64(t.speechHit)/float64(max(t.speechFrames, 1)),
		float64(t.speechHit)/float64(max(t.predFrames, 1)))
	p("| phrase recall | %.3f (%d/%d) |\n", float64(t.hits)/float64(max(t.phrases, 1)), t.hits, t.phrases)
	p("| false alarms | %d in %.2f h of speech without the phrase = %.2f per hour |\n", t.falseAlarms, hours,
		float64(t.falseAlarms)/math.Max(hours, 1e-9))
	p("| same-meaning variants detected (count as closing) | %d/%d |\n", t.variantHits, t.variants)
	p("| analysis time / audio time, one core (wall clock) | %.4f (%.0f× faster than real time) |\n", rtf, 1/math.Max(rtf, 1e-9))
	if len(r.real) > 0 {
		groups := make([]string, 0, len(r.real))
		for k := range r.real {
			groups = append(groups, k)
		}
		sort.Strings(groups)
		p("\nReal recordings without the phrase (every detection is a false alarm):\n\n")
		p("| folder | files | audio | VAD speech | false alarms | per hour of speech |\n|---|---|---|---|---|---|\n")
		for _, k := range groups {
			g := r.real[k]
			h := float64(g.vadSpeechMs) / 3.6e6
			p("| %s | %d | %.1f s | %.1f s | %d | %.1f |\n", k, g.files, float64(g.durMs)/1000, float64(g.vadSpeechMs)/1000,
				g.falseAlarms, float64(g.falseAlarms)/math.Max(h, 1e-9))
		}
	}
	if len(r.stages) > 0 {
		speed := r.stageSpeed()
		audio := float64(r.audioMs()) / 1000
		p("\nSpeed per stage (thread CPU time, one core; %.0f s of audio):\n\n", audio)
		p("| stage | CPU s | × real time | per s of audio: model calls (phrase: embeddings) |\n|---|---|---|---|\n")
		var total time.Duration
		for _, st := range r.stages {
			total += st.CPU
			p("| %s | %.2f | %.0f× | %.2f |\n", st.Name, st.CPU.Seconds(), speed[st.Name], float64(st.Runs)/audio)
		}
		p("| **total** | %.2f | **%.0f×** | |\n", total.Seconds(), speed["total"])
	}
	return nil
}

func evalAudioFile(ctx context.Context, set *analyzers.AudioSet, path string, chunkMs int) (audioFile, error) {
	var r audioFile
	data, err := os.ReadFile(path)
	if err != nil {
		return r, err
	}
	var lab audioLabels
	side, err := os.ReadFile(strings.TrimSuffix(path, filepath.Ext(path)) + ".json")
	if err != nil {
		return r, fmt.Errorf("%s: labels: %w", path, err)
	}
	if err := json.Unmarshal(side, &lab); err != nil {
		return r, fmt.Errorf("%s: labels: %w", path, err)
	}
	r.voice = lab.Voice.Variant
	samples, rate, err := wav.Decode(data)
	if err != nil {
		return r, fmt.Errorf("%s: %w", path, err)
	}
	start := time.Now()
	res, err := set.AnalyzeSamples(ctx, samples, rate, chunkMs)
	if err != nil {
		return r, fmt.Errorf("%s: %w", path, err)
	}
	r.took = time.Since(start)
	r.durMs = res.DurationMs
	// VAD: 10 ms frames, labelled speech vs predicted speech.
	n := res.DurationMs / 10
	truth, pred := make([]bool, n), make([]bool, n)
	mark := func(dst []bool, segs [][2]int64) {
		for _, s := range segs {
			for f := max(0, s[0]/10); f < min(n, (s[1]+9)/10); f++ {
				dst[f] = true
			}
		}
	}
	mark(truth, lab.Speech)
	mark(pred, res.Speech)
	for f := range n {
		r.frames++
		if truth[f] == pred[f] {
			r.agree++
		}
		if truth[f] {
			r.speechFrames++
			if pred[f] {
				r.speechHit++
			}
		}
		if pred[f] {
			r.predFrames++
		}
	}
	// Phrases: a detection ending within [end−0.5 s, end+1 s] of a labelled phrase is a hit
	// (as in training/phrase/train.py); on a same-meaning variant it is a variant hit; any other
	// detection is a false alarm.
	used := make([]bool, len(res.Phrases))
	match := func(lo, hi int64) bool {
		for k, d := range res.Phrases {
			if !used[k] && d.EndMs >= lo && d.EndMs <= hi {
				used[k] = true
				return true
			}
		}
		return false
	}
	for _, p := range lab.Phrases {
		r.phrases++
		if match(p[1]-500, p[1]+1000) {
			r.hits++
		}
	}
	for _, v := range lab.Variants {
		r.variants++
		if match(v[0], v[1]+1000) {
			r.variantHits++
		}
	}
	for _, u := range used {
		if !u {
			r.falseAlarms++
		}
	}
	var speech, phr int64
	for _, s := range lab.Speech {
		speech += s[1] - s[0]
	}
	for _, s := range append(lab.Phrases, lab.Variants...) {
		phr += s[1] - s[0]
	}
	r.negSpeechMs = speech - phr
	return r, nil
}

// VADBoundary runs the VAD alone on file, whose one labelled speech segment is span
// ("START-END" in ms), and writes how far its first start and last end are from the label.
func VADBoundary(ctx context.Context, w io.Writer, file, span string) error {
	a, b, ok := strings.Cut(span, "-")
	want0, err0 := strconv.ParseInt(a, 10, 64)
	want1, err1 := strconv.ParseInt(b, 10, 64)
	if !ok || err0 != nil || err1 != nil {
		return fmt.Errorf("span %q is not START-END in ms", span)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("skipped (%v)", err)
	}
	samples, rate, err := wav.Decode(data)
	if err != nil {
		return err
	}
	set, err := analyzers.NewAudioSet(analyzers.AudioConfig{Analyzers: []string{"vad"}})
	if err != nil {
		return err
	}
	defer set.Close()
	res, err := set.AnalyzeSamples(ctx, samples, rate, 1000)
	if err != nil {
		return err
	}
	if len(res.Speech) == 0 {
		return errors.New("no speech found")
	}
	got0, got1 := res.Speech[0][0], res.Speech[len(res.Speech)-1][1]
	fmt.Fprintf(w, "\nVAD on %s: speech %d–%d ms (labelled %d–%d): start error %+d ms, end error %+d ms, %d segment(s)\n",
		filepath.Base(file), got0, got1, want0, want1, got0-want0, got1-want1, len(res.Speech))
	return nil
}

func round4(x float64) float64 { return math.Round(x*1e4) / 1e4 }
