package worker

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"image"
	"image/color"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"gocv.io/x/gocv"

	"proctor/internal/testdb"
	"proctor/pipeline"
	"proctor/store"
)

// sendRecorder is a pipeline.Sender that keeps what it was given and can fail on demand.
type sendRecorder struct {
	mu     sync.Mutex
	msgs   map[string][]kafka.Message
	failAt int // fail the Send that would bring the frame count past this (0: never)
	frames int
}

func (s *sendRecorder) Send(_ context.Context, topic string, msgs ...kafka.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if strings.HasSuffix(topic, "frames") {
		if s.failAt > 0 && s.frames+len(msgs) > s.failAt {
			return errors.New("broker unreachable")
		}
		s.frames += len(msgs)
	}
	if s.msgs == nil {
		s.msgs = map[string][]kafka.Message{}
	}
	s.msgs[topic] = append(s.msgs[topic], msgs...)
	return nil
}

// writeClip writes a 6 s MJPG AVI at 5 fps (one colour per second), with a 6 s 16 kHz tone as
// its audio track when ffmpeg is installed. It returns the file's bytes.
func writeClip(t *testing.T, dir string) (data []byte, withAudio bool) {
	t.Helper()
	video := filepath.Join(dir, "clip.avi")
	w, err := gocv.VideoWriterFile(video, "MJPG", 5, 160, 120, true)
	if err != nil || !w.IsOpened() {
		t.Fatalf("video writer: %v", err)
	}
	img := gocv.NewMatWithSize(120, 160, gocv.MatTypeCV8UC3)
	for i := range 30 {
		img.SetTo(gocv.NewScalar(float64(i/5*40), 90, 200, 0))
		gocv.PutText(&img, strconv.Itoa(i), image.Pt(20, 80), gocv.FontHersheyPlain, 3, color.RGBA{255, 255, 255, 0}, 2)
		if err := w.Write(img); err != nil {
			t.Fatal(err)
		}
	}
	img.Close()
	w.Close()
	out := video
	if _, err := exec.LookPath("ffmpeg"); err == nil {
		pcm := make([]byte, 2*6*16000)
		for i := range 6 * 16000 {
			binary.LittleEndian.PutUint16(pcm[2*i:], uint16(int16(6000*math.Sin(2*math.Pi*300*float64(i)/16000))))
		}
		raw := filepath.Join(dir, "tone.raw")
		if err := os.WriteFile(raw, pcm, 0o644); err != nil {
			t.Fatal(err)
		}
		out = filepath.Join(dir, "clip-audio.avi")
		if b, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-i", video, "-f", "s16le", "-ar", "16000", "-ac", "1",
			"-i", raw, "-c:v", "copy", "-c:a", "pcm_s16le", out).CombinedOutput(); err != nil {
			t.Fatalf("mux audio: %v %s", err, b)
		}
		withAudio = true
	} else {
		t.Log("ffmpeg not installed: audio part skipped")
	}
	data, err = os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return data, withAudio
}

// queueRecording stores data as an uploaded, checksum-verified recording of a new session.
func queueRecording(t *testing.T, st *store.Store, dir string, data []byte, camera string, startedAt int64) *store.Recording {
	t.Helper()
	ctx := context.Background()
	sess := &store.Session{OrgID: "org-rec", ExamID: "e", CandidateID: "c", ScheduledStart: time.UnixMilli(startedAt),
		DurationSec: 600, Questions: 1}
	if err := st.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	rec := &store.Recording{SessionID: sess.ID, Camera: camera, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(data)),
		ContentType: "video/x-msvideo", StartedAtMs: startedAt, Status: store.RecordingVerifying, Received: int64(len(data)),
		UploadedAt: time.Now().UnixMilli()}
	if _, _, err := st.CreateRecording(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(store.RecordingPath(dir, rec.ID), data, 0o640); err != nil {
		t.Fatal(err)
	}
	return rec
}

func newTestProcessor(st *store.Store, dir string, out pipeline.Sender) *RecordingProcessor {
	cfg := RecordingConfig{Dir: dir, AudioChunk: 2 * time.Second, Batch: 2}
	return NewRecordingProcessor(cfg, st, out, pipeline.Topics{Frames: "t.frames", Audio: "t.audio"}, slog.New(slog.DiscardHandler))
}

// runUntilIdle runs p until it finds nothing to do and returns the last error.
func runUntilIdle(t *testing.T, p *RecordingProcessor) error {
	t.Helper()
	var last error
	for range 10 {
		did, err := p.RunOnce(context.Background())
		if err != nil {
			last = err
		}
		if !did {
			return last
		}
	}
	t.Fatal("processor never went idle")
	return nil
}

func frameTimes(t *testing.T, msgs []kafka.Message) []int64 {
	t.Helper()
	var out []int64
	for _, m := range msgs {
		f, err := pipeline.DecodeFrame(m)
		if err != nil {
			t.Fatal(err)
		}
		if f.Seq != store.RecordedFrameSeq(f.CapturedAtMs) {
			t.Errorf("frame at %d has seq %d, want %d", f.CapturedAtMs, f.Seq, store.RecordedFrameSeq(f.CapturedAtMs))
		}
		out = append(out, f.CapturedAtMs)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func TestRecordingProcessor(t *testing.T) {
	dir := t.TempDir()
	data, withAudio := writeClip(t, dir)
	for _, b := range testdb.Open(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			st := b.Store
			t0 := time.Now().Add(-time.Hour).Truncate(time.Second).UnixMilli()
			rec := queueRecording(t, st, dir, data, "main", t0)
			// Live frames at 2.0 s and 3.1 s and live audio over 1–3 s arrived before the upload.
			for i, at := range []int64{t0 + 2000, t0 + 3100} {
				if _, err := store.InsertFrameResult(st.DB, &store.FrameResult{SessionID: rec.SessionID, Camera: "main",
					Seq: int64(i), CapturedAtMs: at}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := store.InsertAudioChunk(st.DB, &store.AudioChunk{SessionID: rec.SessionID, Seq: 0,
				CapturedAtMs: t0 + 1000, DurationMs: 2000, SampleRate: 16000}); err != nil {
				t.Fatal(err)
			}
			out := &sendRecorder{}
			if err := runUntilIdle(t, newTestProcessor(st, dir, out)); err != nil {
				t.Fatal(err)
			}
			got, err := st.GetRecording(ctx, rec.SessionID, rec.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != store.RecordingDone || got.FramesSent != 4 || got.DuplicatesSkipped != 2 || got.FramesTotal != 6 {
				t.Fatalf("recording %s: sent %d, duplicates %d, total %d (%s); want done, 4, 2, 6",
					got.Status, got.FramesSent, got.DuplicatesSkipped, got.FramesTotal, got.Error)
			}
			// The frames at 2 s and 3 s were received live; the others carry the video's own times.
			if want := []int64{t0, t0 + 1000, t0 + 4000, t0 + 5000}; !equalInts(frameTimes(t, out.msgs["t.frames"]), want) {
				t.Errorf("frames at %v, want %v", frameTimes(t, out.msgs["t.frames"]), want)
			}
			if !withAudio {
				if got.Note == "" {
					t.Error("no note about the skipped audio")
				}
				return
			}
			// Audio in 2 s chunks: 0–1 s (1–2 s was live), 3–4 s (2–3 s was live), 4–6 s.
			type part struct{ seq, at, ms int64 }
			var parts []part
			for _, m := range out.msgs["t.audio"] {
				a, err := pipeline.DecodeAudio(m)
				if err != nil {
					t.Fatal(err)
				}
				parts = append(parts, part{a.Seq - store.RecordedSeqBase, a.CapturedAtMs - t0, int64(len(a.PCM)/2) * 1000 / int64(a.SampleRate)})
			}
			slot := t0 / 2000
			want := []part{{slot, 0, 1000}, {slot + 1, 3000, 1000}, {slot + 2, 4000, 2000}}
			if len(parts) != len(want) {
				t.Fatalf("audio parts %v, want %v", parts, want)
			}
			for i := range want {
				if parts[i] != want[i] {
					t.Errorf("audio part %d = %+v, want %+v", i, parts[i], want[i])
				}
			}
			if got.AudioChunksSent != 3 || got.AudioSkippedMs != 2000 {
				t.Errorf("audio: %d chunks, %d ms skipped; want 3 and 2000", got.AudioChunksSent, got.AudioSkippedMs)
			}
		})
	}
}

func equalInts(a, b []int64) bool {
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

// TestRecordingResumesAfterFailure: a worker that loses Kafka mid-file gives its claim back with
// its progress saved; the next run (here another worker) continues from there and every frame
// is produced exactly once. A worker that dies without a word is replaced once its lease expires.
func TestRecordingResumesAfterFailure(t *testing.T) {
	dir := t.TempDir()
	data, _ := writeClip(t, dir)
	st := testdb.Open(t)[0].Store
	ctx := context.Background()
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second).UnixMilli()
	rec := queueRecording(t, st, dir, data, "evidence", t0)

	out := &sendRecorder{failAt: 3} // the second batch of 2 frames fails
	first := newTestProcessor(st, dir, out)
	if did, err := first.RunOnce(ctx); !did || err == nil {
		t.Fatalf("first run: did %v err %v, want a transient error", did, err)
	}
	mid, _ := st.GetRecording(ctx, rec.SessionID, rec.ID)
	if mid.Status != store.RecordingProcessing || mid.FramesSent != 2 || mid.FramePosMs == 0 {
		t.Fatalf("after the failure: %s, %d sent, position %d", mid.Status, mid.FramesSent, mid.FramePosMs)
	}
	out.failAt = 0
	second := newTestProcessor(st, dir, out)
	second.now = func() time.Time { return time.Now().Add(10 * time.Second) } // past the retry pause
	if err := runUntilIdle(t, second); err != nil {
		t.Fatal(err)
	}
	done, _ := st.GetRecording(ctx, rec.SessionID, rec.ID)
	// An evidence recording's start (the room scan) is sampled at ScanRate, 5 fps: the clip's
	// every frame, each once across the two runs.
	var want []int64
	for ms := int64(0); ms < 6000; ms += 200 {
		want = append(want, t0+ms)
	}
	if got := frameTimes(t, out.msgs["t.frames"]); done.Status != store.RecordingDone || !equalInts(got, want) {
		t.Fatalf("status %s (%s); frames %v, want each of %v once", done.Status, done.Error, got, want)
	}
	if done.Note == "" {
		t.Error("evidence recording: no note saying its audio is not analysed")
	}

	// A worker that claims and dies: nobody else may take it until the lease runs out.
	rec2 := queueRecording(t, st, dir, data, "main", t0)
	if r, err := st.ClaimRecording(ctx, "dead-worker", time.Now(), time.Minute); err != nil || r == nil || r.ID != rec2.ID {
		t.Fatalf("claim: %v %v", r, err)
	}
	if did, _ := second.RunOnce(ctx); did {
		t.Fatal("a recording under a live lease was taken")
	}
	second.now = func() time.Time { return time.Now().Add(2 * time.Minute) }
	if err := runUntilIdle(t, second); err != nil {
		t.Fatal(err)
	}
	if r, _ := st.GetRecording(ctx, rec2.SessionID, rec2.ID); r.Status != store.RecordingDone {
		t.Fatalf("after the lease expired: %s %s", r.Status, r.Error)
	}
}

// TestRecordingBadFiles: every kind of bad file ends as failed with a message, never a crash.
func TestRecordingBadFiles(t *testing.T) {
	dir := t.TempDir()
	good, _ := writeClip(t, dir)
	st := testdb.Open(t)[0].Store
	ctx := context.Background()
	t0 := time.Now().Add(-time.Hour).UnixMilli()
	garbled := append([]byte(nil), good...)
	for i := 400; i < len(garbled); i += 5 {
		garbled[i] ^= 0xA5
	}
	cases := []struct {
		name   string
		data   []byte
		mutate func(rec *store.Recording) // after queueing
		msg    string
		start  int64 // started_at; 0: an hour ago
	}{
		{"not a video", []byte("RIFF\x00\x10\x00\x00AVI LIST and then only words, no video at all"), nil, "not a decodable video", 0},
		{"garbled", garbled, nil, "decod", 0},
		{"changed on disk", good, func(rec *store.Recording) {
			os.WriteFile(store.RecordingPath(dir, rec.ID), good[:len(good)-10], 0o640)
		}, "storage lost or changed data", 0},
		{"missing on disk", good, func(rec *store.Recording) { os.Remove(store.RecordingPath(dir, rec.ID)) }, "must share the recordings directory", 0},
		{"crashes workers", good, func(rec *store.Recording) {
			st.DB.Model(&store.Recording{}).Where("id = ?", rec.ID).Update("attempts", 3)
		}, "stopped 3 times", 0},
		// started_at is accepted up to 5 min ahead (clock skew); the 6 s video then ends past it.
		{"ends in the future", good, nil, "in the future", time.Now().Add(4*time.Minute + 58*time.Second).UnixMilli()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := t0
			if tc.start != 0 {
				start = tc.start
			}
			rec := queueRecording(t, st, dir, tc.data, "main", start)
			if tc.mutate != nil {
				tc.mutate(rec)
			}
			out := &sendRecorder{}
			if err := runUntilIdle(t, newTestProcessor(st, dir, out)); err != nil {
				t.Fatal(err)
			}
			got, _ := st.GetRecording(ctx, rec.SessionID, rec.ID)
			if got.Status != store.RecordingFailed || !strings.Contains(got.Error, tc.msg) {
				t.Fatalf("status %s, error %q; want failed mentioning %q", got.Status, got.Error, tc.msg)
			}
			t.Logf("failed: %s", got.Error)
		})
	}
}

func TestLargestGap(t *testing.T) {
	sp := func(a, b int64) store.Span { return store.Span{StartMs: a, EndMs: b} }
	cases := []struct {
		spans    []store.Span
		from, to int64
		want     store.Span
	}{
		{nil, 0, 10, sp(0, 10)},
		{[]store.Span{sp(0, 10)}, 0, 10, sp(0, 0)},
		{[]store.Span{sp(-5, 3)}, 0, 10, sp(3, 10)},
		{[]store.Span{sp(6, 20)}, 0, 10, sp(0, 6)},
		{[]store.Span{sp(2, 3), sp(5, 6)}, 0, 10, sp(6, 10)},
		{[]store.Span{sp(1, 4), sp(2, 3)}, 0, 10, sp(4, 10)},
	}
	for _, c := range cases {
		if got := largestGap(c.spans, c.from, c.to); got != c.want {
			t.Errorf("largestGap(%v, %d, %d) = %v, want %v", c.spans, c.from, c.to, got, c.want)
		}
	}
}
