package analyzers

import (
	"context"
	"image"
	"math/rand/v2"
	"testing"
	"time"

	"gocv.io/x/gocv"
)

// TestCameraMotion pans a window across a textured scene: consecutive frames of one session give
// a turn in the pan's direction, a late frame and another session's first frame give none.
func TestCameraMotion(t *testing.T) {
	scene := gocv.NewMatWithSize(480, 1600, gocv.MatTypeCV8UC3)
	defer scene.Close()
	pix, _ := scene.DataPtrUint8()
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range pix {
		pix[i] = uint8(rng.IntN(256))
	}
	gocv.GaussianBlur(scene, &scene, image.Pt(9, 9), 0, 0, gocv.BorderReflect)

	a, err := NewCameraMotion(CameraMotionConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	t0 := time.Unix(1_800_000_000, 0)
	frameAt := func(x int, session string, at time.Time) *float32 {
		crop := scene.Region(image.Rect(x, 0, x+640, 480))
		defer crop.Close()
		img := crop.Clone()
		defer img.Close()
		f := &Frame{Camera: CameraEvidence, Image: img, Width: 640, Height: 480, Session: session, CapturedAt: at}
		var obs Observation
		if err := a.Analyze(context.Background(), f, &obs); err != nil {
			t.Fatal(err)
		}
		return obs.CameraYaw
	}
	if y := frameAt(0, "s1", t0); y != nil {
		t.Fatalf("first frame of a session measured a turn: %v", *y)
	}
	var total float32
	for i := 1; i <= 5; i++ {
		y := frameAt(40*i, "s1", t0.Add(time.Duration(i)*500*time.Millisecond))
		if y == nil || *y <= 0 {
			t.Fatalf("step %d: yaw %v, want a turn to the right", i, y)
		}
		total += *y
	}
	// 200 px of a 640 px frame at a 70° field of view is roughly 20°.
	if total < 12 || total > 30 {
		t.Errorf("5 steps of 40 px turned %.1f°, want about 20°", total)
	}
	if y := frameAt(0, "s1", t0.Add(time.Second)); y != nil {
		t.Errorf("a late frame measured a turn: %v", *y)
	}
	if y := frameAt(0, "s2", t0); y != nil {
		t.Errorf("another session's first frame measured a turn: %v", *y)
	}

	// A still camera measures 0°, and that is a measurement; a jump to an unrelated view (no
	// overlap) is a turn that was not measured: 0° and CameraYawLost.
	other := gocv.NewMatWithSize(480, 640, gocv.MatTypeCV8UC3)
	defer other.Close()
	opix, _ := other.DataPtrUint8()
	for i := range opix {
		opix[i] = uint8(rng.IntN(256))
	}
	gocv.GaussianBlur(other, &other, image.Pt(9, 9), 0, 0, gocv.BorderReflect)
	analyze := func(img gocv.Mat, at time.Time) Observation {
		defer img.Close()
		f := &Frame{Camera: CameraEvidence, Image: img, Width: 640, Height: 480, Session: "s3", CapturedAt: at}
		var obs Observation
		if err := a.Analyze(context.Background(), f, &obs); err != nil {
			t.Fatal(err)
		}
		return obs
	}
	still := scene.Region(image.Rect(0, 0, 640, 480))
	defer still.Close()
	analyze(still.Clone(), t0)
	if o := analyze(still.Clone(), t0.Add(time.Second)); o.CameraYaw == nil || *o.CameraYaw != 0 || o.CameraYawLost {
		t.Errorf("still camera: yaw %v lost %v, want 0 measured", o.CameraYaw, o.CameraYawLost)
	}
	if o := analyze(other.Clone(), t0.Add(2*time.Second)); o.CameraYaw == nil || *o.CameraYaw != 0 || !o.CameraYawLost {
		t.Errorf("unrelated view: yaw %v lost %v, want 0 and lost", o.CameraYaw, o.CameraYawLost)
	}
}
