package analyze

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"text/tabwriter"
	"time"

	"proctor/analyzers"
	"proctor/pipeline"
	"proctor/rules"
	"proctor/store"
	"proctor/worker"
)

// VideoFlag is one line of `proctor analyze video`. Offsets are ms from the video's first frame;
// start_ms/end_ms are wall-clock (ms since epoch) when a start was given.
type VideoFlag struct {
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

// VideoOptions configure Video.
type VideoOptions struct {
	// Camera that recorded the video: analyzers.CameraMain or CameraEvidence.
	Camera string
	// FPS is how many frames per second of video are analysed (live frames come at 1).
	FPS float64
	// StartMs is the wall-clock time of the first frame (ms since epoch); 0: unknown, and the
	// flags carry offsets only.
	StartMs int64
	// Log receives the summary line and, with Progress, the progress line (rewritten in place).
	// nil: nothing.
	Log      io.Writer
	Progress bool
}

// VideoReport is what Video found.
type VideoReport struct {
	Info   analyzers.VideoInfo
	Frames int64 // frames analysed
	Flags  []VideoFlag
}

// noStartBase stands in for the wall-clock start when none is given: messages need a positive
// capture time, and it is subtracted again from the flags.
const noStartBase = int64(1_000_000_000_000)

// Video decodes a video locally and runs it through the same frame handler the workers run
// (analyzers, storage, frame rules) on a throwaway SQLite database, and returns the flags.
func Video(ctx context.Context, file string, o VideoOptions) (*VideoReport, error) {
	if o.Log == nil {
		o.Log = io.Discard
	}
	info, err := analyzers.ProbeVideo(ctx, file, analyzers.VideoTools{})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	base := o.StartMs
	if base == 0 {
		base = noStartBase
	}

	st, closeStore, err := store.OpenTemp(ctx, "proctor-analyze-video-")
	if err != nil {
		return nil, err
	}
	defer closeStore()
	const sessionID = "video"
	if err := st.EnsureOrganisation(ctx, "local", "local"); err != nil {
		return nil, err
	}
	durSec := int(info.DurationMs/1000) + 1
	if err := st.CreateSession(ctx, &store.Session{ID: sessionID, OrgID: "local", ExamID: "local",
		CandidateID: filepath.Base(file), ScheduledStart: time.UnixMilli(base), DurationSec: durSec, Questions: 1}); err != nil {
		return nil, err
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	frames, err := worker.NewFrameHandlers(analyzers.Config{}, 1, st, rules.New(rules.Config{}), nil, quiet)
	if err != nil {
		return nil, err
	}
	defer frames.Close()

	bar := newProgress(o.Log, o.Progress, info.SampledFrames(o.FPS), info.DurationMs)
	began := time.Now()
	var n int64
	err = analyzers.SampleVideo(ctx, file, analyzers.SampleOptions{Rate: o.FPS}, func(f analyzers.VideoFrame) error {
		at := base + f.OffsetMs
		msg := pipeline.EncodeFrame(pipeline.FrameMessage{SessionID: sessionID, Camera: o.Camera,
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
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if n == 0 {
		return nil, fmt.Errorf("%s: no frame could be decoded: the file is damaged", file)
	}
	flags, err := st.SessionFlags(ctx, sessionID)
	if err != nil {
		return nil, err
	}
	rep := &VideoReport{Info: info, Frames: n, Flags: make([]VideoFlag, len(flags))}
	for i, f := range flags {
		rep.Flags[i] = VideoFlag{Type: f.Type, Severity: f.Severity, Camera: f.Camera,
			StartOffsetMs: f.StartMs - base, EndOffsetMs: f.EndMs - base, Confidence: f.Confidence,
			EvidenceOffsetMs: f.EvidenceSeq - store.RecordedSeqBase - base, Details: f.Details}
		if o.StartMs > 0 {
			rep.Flags[i].StartMs, rep.Flags[i].EndMs = f.StartMs, f.EndMs
		}
	}
	elapsed := time.Since(began).Seconds()
	fmt.Fprintf(o.Log, "%s: %s %dx%d, %.1f s; %d frames analysed at %.1f fps in %.1f s; %d flag(s)\n",
		file, info.Codec, info.Width, info.Height, float64(info.DurationMs)/1000, n, o.FPS, elapsed, len(rep.Flags))
	return rep, nil
}

// WriteJSON writes one JSON line per flag.
func (r *VideoReport) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	for _, f := range r.Flags {
		if err := enc.Encode(f); err != nil {
			return err
		}
	}
	return nil
}

// WriteTable writes the flags as an aligned table with m:ss.mmm offsets.
func (r *VideoReport) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TYPE\tSEVERITY\tCAMERA\tFROM\tTO\tCONFIDENCE")
	for _, f := range r.Flags {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%.2f\n", f.Type, f.Severity, f.Camera,
			clock(f.StartOffsetMs), clock(f.EndOffsetMs), f.Confidence)
	}
	return tw.Flush()
}

// clock formats an offset as m:ss.mmm.
func clock(ms int64) string {
	return fmt.Sprintf("%d:%02d.%03d", ms/60000, ms/1000%60, ms%1000)
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
