package analyzers

import (
	"context"
	"encoding/binary"
	"errors"
	"image"
	"image/color"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"gocv.io/x/gocv"
)

// writeTestVideo writes an MJPG AVI of n frames at fps, each frame showing its index.
func writeTestVideo(t *testing.T, path string, n int, fps float64) {
	t.Helper()
	w, err := gocv.VideoWriterFile(path, "MJPG", fps, 320, 240, true)
	if err != nil || !w.IsOpened() {
		t.Fatalf("video writer: %v", err)
	}
	defer w.Close()
	img := gocv.NewMatWithSize(240, 320, gocv.MatTypeCV8UC3)
	defer img.Close()
	for i := range n {
		img.SetTo(gocv.NewScalar(float64(i*7%255), 80, 160, 0))
		gocv.PutText(&img, strconv.Itoa(i), image.Pt(40, 140), gocv.FontHersheyPlain, 6, color.RGBA{255, 255, 255, 0}, 4)
		if err := w.Write(img); err != nil {
			t.Fatal(err)
		}
	}
}

func sample(t *testing.T, path string, opt SampleOptions) []VideoFrame {
	t.Helper()
	var out []VideoFrame
	err := SampleVideo(context.Background(), path, opt, func(f VideoFrame) error {
		if _, _, err := ValidateJPEG(f.JPEG); err != nil {
			t.Errorf("frame at %d ms: %v", f.OffsetMs, err)
		}
		out = append(out, f)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func offsets(frames []VideoFrame) []int64 {
	out := make([]int64, len(frames))
	for i, f := range frames {
		out[i] = f.OffsetMs
	}
	return out
}

func TestSampleVideo(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "v.avi")
	writeTestVideo(t, path, 90, 30) // 3 s at 30 fps
	info, err := ProbeVideo(context.Background(), path, VideoTools{})
	if err != nil {
		t.Fatal(err)
	}
	if info.Width != 320 || info.Height != 240 || math.Abs(info.FPS-30) > 0.01 || info.Frames != 90 || info.HasAudio {
		t.Errorf("probe: %+v", info)
	}
	if n := info.SampledFrames(1); n != 3 {
		t.Errorf("SampledFrames(1) = %d, want 3", n)
	}
	got := offsets(sample(t, path, SampleOptions{Rate: 1}))
	if want := []int64{0, 1000, 2000}; !equal(got, want) {
		t.Errorf("1 fps offsets %v, want %v", got, want)
	}
	frames := sample(t, path, SampleOptions{Rate: 2})
	if want := []int64{0, 500, 1000, 1500, 2000, 2500}; !equal(offsets(frames), want) {
		t.Errorf("2 fps offsets %v, want %v", offsets(frames), want)
	}
	// The start sampled densely (the evidence phone's room scan), then the normal rate.
	opt := SampleOptions{Rate: 1, DenseRate: 5, DenseUntilMs: 1000}
	if got, want := offsets(sample(t, path, opt)), []int64{0, 200, 400, 600, 800, 1000, 2000}; !equal(got, want) {
		t.Errorf("dense start: offsets %v, want %v", got, want)
	}
	if n := info.SampledFramesDense(1, 5, 1000); n != 7 {
		t.Errorf("SampledFramesDense(1, 5, 1000) = %d, want 7", n)
	}
	// Resuming at a frame's NextMs yields exactly the frames after it.
	resumed := offsets(sample(t, path, SampleOptions{Rate: 2, FromMs: frames[2].NextMs}))
	if want := []int64{1500, 2000, 2500}; !equal(resumed, want) {
		t.Errorf("resumed from %d: offsets %v, want %v", frames[2].NextMs, resumed, want)
	}
	// Frames are scaled to MaxSide.
	small := sample(t, path, SampleOptions{Rate: 1, MaxSide: 160})
	if w, h, _ := ValidateJPEG(small[0].JPEG); w != 160 || h != 120 {
		t.Errorf("MaxSide 160: frame is %dx%d", w, h)
	}
	// A consumer error stops sampling and comes back.
	stop := errors.New("stop")
	if err := SampleVideo(context.Background(), path, SampleOptions{}, func(VideoFrame) error { return stop }); err != stop {
		t.Errorf("yield error: got %v", err)
	}
}

func equal(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestProbeRejectsBadFiles: nothing that is not a decodable video reaches OpenCV's decoder, and
// none of them crashes the process.
func TestProbeRejectsBadFiles(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.avi")
	writeTestVideo(t, good, 30, 10)
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	garbled := append([]byte(nil), data...)
	for i := 300; i < len(garbled); i += 7 {
		garbled[i] ^= 0x5A
	}
	cases := map[string][]byte{
		"empty":         nil,
		"text":          []byte("this is not a video at all, just some words in a file"),
		"jpeg":          data[len(data)/2:],
		"header only":   data[:200],
		"garbled":       garbled,
		"riff not avi":  append([]byte("RIFF\x10\x00\x00\x00WAVEfmt "), make([]byte, 500)...),
		"half the file": data[:len(data)/2],
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, name+".avi")
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			info, err := ProbeVideo(context.Background(), p, VideoTools{})
			if err != nil {
				if !errors.Is(err, ErrNotVideo) {
					t.Errorf("error %v is not ErrNotVideo", err)
				}
				t.Logf("rejected: %v", err)
				return
			}
			// Accepted (a damaged but readable file): sampling must end without crashing.
			n := 0
			err = SampleVideo(context.Background(), p, SampleOptions{}, func(VideoFrame) error { n++; return nil })
			t.Logf("accepted %+v; sampled %d frames, err %v", info, n, err)
		})
	}
}

func TestExtractAudio(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not installed (scripts/setup.sh installs it)")
	}
	dir := t.TempDir()
	video := filepath.Join(dir, "v.avi")
	writeTestVideo(t, video, 25, 10) // 2.5 s
	// 2.5 s of a 440 Hz tone at 16 kHz.
	pcm := make([]byte, 2*40000)
	for i := range 40000 {
		binary.LittleEndian.PutUint16(pcm[2*i:], uint16(int16(8000*math.Sin(2*math.Pi*440*float64(i)/16000))))
	}
	raw := filepath.Join(dir, "a.raw")
	if err := os.WriteFile(raw, pcm, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "av.avi")
	if b, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-i", video, "-f", "s16le", "-ar", "16000",
		"-ac", "1", "-i", raw, "-c:v", "copy", "-c:a", "pcm_s16le", out).CombinedOutput(); err != nil {
		t.Fatalf("mux: %v %s", err, b)
	}
	info, err := ProbeVideo(context.Background(), out, VideoTools{})
	if err != nil || !info.HasAudio {
		t.Fatalf("probe: %+v %v", info, err)
	}
	var got []int64
	var total int
	err = ExtractAudio(context.Background(), out, VideoTools{}, time.Second, 0, func(off int64, b []byte) error {
		got = append(got, off)
		total += len(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !equal(got, []int64{0, 1000, 2000}) || total != len(pcm) {
		t.Errorf("chunks at %v, %d bytes; want 0,1000,2000 and %d bytes", got, total, len(pcm))
	}
	got = nil
	if err := ExtractAudio(context.Background(), out, VideoTools{}, time.Second, 1000, func(off int64, b []byte) error {
		got = append(got, off)
		return nil
	}); err != nil || !equal(got, []int64{1000, 2000}) {
		t.Errorf("resume from 1000: %v %v", got, err)
	}
	// A file without an audio track fails with a message.
	if err := ExtractAudio(context.Background(), video, VideoTools{}, time.Second, 0, func(int64, []byte) error { return nil }); err == nil {
		t.Error("no audio track: no error")
	} else {
		t.Logf("no audio track: %v", err)
	}
}

// TestSampleH264 checks sampling and resuming (a seek) on H.264 in MP4, what phones record.
func TestSampleH264(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not installed (scripts/setup.sh installs it)")
	}
	path := filepath.Join(t.TempDir(), "v.mp4")
	if b, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25",
		"-t", "6", "-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-pix_fmt", "yuv420p", path).CombinedOutput(); err != nil {
		t.Fatalf("make mp4: %v %s", err, b)
	}
	// 25 fps: the frame 20 ms before each half second is as close as the one after; the first wins.
	all := sample(t, path, SampleOptions{Rate: 2})
	if want := []int64{0, 480, 1000, 1480, 2000, 2480, 3000, 3480, 4000, 4480, 5000, 5480}; !equal(offsets(all), want) {
		t.Fatalf("offsets %v, want %v", offsets(all), want)
	}
	for _, from := range []int{3, 6, 9} { // between keyframes and on one (every 2 s)
		got := offsets(sample(t, path, SampleOptions{Rate: 2, FromMs: all[from].NextMs}))
		if !equal(got, offsets(all[from+1:])) {
			t.Errorf("resumed after %d ms: %v, want %v", all[from].OffsetMs, got, offsets(all[from+1:]))
		}
	}
}
