package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"proctor/analyzers"
	"proctor/pipeline"
	"proctor/rules"
	"proctor/store"
	"proctor/worker"
)

// videoFlag is one line of `proctor analyze video`. Offsets are ms from the video's first frame;
// start_ms/end_ms are wall-clock (ms since epoch) when --start was given.
type videoFlag struct {
	Type             string  `json:"type"`
	Severity         string  `json:"severity"`
	Camera           string  `json:"camera"`
	StartOffsetMs    int64   `json:"start_offset_ms"`
	EndOffsetMs      int64   `json:"end_offset_ms"`
	StartMs          int64   `json:"start_ms,omitempty"`
	EndMs            int64   `json:"end_ms,omitempty"`
	Confidence       float64 `json:"confidence"`
	EvidenceOffsetMs int64   `json:"evidence_offset_ms"`
	Details          string  `json:"details,omitempty"`
}

// noStartBase stands in for the wall-clock start when --start is not given: messages need a
// positive capture time, and it is subtracted again before printing.
const noStartBase = int64(1_000_000_000_000)

// runAnalyzeVideo decodes a video locally and runs it through the same frame handler the workers
// run (analyzers, storage, frame rules) on a throwaway SQLite database, then prints the flags.
func runAnalyzeVideo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("analyze video", flag.ContinueOnError)
	fs.SetOutput(stderr)
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
	file := fs.Arg(0)
	info, err := analyzers.ProbeVideo(ctx, file, analyzers.VideoTools{})
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	base := *start
	if base == 0 {
		base = noStartBase
	}

	dir, err := os.MkdirTemp("", "proctor-analyze-video-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	st, err := store.Open(ctx, store.Config{DataDir: dir})
	if err != nil {
		return err
	}
	defer st.Close()
	const sessionID = "video"
	if err := st.EnsureOrganisation(ctx, "local", "local"); err != nil {
		return err
	}
	durSec := int(info.DurationMs/1000) + 1
	if err := st.CreateSession(ctx, &store.Session{ID: sessionID, OrgID: "local", ExamID: "local",
		CandidateID: filepath.Base(file), ScheduledStart: time.UnixMilli(base), DurationSec: durSec, Questions: 1}); err != nil {
		return err
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	frames, err := worker.NewFrameHandlers(analyzers.Config{}, 1, st, rules.New(rules.Config{}), nil, quiet)
	if err != nil {
		return err
	}
	defer frames.Close()

	bar := newProgress(stderr, *showProgress || isTerminal(stderr), info.SampledFrames(*fps), info.DurationMs)
	began := time.Now()
	var n int64
	err = analyzers.SampleVideo(ctx, file, analyzers.SampleOptions{Rate: *fps}, func(f analyzers.VideoFrame) error {
		at := base + f.OffsetMs
		msg := pipeline.EncodeFrame(pipeline.FrameMessage{SessionID: sessionID, Camera: *camera,
			Seq: store.RecordedFrameSeq(at), CapturedAtMs: at, ReceivedAtMs: time.Now().UnixMilli(), JPEG: f.JPEG})
		if err := frames.Handle(ctx, msg); err != nil {
			return fmt.Errorf("frame at %d ms: %w", f.OffsetMs, err)
		}
		n++
		bar.update(n, f.OffsetMs)
		return nil
	})
	bar.done(n)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: no frame could be decoded: the file is damaged", file)
	}
	flags, err := st.SessionFlags(ctx, sessionID)
	if err != nil {
		return err
	}
	out := make([]videoFlag, len(flags))
	for i, f := range flags {
		out[i] = videoFlag{Type: f.Type, Severity: f.Severity, Camera: f.Camera,
			StartOffsetMs: f.StartMs - base, EndOffsetMs: f.EndMs - base, Confidence: f.Confidence,
			EvidenceOffsetMs: f.EvidenceSeq - store.RecordedSeqBase - base, Details: f.Details}
		if *start > 0 {
			out[i].StartMs, out[i].EndMs = f.StartMs, f.EndMs
		}
	}
	elapsed := time.Since(began).Seconds()
	fmt.Fprintf(stderr, "%s: %s %dx%d, %.1f s; %d frames analysed at %.1f fps in %.1f s; %d flag(s)\n",
		file, info.Codec, info.Width, info.Height, float64(info.DurationMs)/1000, n, *fps, elapsed, len(out))
	if *format == "table" {
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "TYPE\tSEVERITY\tCAMERA\tFROM\tTO\tCONFIDENCE")
		for _, f := range out {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%.2f\n", f.Type, f.Severity, f.Camera,
				clock(f.StartOffsetMs), clock(f.EndOffsetMs), f.Confidence)
		}
		return tw.Flush()
	}
	enc := json.NewEncoder(stdout)
	for _, f := range out {
		if err := enc.Encode(f); err != nil {
			return err
		}
	}
	return nil
}

// clock formats an offset as m:ss.mmm.
func clock(ms int64) string {
	return fmt.Sprintf("%d:%02d.%03d", ms/60000, ms/1000%60, ms%1000)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progress is a one-line progress report on stderr, rewritten in place (\r) at most 10 times a
// second, so stdout stays clean JSON.
type progress struct {
	w          io.Writer
	on         bool
	total      int64
	durationMs int64
	began      time.Time
	last       time.Time
}

func newProgress(w io.Writer, on bool, total, durationMs int64) *progress {
	return &progress{w: w, on: on, total: max(total, 1), durationMs: durationMs, began: time.Now()}
}

func (p *progress) update(n, offsetMs int64) {
	if !p.on || time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	p.print(n, offsetMs)
}

func (p *progress) print(n, offsetMs int64) {
	pct := min(100*n/p.total, 100)
	rate := float64(n) / max(time.Since(p.began).Seconds(), 1e-3)
	fmt.Fprintf(p.w, "\ranalyze video: %3d%% %d/%d frames  %s/%s  %.1f frames/s ", pct, n, p.total,
		clock(offsetMs), clock(p.durationMs), rate)
}

func (p *progress) done(n int64) {
	if p.on {
		p.total = max(n, 1)
		p.print(n, p.durationMs)
		fmt.Fprintln(p.w)
	}
}
