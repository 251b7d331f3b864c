package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"proctor/analyzers"
	"proctor/internal/analyze"
	"proctor/models"
)

// runAnalyzeImage: proctor analyze image [--enroll REF.jpg[,MORE.jpg...]] FILE...
func runAnalyzeImage(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("analyze image", flag.ContinueOnError)
	camera := fs.String("camera", analyzers.CameraMain, "camera the images come from: main or evidence")
	var enroll []string
	fs.Func("enroll", "reference photo(s), comma-separated or repeated: the first is the registration photo, the "+
		"others a gallery; each image's main face gets \"match\" against the best of them", func(v string) error {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				enroll = append(enroll, p)
			}
		}
		return nil
	})
	names := fs.String("analyzers", strings.Join(analyze.ImageAnalyzers, ","), "analyzers to run, in order")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageError{errors.New("no files: proctor analyze image [--enroll REF.jpg[,MORE.jpg...]] FILE...")}
	}
	set, err := analyzers.NewSet(analyze.ImageConfig(*names))
	if err != nil {
		return err
	}
	defer set.Close()
	enrolled, err := analyze.Enroll(ctx, set, enroll)
	switch {
	case errors.Is(err, analyze.ErrNoEnroller):
		return usageError{errors.New("--enroll needs the identity analyzer (and faces, landmarks before it) in --analyzers")}
	case err != nil:
		return fmt.Errorf("--enroll %w", err)
	}
	enc := json.NewEncoder(os.Stdout)
	failed := 0
	for _, path := range fs.Args() {
		obs, err := analyze.Image(ctx, set, path, analyzers.FrameMeta{Camera: *camera, Enrolled: enrolled})
		if err != nil {
			fmt.Fprintf(os.Stderr, "proctor analyze: %s: %v\n", path, err)
			failed++
			continue
		}
		if err := enc.Encode(analyze.ImageResult{File: path, Observation: obs}); err != nil {
			return err
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d file(s) could not be analysed", failed, fs.NArg())
	}
	return nil
}

// listModels prints the built-in models and, when the database opens, the registered model versions.
func listModels(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("models list", flag.ContinueOnError)
	var sf serviceFlags
	sf.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	list, err := models.List()
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MODEL\tVERSION\tTASK\tLICENCE\tSOURCE\tSHA256\tSTATUS")
	for _, s := range list {
		status := "ok"
		if !s.Verified {
			status = s.Problem
		}
		m := s.Manifest
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s:%s\t%s…\t%s\n", m.Name, m.Version, m.Task, m.Licence,
			m.Source.Registry, m.Source.Package, m.SHA256[:12], status)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return printModelVersions(ctx, sf)
}
