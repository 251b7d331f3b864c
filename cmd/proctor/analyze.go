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
	if len(args) == 0 || args[0] != "image" {
		return usageError{errors.New("usage: proctor analyze image FILE...")}
	}
	fs := flag.NewFlagSet("analyze image", flag.ContinueOnError)
	camera := fs.String("camera", analyzers.CameraMain, "camera the images come from: main or evidence")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageError{errors.New("no files: proctor analyze image FILE...")}
	}
	set, err := analyzers.NewSet(analyzers.Config{})
	if err != nil {
		return err
	}
	defer set.Close()
	enc := json.NewEncoder(os.Stdout)
	failed := 0
	for _, path := range fs.Args() {
		obs, err := analyzeFile(ctx, set, path, *camera)
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

func analyzeFile(ctx context.Context, set *analyzers.Set, path, camera string) (analyzers.Observation, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return analyzers.Observation{}, err
	}
	if _, _, err := analyzers.ValidateJPEG(data); errors.Is(err, analyzers.ErrNotJPEG) {
		// Not a JPEG: decode it with Go's own (memory-safe) decoders and re-encode, so OpenCV
		// only ever sees validated JPEG bytes.
		img, format, derr := image.Decode(bytes.NewReader(data))
		if derr != nil {
			return analyzers.Observation{}, fmt.Errorf("not a JPEG or PNG image: %v", derr)
		}
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 95}); err != nil {
			return analyzers.Observation{}, fmt.Errorf("re-encode %s: %v", format, err)
		}
		data = buf.Bytes()
	}
	return set.AnalyzeJPEG(ctx, data, camera)
}

func runModels(args []string) error {
	if len(args) == 0 || args[0] != "list" {
		return usageError{errors.New("usage: proctor models list")}
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
	return tw.Flush()
}
