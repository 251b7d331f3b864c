package rules

import (
	"fmt"
	"testing"
	"time"

	"proctor/store"
)

// The NO_ROOM_SCAN flag says how many of the scan's turns could not be measured, so a reviewer
// can tell a camera that never turned from a scan the phone filmed too fast to follow.
func TestNoRoomScanCountsUnmeasuredTurns(t *testing.T) {
	start := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	sess := &store.Session{ScheduledStart: start, DurationSec: 1800, CreatedAt: start.Add(-2 * time.Hour)}
	rec := start.Add(-20 * time.Minute)
	// 12 frames 1 s apart: 6 turns of 20° measured, 5 lost.
	var frames []Frame
	for i := range 12 {
		sig := `{"room-scan":{"yaw":20}}`
		switch {
		case i == 0:
			sig = `{}`
		case i%2 == 0:
			sig = `{"room-scan":{"yaw":0,"lost":1}}`
		}
		f, err := parseFrame(store.FrameSignals{Seq: int64(i), CapturedAtMs: rec.Add(time.Duration(i) * time.Second).UnixMilli(), Signals: sig})
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, f)
	}
	v := newTimingView(sess, nil, frames, start.UnixMilli())
	var got *FlagSpec
	for _, f := range New(Config{}).Timing(v) {
		if f.Type == NoRoomScan {
			got = &f
		}
	}
	if got == nil {
		t.Fatal("no NO_ROOM_SCAN for 120° of turning")
	}
	want := map[string]any{"degrees_covered": 120.0, "required_degrees": 300.0, "evidence_frames": 12, "turns_unmeasured": 5}
	if fmt.Sprint(got.Details) != fmt.Sprint(want) {
		t.Errorf("details %v, want %v", got.Details, want)
	}
}
