package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"proctor/analyzers"
	"proctor/internal/analyze"
	"proctor/internal/eval"
	"proctor/internal/wav"
	"proctor/models"
)

// runAnalyzeAudio: proctor analyze audio FILE.wav [--questions MS,MS,...]
func runAnalyzeAudio(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("analyze audio", flag.ContinueOnError)
	questions := fs.String("questions", "", "comma-separated ms offsets where questions 1, 2, … were shown; adds \"answers\"")
	chunk := fs.Int("chunk-ms", 1000, "feed the file in chunks of this many ms, as the live pipeline receives it")
	phraseModel := fs.String("phrase-model", "", "version directory of a retrained phrase head (training/phrase/retrain.sh) instead of the built-in one")
	head := fs.String("phrase", "", "built-in phrase head: phrase-gaiti (openWakeWord, int8 embeddings), phrase-gaiti-fp32 (its version 1, fp32 embeddings), phrase-gaiti-h12 (int8, 12 embeddings of history instead of 16; not the default), phrase-ewn (EfficientWord-Net at speech ends) or phrase-ewn-oww (EWN fused with phrase-gaiti-fp32 at speech ends); default "+analyzers.DefaultPhraseHead)
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
	var shown []int64
	if *questions != "" {
		for _, f := range strings.Split(*questions, ",") {
			ms, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64)
			if err != nil || ms < 0 {
				return usageError{fmt.Errorf("--questions: %q is not a non-negative number of ms", f)}
			}
			shown = append(shown, ms)
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
	cfg.Phrase.Model = *head
	out, err := analyze.Audio(ctx, cfg, files[0], samples, rate, *chunk, shown)
	if err != nil {
		return err
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
	negatives := fs.String("negatives", "", "folder of real recordings without the phrase (e.g. ../shared/data/speech): false alarms on them are reported per subfolder, apart from --data's")
	head := fs.String("phrase", "", "built-in phrase head: phrase-gaiti (openWakeWord, int8 embeddings), phrase-gaiti-fp32 (its version 1, fp32 embeddings), phrase-gaiti-h12 (int8, 12 embeddings of history instead of 16; not the default), phrase-ewn (EfficientWord-Net at speech ends) or phrase-ewn-oww (EWN fused with phrase-gaiti-fp32 at speech ends); default "+analyzers.DefaultPhraseHead)
	stages := fs.String("analyzers", "", "comma-separated audio analyzers to run and time (default vad,phrase,voice); speed is printed per stage")
	every := fs.Bool("every-window", false, "score the openWakeWord phrase head on every 80 ms window (as before issue 16's gate: ~2× the phrase CPU), not only around speech ends and loud-stretch ends")
	endBefore := fs.Duration("end-before", 0, "score windows ending from this long before each speech end (default "+analyzers.DefaultEndBefore.String()+")")
	endAfter := fs.Duration("end-after", 0, "... to this long after it (default "+analyzers.DefaultEndAfter.String()+")")
	voiceBatch := fs.Int("voice-batch", 0, "speaker encoder windows per call (default 4; 1 = one at a time)")
	embedding := fs.String("phrase-embedding", "", "feed the head this openWakeWord embedding model instead of the one it was trained on (its manifest's audio.embedding): oww-embedding (fp32) or oww-embedding-int8; for measurements")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := audioConfig(*phraseModel)
	if err != nil {
		return err
	}
	cfg.Phrase.Embedding = *embedding
	cfg.Voice.Batch = *voiceBatch
	if *stages != "" {
		cfg.Analyzers = strings.Split(*stages, ",")
	}
	cfg.Phrase.Model = *head
	cfg.Phrase.EveryWindow, cfg.Phrase.EndBefore, cfg.Phrase.EndAfter = *every, *endBefore, *endAfter
	if *data == "" {
		return usageError{errors.New("usage: proctor eval audio --data DIR")}
	}
	rep, err := eval.RunAudio(ctx, eval.AudioOptions{Data: *data, Jobs: *jobs, ChunkMs: *chunk, Analyzers: cfg, Negatives: *negatives})
	if err != nil {
		return err
	}
	if *asJSON {
		return rep.WriteJSON(os.Stdout)
	}
	if err := rep.Print(os.Stdout); err != nil {
		return err
	}
	if file, span, ok := strings.Cut(*vadCheck, ":"); ok && file != "" {
		if err := eval.VADBoundary(ctx, os.Stdout, file, span); err != nil {
			fmt.Printf("\nVAD check %s: %v\n", file, err)
		}
	}
	return nil
}
