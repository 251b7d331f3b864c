package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/jpeg"
	_ "image/png" // analyze accepts PNG files too; the service itself takes JPEG only
	"os"
	"strings"
	"text/tabwriter"

	"proctor/analyzers"
	"proctor/models"
)

// imageResult is one line of `proctor analyze image`. Field names are stable: other tools read them.
type imageResult struct {
	File string `json:"file"`
	analyzers.Observation
}

func runAnalyze(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "audio" {
		return runAnalyzeAudio(ctx, args[1:])
	}
	if len(args) > 0 && args[0] == "video" {
		return runAnalyzeVideo(ctx, args[1:], os.Stdout, os.Stderr)
	}
	if len(args) == 0 || args[0] != "image" {
		return usageError{errors.New("usage: proctor analyze image FILE... | proctor analyze audio FILE.wav [--questions MS,...] | proctor analyze video FILE [--camera main|evidence] [--fps 1] [--start MS]")}
	}
	fs := flag.NewFlagSet("analyze image", flag.ContinueOnError)
	camera := fs.String("camera", analyzers.CameraMain, "camera the images come from: main or evidence")
	enroll := fs.String("enroll", "", "registration photo: each image's main face gets \"match\" against it")
	names := fs.String("analyzers", strings.Join(imageAnalyzers, ","), "analyzers to run, in order")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageError{errors.New("no files: proctor analyze image [--enroll REF.jpg] FILE...")}
	}
	set, err := analyzers.NewSet(imageConfig(*names))
	if err != nil {
		return err
	}
	defer set.Close()
	enrolled, err := enrollFile(ctx, set, *enroll)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(os.Stdout)
	failed := 0
	for _, path := range fs.Args() {
		obs, err := analyzeFile(ctx, set, path, analyzers.FrameMeta{Camera: *camera, Enrolled: enrolled})
		if err != nil {
			fmt.Fprintf(os.Stderr, "proctor analyze: %s: %v\n", path, err)
			failed++
			continue
		}
		if err := enc.Encode(imageResult{File: path, Observation: obs}); err != nil {
			return err
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d file(s) could not be analysed", failed, fs.NArg())
	}
	return nil
}

func analyzeFile(ctx context.Context, set *analyzers.Set, path string, meta analyzers.FrameMeta) (analyzers.Observation, error) {
	data, err := readImageJPEG(path)
	if err != nil {
		return analyzers.Observation{}, err
	}
	return set.AnalyzeFrameJPEG(ctx, data, meta)
}

// readImageJPEG reads a JPEG or PNG file as JPEG bytes.
func readImageJPEG(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if _, _, err := analyzers.ValidateJPEG(data); errors.Is(err, analyzers.ErrNotJPEG) {
		// Not a JPEG: decode it with Go's own (memory-safe) decoders and re-encode, so OpenCV
		// only ever sees validated JPEG bytes.
		img, format, derr := image.Decode(bytes.NewReader(data))
		if derr != nil {
			return nil, fmt.Errorf("not a JPEG or PNG image: %v", derr)
		}
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 95}); err != nil {
			return nil, fmt.Errorf("re-encode %s: %v", format, err)
		}
		data = buf.Bytes()
	}
	return data, nil
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
