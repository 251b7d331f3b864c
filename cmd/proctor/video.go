package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"os"

	"proctor/analyzers"
	"proctor/internal/analyze"
)

// runAnalyzeVideo: proctor analyze video [flags] FILE (internal/analyze.Video does the work).
func runAnalyzeVideo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("analyze video", flag.ContinueOnError)
	camera := fs.String("camera", analyzers.CameraMain, "camera that recorded the video: main or evidence")
	fps := fs.Float64("fps", 1, "frames per second of video to analyse (the rate live frames are posted at)")
	start := fs.Int64("start", 0, "wall-clock time of the first frame, ms since epoch: flags then also carry start_ms/end_ms")
	showProgress := fs.Bool("progress", false, "show the progress line on stderr even when it is not a terminal")
	format := fs.String("format", "json", "json (one line per flag) or table")
	if err := parse(fs, args); err != nil {
		return err
	}
	switch {
	case fs.NArg() != 1:
		return usageError{errors.New("usage: proctor analyze video [--camera main|evidence] [--fps 1] [--start MS] [--progress] [--format json|table] FILE")}
	case *camera != analyzers.CameraMain && *camera != analyzers.CameraEvidence:
		return usageError{errors.New("--camera must be main or evidence")}
	case *fps <= 0 || *fps > 30:
		return usageError{errors.New("--fps must be above 0 and at most 30")}
	case *start < 0:
		return usageError{errors.New("--start must be ms since epoch")}
	case *format != "json" && *format != "table":
		return usageError{errors.New("--format must be json or table")}
	}
	rep, err := analyze.Video(ctx, fs.Arg(0), analyze.VideoOptions{Camera: *camera, FPS: *fps, StartMs: *start,
		Log: stderr, Progress: *showProgress || isTerminal(stderr)})
	if err != nil {
		return err
	}
	if *format == "table" {
		return rep.WriteTable(stdout)
	}
	return rep.WriteJSON(stdout)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
