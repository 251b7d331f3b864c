package app

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"image/jpeg"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"proctor/analyzers"
	"proctor/internal/platform"
	"proctor/internal/scenario"
	"proctor/rules"
	"proctor/store"
)

var (
	videoOnce sync.Once
	videoData []byte
	videoErr  error
)

// recordedVideo is the scenario's main camera as a 27 s Motion-JPEG AVI at 2 fps, made from the
// sample photos: the candidate 0–10 s, nobody 10–18 s, a group 18–23 s, the candidate 23–27 s.
func recordedVideo(t *testing.T) []byte {
	t.Helper()
	f := sampleFrames(t)
	videoOnce.Do(func() {
		dir, err := os.MkdirTemp("", "proctor-video-")
		if err != nil {
			videoErr = err
			return
		}
		defer os.RemoveAll(dir)
		path := filepath.Join(dir, "main.avi")
		if videoErr = scenario.WriteVideo(path, scenario.RecordingTimeline(f), 2); videoErr == nil {
			videoData, videoErr = os.ReadFile(path)
		}
	})
	if videoErr != nil {
		t.Fatalf("make the test video: %v", videoErr)
	}
	return videoData
}

// brokenBody sends the first cut bytes of data, then fails: the HTTP client drops the connection
// in the middle of the request body, as a phone losing its network does.
type brokenBody struct {
	data []byte
	cut  int
	pos  int
}

func (b *brokenBody) Len() int { return len(b.data) } // the full length goes out as Content-Length

func (b *brokenBody) Read(p []byte) (int, error) {
	if b.pos >= b.cut {
		return 0, errors.New("network lost")
	}
	n := copy(p, b.data[b.pos:b.cut])
	b.pos += n
	return n, nil
}

const chunkSize = 256 << 10

// TestRecordedVideo uploads a whole recording in chunks with one transfer broken mid-chunk and a
// client restart, and checks that its frames are analysed with the video's own timestamps; then
// that frames already received live are recognised and not analysed twice.
func TestRecordedVideo(t *testing.T) {
	data := recordedVideo(t)
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			a := startApp(t, b, func(c *Config) { c.Recordings.Poll = 100 * time.Millisecond })
			org := "org-rec-" + store.NewID()[:6]
			ingestKey, reviewKey := keys(t, a, org)
			plat, rev := platform.New(a.URL, ingestKey), platform.New(a.URL, reviewKey)
			start := time.Now().Add(-40 * time.Minute).Truncate(time.Second)
			newSession := func() *store.Session {
				sess, err := plat.CreateSession(ctx, platform.NewSession{ExamID: "exam-rec", CandidateID: "cand-1",
					ScheduledStart: start, DurationSec: 1800, Questions: 3, Photo: sampleFrames(t).Photo})
				if err != nil {
					t.Fatal(err)
				}
				return sess
			}
			// The recording began 5 min into the exam (wall clock of its first frame).
			videoStart := start.Add(5 * time.Minute)
			spec := platform.RecordingFor(analyzers.CameraMain, "video/x-msvideo", videoStart, data)
			t.Logf("video: %d bytes, %d chunks of %d KiB", len(data), (len(data)+chunkSize-1)/chunkSize, chunkSize>>10)

			t.Run("upload with a broken connection", func(t *testing.T) {
				sess := newSession()
				rec, code, err := plat.CreateRecording(ctx, sess.ID, spec)
				if err != nil || code != http.StatusCreated || rec.Received != 0 || rec.Status != store.RecordingUploading || rec.UploadURL == "" {
					t.Fatalf("create: %d %+v %v", code, rec, err)
				}
				began := time.Now()
				if r, err := plat.PutChunk(ctx, sess.ID, rec.ID, 0, bytes.NewReader(data[:chunkSize])); err != nil || r.Received != chunkSize {
					t.Fatalf("chunk 0: %+v %v", r, err)
				}
				// The second chunk's connection breaks halfway: nothing of it counts.
				if _, err := plat.PutChunk(ctx, sess.ID, rec.ID, chunkSize, &brokenBody{data: data[chunkSize : 2*chunkSize], cut: chunkSize / 2}); err == nil {
					t.Fatal("a transfer cut mid-body succeeded")
				}
				if r, err := plat.Recording(ctx, sess.ID, rec.ID); err != nil || r.Received != chunkSize {
					t.Fatalf("after the broken transfer: %+v %v; want %d bytes received", r, err, chunkSize)
				}
				// The client restarts: creating the same upload again finds it, with its offset.
				again, code, err := plat.CreateRecording(ctx, sess.ID, spec)
				if err != nil || code != http.StatusOK || again.ID != rec.ID || again.Received != chunkSize {
					t.Fatalf("re-create: %d %+v %v", code, again, err)
				}
				// A chunk from the wrong offset is refused with the offset to resume from.
				_, err = plat.PutChunk(ctx, sess.ID, rec.ID, 2*chunkSize, bytes.NewReader(data[2*chunkSize:3*chunkSize]))
				var oe *platform.OffsetError
				if !errors.As(err, &oe) || oe.Offset != chunkSize || !strings.Contains(oe.Message, "resume at offset") {
					t.Fatalf("wrong offset: %v, want 409 with offset %d", err, chunkSize)
				}
				up, err := plat.UploadRecording(ctx, sess.ID, spec, data, chunkSize)
				if err != nil || up.Received != int64(len(data)) {
					t.Fatalf("resume: %+v %v", up, err)
				}
				uploadSecs := time.Since(began).Seconds()
				done, err := plat.WaitRecordingProgress(ctx, sess.ID, rec.ID, stallLimit)
				if err != nil {
					t.Fatal(err)
				}
				procSecs := time.Since(began).Seconds() - uploadSecs
				if done.Status != store.RecordingDone || done.FramesTotal != 27 || done.FramesSent != 27 || done.DuplicatesSkipped != 0 ||
					done.Progress != 1 || !strings.Contains(done.Note, "no audio track") {
					t.Fatalf("recording: %+v; want done, 27 of 27 frames sent, a note on the missing audio", done)
				}
				detail, err := rev.WaitFramesProgress(ctx, sess.ID, 27, stallLimit)
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("upload %.2f s; processed in %.2f s after the last byte", uploadSecs, procSecs)
				checkVideoFlags(t, rev, detail, videoStart)

				tl := struct {
					Recordings []map[string]any `json:"recordings"`
				}{}
				if _, err := rev.Do(ctx, "GET", "/v1/sessions/"+sess.ID+"/timeline", "", nil, &tl); err != nil {
					t.Fatal(err)
				}
				if len(tl.Recordings) != 1 || tl.Recordings[0]["status"] != "done" || tl.Recordings[0]["camera"] != "main" ||
					tl.Recordings[0]["start_ms"] != float64(videoStart.UnixMilli()) || tl.Recordings[0]["progress"] != float64(1) {
					t.Errorf("timeline recordings: %v", tl.Recordings)
				}
				// The upload is complete: more bytes are refused with where it stands.
				if _, err := plat.PutChunk(ctx, sess.ID, rec.ID, int64(len(data)), bytes.NewReader([]byte{1})); !errors.As(err, &oe) || oe.Status != "done" {
					t.Errorf("chunk after completion: %v", err)
				}
			})

			t.Run("frames received live are not analysed twice", func(t *testing.T) {
				sess := newSession()
				// The first 10 s reached the service live (1 fps) before the network dropped.
				shots := scenario.RecordingTimeline(sampleFrames(t))
				for i := range 10 {
					if code, err := plat.PostFrame(ctx, sess.ID, analyzers.CameraMain, int64(i),
						videoStart.Add(time.Duration(i)*time.Second), shots[i].JPEG); err != nil || code != http.StatusAccepted {
						t.Fatalf("live frame %d: %d %v", i, code, err)
					}
				}
				if _, err := rev.WaitFramesProgress(ctx, sess.ID, 10, stallLimit); err != nil {
					t.Fatal(err)
				}
				rec, err := plat.UploadRecording(ctx, sess.ID, spec, data, chunkSize)
				if err != nil {
					t.Fatal(err)
				}
				done, err := plat.WaitRecordingProgress(ctx, sess.ID, rec.ID, stallLimit)
				if err != nil {
					t.Fatal(err)
				}
				if done.Status != store.RecordingDone || done.DuplicatesSkipped != 10 || done.FramesSent != 17 {
					t.Fatalf("recording: %+v; want 10 duplicates skipped and 17 frames sent", done)
				}
				detail, err := rev.WaitFramesProgress(ctx, sess.ID, 27, stallLimit)
				if err != nil {
					t.Fatal(err)
				}
				if detail.Session.Frames != 27 {
					t.Errorf("frames analysed %d, want 27 (10 live + 17 recorded)", detail.Session.Frames)
				}
				checkVideoFlags(t, rev, detail, videoStart)
			})
		})
	}
}

// checkVideoFlags: exactly one FACE_ABSENT over the empty room (10–17 s of the video) and one
// MULTIPLE_FACES over the group (18–22 s), at the video's own times, with JPEG evidence.
func checkVideoFlags(t *testing.T, rev *platform.Client, detail *platform.SessionDetail, videoStart time.Time) {
	t.Helper()
	ctx := context.Background()
	var flags []store.Flag
	deadline := time.Now().Add(30 * time.Second)
	for {
		flags = faceFlags(detail.Flags)
		if len(flags) >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
		d, err := rev.Session(ctx, detail.Session.ID)
		if err != nil {
			t.Fatal(err)
		}
		detail = d
	}
	want := map[string][2]int64{rules.FaceAbsent: {10000, 17000}, rules.MultipleFaces: {18000, 22000}}
	if len(flags) != 2 {
		t.Fatalf("flags %v, want one FACE_ABSENT and one MULTIPLE_FACES", flags)
	}
	for _, fl := range flags {
		w, ok := want[fl.Type]
		delete(want, fl.Type)
		if !ok {
			t.Errorf("unexpected or repeated flag %s", fl.Type)
			continue
		}
		if got := [2]int64{fl.StartMs - videoStart.UnixMilli(), fl.EndMs - videoStart.UnixMilli()}; got != w {
			t.Errorf("%s spans %v ms of the video, want %v", fl.Type, got, w)
		}
		ev, err := rev.Evidence(ctx, fl.ID)
		if err != nil {
			t.Fatalf("evidence of %s: %v", fl.Type, err)
		}
		if _, err := jpeg.DecodeConfig(bytes.NewReader(ev)); err != nil {
			t.Errorf("evidence of %s is not a JPEG: %v", fl.Type, err)
		}
	}
}

// TestRecordingBadInput: every bad upload gets a 4xx or ends as failed with a message; the
// service keeps serving.
func TestRecordingBadInput(t *testing.T) {
	data := recordedVideo(t)
	ctx := context.Background()
	a := startApp(t, backends(t)[0], func(c *Config) {
		c.Recordings.Poll = 100 * time.Millisecond
		c.API.Recordings.MaxChunkBytes = 512 << 10
		c.API.Recordings.MaxBytes = 64 << 20
	})
	ingestKey, _ := keys(t, a, "org-rec-bad")
	otherIngest, _ := keys(t, a, "org-rec-other")
	plat := platform.New(a.URL, ingestKey)
	now := time.Now()
	sess, err := plat.CreateSession(ctx, platform.NewSession{ExamID: "e", CandidateID: "c",
		ScheduledStart: now.Add(-time.Hour), DurationSec: 1800, Questions: 1, Photo: sampleFrames(t).Photo})
	if err != nil {
		t.Fatal(err)
	}
	spec := platform.RecordingFor(analyzers.CameraMain, "video/x-msvideo", now.Add(-50*time.Minute), data)
	jsonOf := func(mut func(m map[string]any)) []byte {
		m := map[string]any{"camera": spec.Camera, "size": spec.Size, "sha256": spec.SHA256,
			"started_at": spec.StartedAt, "content_type": spec.ContentType}
		mut(m)
		return []byte(fmt.Sprintf(`{"camera":%q,"size":%v,"sha256":%q,"started_at":%v,"content_type":%q}`,
			m["camera"], m["size"], m["sha256"], m["started_at"], m["content_type"]))
	}
	base := "/v1/sessions/" + sess.ID + "/recordings"
	cases := []struct {
		name, path string
		body       []byte
		want       int
		msg        string
	}{
		{"unknown session", "/v1/sessions/nope/recordings", jsonOf(func(map[string]any) {}), 404, "unknown session"},
		{"too large", base, jsonOf(func(m map[string]any) { m["size"] = 3 << 30 }), 413, "limit"},
		{"bad camera", base, jsonOf(func(m map[string]any) { m["camera"] = "webcam" }), 400, "camera"},
		{"no checksum", base, jsonOf(func(m map[string]any) { m["sha256"] = "abc" }), 400, "sha256"},
		{"not a video type", base, jsonOf(func(m map[string]any) { m["content_type"] = "image/jpeg" }), 415, "content_type"},
		{"started_at in seconds", base, jsonOf(func(m map[string]any) { m["started_at"] = now.Unix() }), 400, "started_at"},
		{"not JSON", base, []byte("camera=main"), 400, "JSON"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, err := plat.Do(ctx, "POST", tc.path, "application/json", tc.body, nil)
			if code != tc.want || err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("%d %v; want %d mentioning %q", code, err, tc.want, tc.msg)
			}
		})
	}
	rec, _, err := plat.CreateRecording(ctx, sess.ID, spec)
	if err != nil {
		t.Fatal(err)
	}
	put := func(offset int64, body []byte) (int, error) {
		return plat.Do(ctx, "PUT", fmt.Sprintf("%s/%s?offset=%d", base, rec.ID, offset), "application/octet-stream", body, nil)
	}
	t.Run("chunk over the limit", func(t *testing.T) {
		if code, err := put(0, data[:600<<10]); code != 413 || !strings.Contains(err.Error(), "limit") {
			t.Fatalf("%d %v", code, err)
		}
	})
	t.Run("offset mismatch", func(t *testing.T) {
		code, err := put(1000, data[1000:2000])
		var se *platform.StatusError
		if code != 409 || !errors.As(err, &se) || !strings.Contains(se.Message, "resume at offset 0") {
			t.Fatalf("%d %v", code, err)
		}
		// The 409 body carries the offset as a number too.
		_, err = plat.PutChunk(ctx, sess.ID, rec.ID, 1000, bytes.NewReader(data[1000:2000]))
		var oe *platform.OffsetError
		if !errors.As(err, &oe) || oe.Offset != 0 {
			t.Fatalf("%v", err)
		}
	})
	t.Run("no offset", func(t *testing.T) {
		code, err := plat.Do(ctx, "PUT", base+"/"+rec.ID, "application/octet-stream", data[:10], nil)
		if code != 400 || !strings.Contains(err.Error(), "offset") {
			t.Fatalf("%d %v", code, err)
		}
	})
	t.Run("unknown recording", func(t *testing.T) {
		if code, err := plat.Do(ctx, "GET", base+"/nope", "", nil, nil); code != 404 || !strings.Contains(err.Error(), "no recording") {
			t.Fatalf("%d %v", code, err)
		}
	})
	t.Run("other organisation", func(t *testing.T) {
		other := platform.New(a.URL, otherIngest)
		if _, err := other.Recording(ctx, sess.ID, rec.ID); !isStatus(err, 404) {
			t.Fatalf("%v, want 404", err)
		}
	})
	t.Run("live seq in the recorded range", func(t *testing.T) {
		code, err := plat.PostFrame(ctx, sess.ID, "main", store.RecordedSeqBase+5, now, sampleFrames(t).Candidate[0])
		if code != 400 || !strings.Contains(err.Error(), "reserved") {
			t.Fatalf("%d %v", code, err)
		}
	})
	t.Run("wrong checksum", func(t *testing.T) {
		wrong := spec
		sum := sha256.Sum256([]byte("some other file"))
		wrong.SHA256 = hex.EncodeToString(sum[:])
		r, err := plat.UploadRecording(ctx, sess.ID, wrong, data, 256<<10)
		if !isStatus(err, 422) || !strings.Contains(err.Error(), "checksum mismatch") {
			t.Fatalf("%+v %v; want 422 checksum mismatch", r, err)
		}
		got := findRecording(t, a, sess.ID, wrong.SHA256)
		if got.Status != store.RecordingFailed || !strings.Contains(got.Error, "checksum mismatch") {
			t.Fatalf("%+v", got)
		}
		if _, err := os.Stat(store.RecordingPath(a.cfg.Recordings.Dir, got.ID)); !os.IsNotExist(err) {
			t.Errorf("the mismatching file was kept: %v", err)
		}
		// Re-creating it restarts the upload from byte 0.
		again, code, err := plat.CreateRecording(ctx, sess.ID, wrong)
		if err != nil || code != 200 || again.Status != store.RecordingUploading || again.Received != 0 {
			t.Fatalf("restart: %d %+v %v", code, again, err)
		}
	})
	t.Run("not a video", func(t *testing.T) {
		junk := bytes.Repeat([]byte("this is a text file, not a video. "), 2000)
		r, err := plat.UploadRecording(ctx, sess.ID, platform.RecordingFor("evidence", "video/mp4", now.Add(-time.Hour), junk), junk, 256<<10)
		if !isStatus(err, 422) || !strings.Contains(err.Error(), "not a video file") {
			t.Fatalf("%+v %v; want 422 not a video", r, err)
		}
		sum := sha256.Sum256(junk)
		if got := findRecording(t, a, sess.ID, hex.EncodeToString(sum[:])); got.Status != store.RecordingFailed || !strings.Contains(got.Error, "not a video") {
			t.Fatalf("%+v", got)
		}
	})
	t.Run("damaged video", func(t *testing.T) {
		// A real AVI header followed by noise: only the decoder can tell.
		bad := append([]byte(nil), data...)
		for i := 2048; i < len(bad); i += 3 {
			bad[i] ^= 0x5C
		}
		r, err := plat.UploadRecording(ctx, sess.ID, platform.RecordingFor("evidence", "video/x-msvideo", now.Add(-time.Hour), bad), bad, 256<<10)
		if err != nil {
			t.Fatal(err)
		}
		done, err := plat.WaitRecordingProgress(ctx, sess.ID, r.ID, stallLimit)
		if err != nil || done.Status != store.RecordingFailed || done.Error == "" {
			t.Fatalf("%+v %v; want failed with a message", done, err)
		}
		t.Logf("damaged video: %s", done.Error)
	})
	resp, err := http.Get(a.URL + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz after bad input: %v %v", resp, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

func findRecording(t *testing.T, a *App, sessionID, sha string) store.Recording {
	t.Helper()
	var r store.Recording
	if err := a.Store.DB.Where("session_id = ? AND sha256 = ?", sessionID, sha).Take(&r).Error; err != nil {
		t.Fatal(err)
	}
	return r
}
