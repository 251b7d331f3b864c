package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gocv.io/x/gocv"
	"gorm.io/gorm"

	"proctor/analyzers"
	"proctor/internal/composite"
	"proctor/internal/testdb"
	"proctor/pipeline"
	"proctor/rules"
	"proctor/store"
)

// The room scan of an uploaded evidence recording, end to end: a video of the phone turning
// in a room (rendered from a 360° panorama of real dev photos) → RecordingProcessor at its
// default rates → frame messages → FrameHandlers with the real "cameramotion" analyzer →
// stored signals → the room-scan check's timing rule.

// devDataDir is ../shared/data (or $PROCTOR_DEV_DATA); the test skips without it.
func devDataDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("PROCTOR_DEV_DATA")
	if dir == "" {
		dir = filepath.Join("..", "..", "shared", "data")
	}
	if st, err := os.Stat(filepath.Join(dir, "faces")); err != nil || !st.IsDir() {
		t.Skipf("dev data not found at %q (../shared/data or $PROCTOR_DEV_DATA): room-scan recording test skipped", dir)
	}
	return dir
}

const (
	scanW, scanH = 640, 360
	scanFOV      = 70.0 // the analyzer's assumed field of view (RoomScanConfig.FOVDeg)
)

// scanVideo renders an MJPG video at fps frames per second of the evidence phone turning at
// yawAt(t) degrees in a room made of real photos (composite.Pan), seconds long.
func scanVideo(t *testing.T, path string, photos []gocv.Mat, fps, seconds float64, yawAt func(sec float64) float64) {
	t.Helper()
	w, err := gocv.VideoWriterFile(path, "MJPG", fps, scanW, scanH, true)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := composite.Pan(photos, scanW, scanH, scanFOV, fps, seconds, yawAt, w.Write); err != nil {
		t.Fatal(err)
	}
}

// scanPhotos reads the six group photos the room-scan rooms are made of.
func scanPhotos(t *testing.T, data string) []gocv.Mat {
	t.Helper()
	var photos []gocv.Mat
	for i := 1; i <= 6; i++ {
		m := gocv.IMRead(filepath.Join(data, "faces", "multi_person", fmt.Sprintf("group-%d.jpg", i)), gocv.IMReadColor)
		if m.Empty() {
			t.Fatalf("cannot read group-%d.jpg", i)
		}
		t.Cleanup(func() { m.Close() })
		photos = append(photos, m)
	}
	return photos
}

// TestRoomScanFromRecording: an uploaded recording of a full 360° scan (15 s, 24°/s) raises no
// NO_ROOM_SCAN; a half scan (180°) raises it, with the degrees it measured. The same holds for
// frames 1 s apart, as a recording filmed at 1 fps gives (25° or 37.5° between frames): where
// the phase correlation of such a pair fails, matched corners measure the turn.
func TestRoomScanFromRecording(t *testing.T) {
	data := devDataDir(t)
	photos := scanPhotos(t, data)
	dir := t.TempDir()
	video := func(name string, fps float64, track func(float64) float64) string {
		path := filepath.Join(dir, name+".avi")
		scanVideo(t, path, photos, fps, 25, track)
		return path
	}
	full := video("full", 10, composite.Turn(3, 15, 375)) // a little past 360, as people do
	fast := video("fast", 10, composite.Turn(3, 10, 375)) // 37.5°/s
	half := video("half", 10, composite.Turn(3, 8, 180))
	full1, half1 := video("full-1fps", 1, composite.Turn(3, 15, 375)), video("half-1fps", 1, composite.Turn(3, 8, 180))
	cases := []struct {
		name     string
		video    string
		scanRate float64
		flagged  bool
	}{
		{"full scan in 15 s", full, 0, false},
		{"full scan in 10 s", fast, 0, false},
		{"half scan", half, 0, true},
		{"full scan in 10 s, sampled at 1 fps throughout", fast, 1, false},
		{"half scan, sampled at 1 fps throughout", half, 1, true},
		{"full scan in 15 s, filmed at 1 fps", full1, 0, false},
		{"half scan, filmed at 1 fps", half1, 0, true},
	}
	for _, b := range testdb.Open(t) {
		for _, tc := range cases {
			t.Run(b.Name+"/"+tc.name, func(t *testing.T) {
				ctx := context.Background()
				bytes, err := os.ReadFile(tc.video)
				if err != nil {
					t.Fatal(err)
				}
				startedAt := time.Now().Add(-2 * time.Hour).Truncate(time.Second).UnixMilli()
				rec := queueRecording(t, b.Store, dir, bytes, analyzers.CameraEvidence, startedAt)
				out := &sendRecorder{}
				p := NewRecordingProcessor(RecordingConfig{Dir: dir, ScanRate: tc.scanRate}, b.Store, out,
					pipeline.Topics{Frames: "t.frames", Audio: "t.audio"}, slog.New(slog.DiscardHandler))
				if err := runUntilIdle(t, p); err != nil {
					t.Fatal(err)
				}
				msgs := out.msgs["t.frames"]
				h, err := NewFrameHandlers(analyzers.Config{Analyzers: []string{"cameramotion"}}, 1, b.Store,
					rules.New(rules.Config{}), nil, slog.New(slog.DiscardHandler))
				if err != nil {
					t.Fatal(err)
				}
				defer h.Close()
				for i := 0; i < len(msgs); i += 16 {
					if err := h.HandleBatch(ctx, msgs[i:min(i+16, len(msgs))]); err != nil {
						t.Fatal(err)
					}
				}
				eng := rules.New(rules.Config{})
				if err := b.Store.DB.Transaction(func(tx *gorm.DB) error {
					return eng.ApplyTiming(tx, rec.SessionID, time.Now())
				}); err != nil {
					t.Fatal(err)
				}
				flags, err := b.Store.SessionFlags(ctx, rec.SessionID)
				if err != nil {
					t.Fatal(err)
				}
				var scan *store.Flag
				for i := range flags {
					if flags[i].Type == rules.NoRoomScan {
						scan = &flags[i]
					}
				}
				// The coverage the rule saw, from the stored signals.
				rows, err := store.CameraFrames(b.Store.DB, rec.SessionID, analyzers.CameraEvidence)
				if err != nil {
					t.Fatal(err)
				}
				var heading, lo, hi float64
				for _, r := range rows {
					var sig map[string]map[string]float64
					if err := json.Unmarshal([]byte(r.Signals), &sig); err != nil {
						t.Fatal(err)
					}
					heading += sig["room-scan"]["yaw"]
					lo, hi = min(lo, heading), max(hi, heading)
				}
				covered := fmt.Sprintf("%.1f°", hi-lo)
				t.Logf("%s: %d frames analysed, coverage %s, NO_ROOM_SCAN raised: %v", tc.name, len(msgs), covered, scan != nil)
				if (scan != nil) != tc.flagged {
					t.Errorf("%s: NO_ROOM_SCAN raised = %v, want %v (coverage %s)", tc.name, scan != nil, tc.flagged, covered)
				}
			})
		}
	}
}
