package main

import (
	"context"
	"flag"
	"os"
	"time"

	"proctor/internal/eval"
	"proctor/rules"
)

// runEvalVoice: proctor eval voice [--data DIR] [--split tune|test|all] [--sweep]
func runEvalVoice(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("eval voice", flag.ContinueOnError)
	data := fs.String("data", "../shared/data/speech/mandarin-speakers", "folder with speakers.tsv and the real speakers' clips")
	split := fs.String("split", "test", "speakers to measure on: tune (chose the defaults), test (held back) or all")
	sessions := fs.Int("sessions", 12, "same-speaker sessions (clip orders) per candidate")
	repeats := fs.Int("repeats", 2, "sessions per candidate, second voice, level and mode")
	seed := fs.Uint64("seed", 1, "session builder seed")
	thr := fs.Float64("threshold", 0, "similarity to the enrolled voice below which speech is another voice (0: the default "+
		"second_voice_threshold)")
	minSec := fs.Float64("min-sec", 0, "another voice's speech this long raises SECOND_VOICE (0: the default second_voice_min_sec)")
	enrol := fs.Float64("enrol-sec", 0, "speech enrolled as the candidate's voice (0: the default voice_enrol_sec)")
	adapt := fs.Float64("adapt", 0, "a window this far above the threshold joins the enrolment (0: default 0.1, negative: never)")
	skip := fs.Int("skip-frames", 0, "speech frames (10 ms) skipped after each 1.6 s window (speed for coverage)")
	sweep := fs.Bool("sweep", false, "also print detection and false alarms for a grid of thresholds and durations")
	if err := parse(fs, args); err != nil {
		return err
	}
	o := eval.VoiceOptions{Data: *data, Split: *split, Sessions: *sessions, Repeats: *repeats, Seed: *seed, Sweep: *sweep,
		Voice: rules.VoiceConfig{Threshold: *thr, MinSpeech: time.Duration(*minSec * float64(time.Second)),
			Enrol: time.Duration(*enrol * float64(time.Second)), Adapt: *adapt}}
	o.Audio.Voice.SkipFrames = *skip
	rep, err := eval.RunVoice(ctx, o)
	if err != nil {
		return err
	}
	return rep.Print(os.Stdout)
}
