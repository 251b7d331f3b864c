package app

import (
	"context"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"proctor/analyzers"
	"proctor/internal/platform"
	"proctor/store"
)

// TestRecordingThroughput measures a realistic upload: the scenario looped to LOOPS×27 s of
// 1280×720 H.264 at 30 fps (what a laptop or phone records), uploaded in 4 MiB chunks, then
// decoded, sampled at 1 fps and analysed. Opt-in (it takes a minute):
//
//	PROCTOR_BENCH_RECORDING=1 go test ./app -run TestRecordingThroughput -v
func TestRecordingThroughput(t *testing.T) {
	if os.Getenv("PROCTOR_BENCH_RECORDING") == "" {
		t.Skip("set PROCTOR_BENCH_RECORDING=1 to measure recording upload and processing throughput")
	}
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not installed")
	}
	loops := 10
	if v, err := strconv.Atoi(os.Getenv("LOOPS")); err == nil && v > 0 {
		loops = v
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "main.avi")
	if err := os.WriteFile(src, recordedVideo(t), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "main.mp4")
	cmd := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-stream_loop", strconv.Itoa(loops-1), "-i", src,
		"-vf", "scale=1280:720,fps=30", "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make mp4: %v %s", err, b)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a := startApp(t, backends(t)[0], func(c *Config) { c.Recordings.Poll = 100 * time.Millisecond })
	ingestKey, reviewKey := keys(t, a, "org-bench")
	plat, rev := platform.New(a.URL, ingestKey), platform.New(a.URL, reviewKey)
	start := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	sess, err := plat.CreateSession(ctx, platform.NewSession{ExamID: "bench", CandidateID: "c",
		ScheduledStart: start, DurationSec: 3600, Questions: 1, Photo: sampleFrames(t).Photo})
	if err != nil {
		t.Fatal(err)
	}
	spec := platform.RecordingFor(analyzers.CameraMain, "video/mp4", start, data)
	began := time.Now()
	rec, err := plat.UploadRecording(ctx, sess.ID, spec, data, 4<<20)
	if err != nil {
		t.Fatal(err)
	}
	upload := time.Since(began)
	wctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	done, err := plat.WaitRecording(wctx, sess.ID, rec.ID)
	if err != nil || done.Status != store.RecordingDone {
		t.Fatalf("%+v %v", done, err)
	}
	queued := time.Since(began) - upload
	if _, err := rev.WaitFrames(wctx, sess.ID, done.FramesSent); err != nil {
		t.Fatal(err)
	}
	analysed := time.Since(began) - upload
	video := time.Duration(done.DurationMs) * time.Millisecond
	t.Logf("video: %s of 1280x720 H.264 30 fps, %.1f MB", video, float64(len(data))/1e6)
	t.Logf("upload: %.2f s = %.1f MB/s (4 MiB chunks, fsync each, loopback)", upload.Seconds(), float64(len(data))/1e6/upload.Seconds())
	t.Logf("decode+sample+produce: %d frames (of %d decoded) in %.2f s = %.1f sampled frames/s, %.0f decoded frames/s, %.0fx real time",
		done.FramesSent, int(video.Seconds()*30), queued.Seconds(), float64(done.FramesSent)/queued.Seconds(),
		video.Seconds()*30/queued.Seconds(), video.Seconds()/queued.Seconds())
	t.Logf("until every frame analysed and stored: %.2f s = %.1f frames/s", analysed.Seconds(), float64(done.FramesSent)/analysed.Seconds())

	// Upload alone, on a file big enough to measure: 256 MiB (an MP4 header, then noise that the
	// worker will reject; only the transfer counts here).
	big := make([]byte, 256<<20)
	rand.Read(big)
	copy(big, []byte("\x00\x00\x00\x18ftypmp42"))
	began = time.Now()
	if _, err := plat.UploadRecording(ctx, sess.ID, platform.RecordingFor("evidence", "video/mp4", start, big), big, 4<<20); err != nil {
		t.Fatal(err)
	}
	secs := time.Since(began).Seconds()
	t.Logf("upload 256 MiB: %.2f s = %.0f MB/s (4 MiB chunks, each fsync'd, SHA-256 on the fly, loopback)", secs, float64(len(big))/1e6/secs)

	// The CLI on the same file, for comparison (no Kafka, no HTTP).
	began = time.Now()
	var n int64
	if err := analyzers.SampleVideo(ctx, out, analyzers.SampleOptions{}, func(analyzers.VideoFrame) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	t.Logf("decode+sample only: %d frames in %.2f s (%.0fx real time)", n, time.Since(began).Seconds(), video.Seconds()/time.Since(began).Seconds())
}
