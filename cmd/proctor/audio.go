package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"proctor/analyzers"
	"proctor/internal/wav"
	"proctor/models"
	"proctor/rules"
)

// audioResult is the one JSON object `proctor analyze audio` prints. Field names are stable.
type audioResult struct {
	File       string         `json:"file"`
	DurationMs int64          `json:"duration_ms"`
	Speech     [][2]int64     `json:"speech"`
	Phrases    []audioPhrase  `json:"phrases"`
	Answers    []audioAnswers `json:"answers,omitempty"`
}

type audioPhrase struct {
	StartMs int64   `json:"start_ms"`
	EndMs   int64   `json:"end_ms"`
	Score   float32 `json:"score"`
}

type audioAnswers struct {
	Question       int   `json:"question"`
	StartMs        int64 `json:"start_ms"`
	EndMs          int64 `json:"end_ms"`
	ClosedByPhrase bool  `json:"closed_by_phrase"`
}

// runAnalyzeAudio: proctor analyze audio FILE.wav [--questions MS,MS,...]
func runAnalyzeAudio(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("analyze audio", flag.ContinueOnError)
	questions := fs.String("questions", "", "comma-separated ms offsets where questions 1, 2, … were shown; adds \"answers\"")
	chunk := fs.Int("chunk-ms", 1000, "feed the file in chunks of this many ms, as the live pipeline receives it")
	phraseModel := fs.String("phrase-model", "", "version directory of a retrained phrase head (training/phrase/retrain.sh) instead of the built-in one")
	// Flags may come after the file name too (proctor analyze audio a.wav --questions 0,60000).
	var files []string
	rest := args
	for len(rest) > 0 {
		if err := parse(fs, rest); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		files = append(files, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(files) != 1 {
		return usageError{errors.New("usage: proctor analyze audio FILE.wav [--questions MS,MS,...]")}
	}
	var shown []rules.QuestionShown
	if *questions != "" {
		for i, f := range strings.Split(*questions, ",") {
			ms, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64)
			if err != nil || ms < 0 {
				return usageError{fmt.Errorf("--questions: %q is not a non-negative number of ms", f)}
			}
			shown = append(shown, rules.QuestionShown{Question: i + 1, AtMs: ms})
		}
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		return err
	}
	samples, rate, err := wav.Decode(data)
	if err != nil {
		return fmt.Errorf("%s: %w (convert it with: sox IN -b 16 -c 1 OUT.wav)", files[0], err)
	}
	cfg, err := audioConfig(*phraseModel)
	if err != nil {
		return err
	}
	set, err := analyzers.NewAudioSet(cfg)
	if err != nil {
		return err
	}
	defer set.Close()
	res, err := set.AnalyzeSamples(ctx, samples, rate, *chunk)
	if err != nil {
		return err
	}
	out := audioResult{File: files[0], DurationMs: res.DurationMs, Speech: res.Speech, Phrases: []audioPhrase{}}
	if out.Speech == nil {
		out.Speech = [][2]int64{}
	}
	var phrases []rules.Phrase
	for _, p := range res.Phrases {
		out.Phrases = append(out.Phrases, audioPhrase{p.StartMs, p.EndMs, float32(math.Round(float64(p.Score)*1000) / 1000)})
		phrases = append(phrases, rules.Phrase{StartMs: p.StartMs, EndMs: p.EndMs, Score: p.Score})
	}
	if len(shown) > 0 {
		in := rules.AnswerInput{Questions: len(shown), Shown: shown, ExamEndMs: res.DurationMs, Phrases: phrases,
			Coverage: []rules.Span{{Start: 0, End: res.DurationMs}}}
		for _, s := range res.Speech {
			in.Speech = append(in.Speech, rules.Span{Start: s[0], End: s[1]})
		}
		out.Answers = []audioAnswers{}
		for _, a := range rules.SegmentAnswers(in, rules.AnswerConfig{}).Answers {
			out.Answers = append(out.Answers, audioAnswers{a.Question, a.StartMs, a.EndMs, a.ClosedByPhrase})
		}
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	return enc.Encode(out)
}

// audioConfig is the analyzers' default configuration, with the phrase head of a version
// directory (manifest.json + ONNX, checked like a registered version) when one is given.
func audioConfig(phraseModel string) (analyzers.AudioConfig, error) {
	var cfg analyzers.AudioConfig
	if phraseModel == "" {
		return cfg, nil
	}
	m, _, err := models.ReadVersionDir(phraseModel)
	if err != nil {
		return cfg, fmt.Errorf("--phrase-model: %w", err)
	}
	if m.Name != analyzers.DefaultPhraseModel {
		return cfg, fmt.Errorf("--phrase-model %s: model %s is not a version of %s", phraseModel, m.ID(), analyzers.DefaultPhraseModel)
	}
	cfg.Phrase.Active = m
	return cfg, nil
}

// evalAudioSummary is what `proctor eval audio --json` prints (and retrain.sh stores in a version
// directory's eval.json): the table's numbers. Field names are stable.
type evalAudioSummary struct {
	Data           string            `json:"data"`
	Model          string            `json:"model"`
	Files          int               `json:"files"`
	AudioHours     float64           `json:"audio_hours"`
	VADAccuracy    float64           `json:"vad_frame_accuracy"`
	VADRecall      float64           `json:"vad_speech_recall"`
	VADPrecision   float64           `json:"vad_speech_precision"`
	Recall         float64           `json:"phrase_recall"`
	Hits           int               `json:"phrase_hits"`
	Phrases        int               `json:"phrases"`
	FalseAlarms    int               `json:"false_alarms"`
	NegSpeechHours float64           `json:"negative_speech_hours"`
	FAPerHour      float64           `json:"false_alarms_per_hour"`
	VariantHits    int               `json:"variant_hits"`
	Variants       int               `json:"variants"`
	RealTimeFactor float64           `json:"analysis_time_per_audio_time"`
	Threshold      float32           `json:"threshold"`
	MinRun         int               `json:"min_run"`
	PerVoice       map[string]string `json:"per_voice,omitempty"`
}

// evalLabels is the sidecar JSON of an evaluation WAV (training/phrase/train.py writes them):
// speech, phrase and same-meaning-variant segments in ms.
type evalLabels struct {
	Speech   [][2]int64 `json:"speech"`
	Phrases  [][2]int64 `json:"phrases"`
	Variants [][2]int64 `json:"variants"`
	Voice    struct {
		Variant string `json:"variant"`
	} `json:"voice"`
}

type evalFile struct {
	name                     string
	durMs                    int64
	frames, agree            int64 // 10 ms VAD frames
	speechFrames, speechHit  int64 // labelled speech frames, and those the VAD called speech
	predFrames               int64 // frames the VAD called speech
	phrases, hits            int
	variants, variantHits    int
	falseAlarms              int
	negSpeechMs              int64
	took                     time.Duration
	boundaryStart, boundaryE int64
	voice                    string
}

// runEvalAudio: proctor eval audio --data DIR
func runEvalAudio(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("eval audio", flag.ContinueOnError)
	data := fs.String("data", "", "folder of WAV files with same-named .json labels (training/phrase/train.sh writes .cache/phrase-data/test)")
	jobs := fs.Int("jobs", 1, "files analysed in parallel (the real-time factor is reported per core either way)")
	vadCheck := fs.String("vad-check", "../shared/data/speech/mandarin/fun_tests_sample.wav:770-5980",
		"FILE:START-END: a recording with one labelled speech segment; the VAD's boundary errors are printed (skipped if the file is missing)")
	chunk := fs.Int("chunk-ms", 1000, "chunk size the files are fed in")
	phraseModel := fs.String("phrase-model", "", "version directory of a retrained phrase head (training/phrase/retrain.sh) instead of the built-in one")
	asJSON := fs.Bool("json", false, "print one JSON object (with recall per voice) instead of the table")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := audioConfig(*phraseModel)
	if err != nil {
		return err
	}
	head := cfg.Phrase.Active
	if head == nil {
		if head, err = models.Lookup(analyzers.DefaultPhraseModel); err != nil {
			return err
		}
	}
	if *data == "" {
		return usageError{errors.New("usage: proctor eval audio --data DIR")}
	}
	wavs, err := filepath.Glob(filepath.Join(*data, "*.wav"))
	if err != nil || len(wavs) == 0 {
		return fmt.Errorf("no .wav files in %s: run training/phrase/train.sh to build the held-back test split", *data)
	}
	sort.Strings(wavs)
	results := make([]evalFile, len(wavs))
	errs := make([]error, len(wavs))
	next := make(chan int)
	var wg sync.WaitGroup
	for range max(1, *jobs) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			set, err := analyzers.NewAudioSet(cfg)
			if err != nil {
				for i := range next {
					errs[i] = err
				}
				return
			}
			defer set.Close()
			for i := range next {
				results[i], errs[i] = evalOne(ctx, set, wavs[i], *chunk)
			}
		}()
	}
	for i := range wavs {
		next <- i
	}
	close(next)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	var t evalFile
	for _, r := range results {
		t.durMs += r.durMs
		t.frames, t.agree, t.speechFrames, t.speechHit, t.predFrames = t.frames+r.frames, t.agree+r.agree,
			t.speechFrames+r.speechFrames, t.speechHit+r.speechHit, t.predFrames+r.predFrames
		t.phrases, t.hits, t.variants, t.variantHits = t.phrases+r.phrases, t.hits+r.hits, t.variants+r.variants, t.variantHits+r.variantHits
		t.falseAlarms += r.falseAlarms
		t.negSpeechMs += r.negSpeechMs
		t.took += r.took
	}
	hours := float64(t.negSpeechMs) / 3.6e6
	rtf := t.took.Seconds() / (float64(t.durMs) / 1000)
	if *asJSON {
		perVoice := map[string][2]int{}
		for _, r := range results {
			if r.voice != "" {
				v := perVoice[r.voice]
				perVoice[r.voice] = [2]int{v[0] + r.hits, v[1] + r.phrases}
			}
		}
		sum := evalAudioSummary{Data: *data, Model: head.ID(), Files: len(wavs), AudioHours: round4(float64(t.durMs) / 3.6e6),
			VADAccuracy:  round4(float64(t.agree) / float64(max(t.frames, 1))),
			VADRecall:    round4(float64(t.speechHit) / float64(max(t.speechFrames, 1))),
			VADPrecision: round4(float64(t.speechHit) / float64(max(t.predFrames, 1))),
			Recall:       round4(float64(t.hits) / float64(max(t.phrases, 1))), Hits: t.hits, Phrases: t.phrases,
			FalseAlarms: t.falseAlarms, NegSpeechHours: round4(hours), FAPerHour: round4(float64(t.falseAlarms) / math.Max(hours, 1e-9)),
			VariantHits: t.variantHits, Variants: t.variants, RealTimeFactor: round4(rtf),
			Threshold: head.Thresholds.Score, MinRun: head.Audio.MinRun}
		if len(perVoice) > 0 {
			sum.PerVoice = map[string]string{}
			for k, v := range perVoice {
				sum.PerVoice[k] = fmt.Sprintf("%d/%d", v[0], v[1])
			}
		}
		enc := json.NewEncoder(os.Stdout)
		enc.SetEscapeHTML(false)
		return enc.Encode(sum)
	}
	fmt.Printf("proctor eval audio --data %s  (%d files, %.2f h of audio, %s, %s)\n\n", *data, len(wavs),
		float64(t.durMs)/3.6e6, runtime.GOARCH, head.ID())
	fmt.Println("| metric | value |")
	fmt.Println("|---|---|")
	fmt.Printf("| VAD frame accuracy (10 ms frames) | %.3f |\n", float64(t.agree)/float64(max(t.frames, 1)))
	fmt.Printf("| VAD speech recall / precision | %.3f / %.3f |\n", float64(t.speechHit)/float64(max(t.speechFrames, 1)),
		float64(t.speechHit)/float64(max(t.predFrames, 1)))
	fmt.Printf("| phrase recall | %.3f (%d/%d) |\n", float64(t.hits)/float64(max(t.phrases, 1)), t.hits, t.phrases)
	fmt.Printf("| false alarms | %d in %.2f h of speech without the phrase = %.2f per hour |\n", t.falseAlarms, hours,
		float64(t.falseAlarms)/math.Max(hours, 1e-9))
	fmt.Printf("| same-meaning variants detected (count as closing) | %d/%d |\n", t.variantHits, t.variants)
	fmt.Printf("| analysis time / audio time, one core | %.4f (%.0f× faster than real time) |\n", rtf, 1/math.Max(rtf, 1e-9))
	if file, span, ok := strings.Cut(*vadCheck, ":"); ok && file != "" {
		if err := vadBoundaryCheck(ctx, file, span); err != nil {
			fmt.Printf("\nVAD check %s: %v\n", file, err)
		}
	}
	return nil
}

func evalOne(ctx context.Context, set *analyzers.AudioSet, path string, chunkMs int) (evalFile, error) {
	r := evalFile{name: filepath.Base(path)}
	data, err := os.ReadFile(path)
	if err != nil {
		return r, err
	}
	var lab evalLabels
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

// vadBoundaryCheck prints how far the VAD's first start and last end are from a labelled span.
func vadBoundaryCheck(ctx context.Context, file, span string) error {
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
	fmt.Printf("\nVAD on %s: speech %d–%d ms (labelled %d–%d): start error %+d ms, end error %+d ms, %d segment(s)\n",
		filepath.Base(file), got0, got1, want0, want1, got0-want0, got1-want1, len(res.Speech))
	return nil
}

func round4(x float64) float64 { return math.Round(x*1e4) / 1e4 }
