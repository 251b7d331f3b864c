package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"proctor/analyzers"
	"proctor/internal/eval"
	"proctor/models"
)

// runEvalVision is `proctor eval vision --data DIR`: every vision check on a labelled folder
// (layout in internal/eval's package doc; ../shared/data/faces works as is).
func runEvalVision(ctx context.Context, args []string) error {
	return evalVision(ctx, args, os.Stdout, os.Stderr)
}

func evalVision(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("eval vision", flag.ContinueOnError)
	data := fs.String("data", "../shared/data/faces", "labelled folder: identities*/NAME/*, multi_person/*, optional no_face/*")
	names := fs.String("analyzers", strings.Join(eval.DefaultAnalyzers, ","), "analyzers to evaluate, in order")
	only := fs.String("checks", "", "comma-separated checks to run (default all: "+eval.CheckNames()+")")
	attireModel := fs.String("attire-model", "", "evaluate this attire-cnn version directory (a retraining run's output: manifest.json + ONNX, docs/data-loop.md) instead of the built-in model")
	identityModel := fs.String("identity-model", "", "face-embedding manifest the identity analyzer uses (default "+analyzers.DefaultIdentityModel+"; models/manifests, task face-embedding)")
	firstLook := fs.String("identity-first-look", "", "the identity model's first look (IdentityConfig.FirstLook): a cheaper face-embedding manifest with the same crop that settles clear matches; empty = the service's default for the default model, none = off; with one, identity-time sweeps its margin on the dev people")
	asJSON := fs.Bool("json", false, "print the report as one JSON object (metrics that do not apply are null)")
	headpose := fs.String("headpose", "", "head pose method: network (the pose model) or landmarks (a 3D fit to the 68 landmarks); default: the service's")
	personsModel := fs.String("persons-model", "", "person/phone detector manifest (nanodet-coco = 416 input, nanodet-coco-320); default: the service's")
	quiet := fs.Bool("q", false, "no progress or per-image misses on stderr")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{errors.New("usage: proctor eval vision [--data DIR] [--checks faces,identity,...] [--identity-model NAME] [--attire-model VERSION_DIR] [--json]")}
	}
	var cfg analyzers.Config
	cfg.HeadPose.Method = *headpose
	cfg.Persons.Model = *personsModel
	for _, n := range strings.Split(*names, ",") {
		if n = strings.TrimSpace(n); n != "" {
			cfg.Analyzers = append(cfg.Analyzers, n)
		}
	}
	cfg.Identity.Model, cfg.Identity.FirstLook = *identityModel, *firstLook
	if *attireModel != "" {
		if len(cfg.Analyzers) > 0 && !slices.Contains(cfg.Analyzers, "attire") {
			return usageError{fmt.Errorf("--attire-model needs the attire analyzer in --analyzers (got %s)", *names)}
		}
		m, _, err := models.ReadVersionDir(*attireModel)
		if err != nil {
			return fmt.Errorf("--attire-model: %w (want a version directory written by training/vision/finetune_attire.sh)", err)
		}
		if m.Name != analyzers.DefaultAttireModel {
			return usageError{fmt.Errorf("--attire-model %s holds %s, not a version of %s", *attireModel, m.ID(), analyzers.DefaultAttireModel)}
		}
		cfg.Attire.Active = m
	}
	o := eval.Options{Data: *data, Analyzers: cfg, Log: stderr}
	if *quiet {
		o.Log = nil
	}
	for _, c := range strings.Split(*only, ",") {
		if c = strings.TrimSpace(c); c != "" {
			o.Only = append(o.Only, c)
		}
	}
	rep, err := eval.Run(ctx, o)
	if err != nil {
		return err
	}
	if *asJSON {
		return rep.WriteJSON(stdout)
	}
	return rep.Print(stdout)
}
