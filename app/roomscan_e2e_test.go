package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"proctor/analyzers"
	"proctor/internal/composite"
	"proctor/internal/platform"
	"proctor/rules"
	"proctor/store"
)

// TestRoomScanLiveFrames: the evidence phone posts live frames at 1 frame/s while it scans the
// room (rendered from a 360° panorama of real dev photos, composite.Pan). A full scan in 15 s
// (25° between frames, too far apart for the phase correlation alone) raises no NO_ROOM_SCAN; a
// half scan raises it once, with the degrees it measured. HTTP → Kafka → the cameramotion
// analyzer → stored signals → the timing rules' scheduler.
func TestRoomScanLiveFrames(t *testing.T) {
	portrait, err := os.ReadFile(filepath.Join("..", "..", "shared", "data", "faces", "identities", "obama", "obama.jpg"))
	if err != nil {
		t.Skipf("dev photo unavailable (%v): the dev data lives in ../shared/data, not in the project", err)
	}
	var photos []gocv.Mat
	for i := 1; i <= 6; i++ {
		m := gocv.IMRead(filepath.Join("..", "..", "shared", "data", "faces", "multi_person", fmt.Sprintf("group-%d.jpg", i)), gocv.IMReadColor)
		if m.Empty() {
			t.Skip("dev photos unavailable: the dev data lives in ../shared/data, not in the project")
		}
		defer m.Close()
		photos = append(photos, m)
	}
	frames := func(degrees, turnSec float64) [][]byte {
		var out [][]byte
		err := composite.Pan(photos, 640, 360, 70, 1, 25, composite.Turn(3, turnSec, degrees), func(f gocv.Mat) error {
			buf, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, f, []int{gocv.IMWriteJpegQuality, 85})
			if err != nil {
				return err
			}
			out = append(out, append([]byte(nil), buf.GetBytes()...))
			buf.Close()
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	scans := []struct {
		name    string
		frames  [][]byte
		flagged bool
	}{
		{"full scan, 375° in 15 s", frames(375, 15), false},
		{"half scan, 180° in 8 s", frames(180, 8), true},
	}
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			a := startApp(t, b, func(c *Config) {
				c.Analyzers = analyzers.Config{Analyzers: []string{"cameramotion"}}
				// The scan is judged 30 s after the first evidence frame, so the test need not
				// wait the default 5 min.
				c.Rules = rules.Config{Settings: rules.Params{rules.SettingScanWithin: 0.5}}
			})
			ingestKey, reviewKey := keys(t, a, "org-scan")
			plat, rev := platform.New(a.URL, ingestKey), platform.New(a.URL, reviewKey)
			// The exam starts later; the frames were captured a minute ago, so the scan's
			// window has closed by the time they are stored.
			start := time.Now().Add(30 * time.Minute).Truncate(time.Second)
			captured := time.Now().Add(-time.Minute).Truncate(time.Second)
			ids := make([]string, len(scans))
			for i, sc := range scans {
				sess, err := plat.CreateSession(ctx, platform.NewSession{ExamID: "exam-scan", CandidateID: fmt.Sprint("cand-", i),
					ScheduledStart: start, DurationSec: 1800, Questions: 3, Photo: portrait})
				if err != nil {
					t.Fatal(err)
				}
				ids[i] = sess.ID
				for j, jpeg := range sc.frames {
					if code, err := plat.PostFrame(ctx, sess.ID, analyzers.CameraEvidence, int64(j), captured.Add(time.Duration(j)*time.Second), jpeg); err != nil || code != http.StatusAccepted {
						t.Fatalf("%s: evidence frame %d: %d %v", sc.name, j, code, err)
					}
				}
			}
			for i, sc := range scans {
				if _, err := rev.WaitFramesProgress(ctx, ids[i], int64(len(sc.frames)), stallLimit); err != nil {
					t.Fatal(err)
				}
			}
			// Every frame is stored; each marked its session for a timing check. Wait until the
			// scheduler has run that check: it then sets the next one to a deadline minutes
			// ahead (or none), past the 2 s debounce and the 1 min claim.
			stored := time.Now()
			for i, sc := range scans {
				deadline := time.Now().Add(stallLimit)
				for {
					var s store.Session
					if err := a.Store.DB.Select("next_check_at_ms").Take(&s, "id = ?", ids[i]).Error; err != nil {
						t.Fatal(err)
					}
					if s.NextCheckAtMs == 0 || s.NextCheckAtMs > stored.Add(2*time.Minute).UnixMilli() {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("%s: the timing check did not run within %v (next check at %d)", sc.name, stallLimit, s.NextCheckAtMs)
					}
					time.Sleep(200 * time.Millisecond)
				}
				detail, err := rev.Session(ctx, ids[i])
				if err != nil {
					t.Fatal(err)
				}
				var scan []store.Flag
				for _, f := range detail.Flags {
					if f.Type == rules.NoRoomScan {
						scan = append(scan, f)
					}
				}
				var details struct {
					Covered    float64 `json:"degrees_covered"`
					Frames     int     `json:"evidence_frames"`
					Unmeasured int     `json:"turns_unmeasured"`
				}
				if len(scan) == 1 {
					if err := json.Unmarshal([]byte(scan[0].Details), &details); err != nil {
						t.Fatal(err)
					}
				}
				t.Logf("%s: %d NO_ROOM_SCAN (degrees covered %.1f, %d evidence frames, %d turns unmeasured)",
					sc.name, len(scan), details.Covered, details.Frames, details.Unmeasured)
				switch {
				case !sc.flagged && len(scan) != 0:
					t.Errorf("%s: NO_ROOM_SCAN raised (degrees covered %.1f), want none", sc.name, details.Covered)
				case sc.flagged && len(scan) != 1:
					t.Errorf("%s: %d NO_ROOM_SCAN, want 1", sc.name, len(scan))
				case sc.flagged && (details.Covered < 160 || details.Covered > 200):
					t.Errorf("%s: degrees covered %.1f, want about 180", sc.name, details.Covered)
				case sc.flagged && (details.Frames != len(sc.frames) || details.Unmeasured > details.Frames/2):
					t.Errorf("%s: %d evidence frames (want %d), %d turns unmeasured", sc.name, details.Frames, len(sc.frames), details.Unmeasured)
				}
			}
		})
	}
}
