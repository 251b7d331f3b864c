package analyzers

import (
	"image"
	"image/color"
	"testing"

	"gocv.io/x/gocv"
)

// drawScreenScene is a 1280×720 room: a mid-grey wall, a desk, a doorway reaching the floor on
// the left and, on the desk, a laptop screen (dark bezel, light page, a video box) on the right.
func drawScreenScene() gocv.Mat {
	m := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(150, 160, 165, 0), 720, 1280, gocv.MatTypeCV8UC3)
	gocv.Rectangle(&m, image.Rect(0, 470, 1280, 720), color.RGBA{70, 90, 120, 0}, -1)     // desk
	gocv.Rectangle(&m, image.Rect(80, 80, 360, 720), color.RGBA{200, 205, 210, 0}, -1)    // lit doorway to the floor
	gocv.Rectangle(&m, image.Rect(760, 180, 1160, 440), color.RGBA{25, 25, 25, 0}, -1)    // bezel
	gocv.Rectangle(&m, image.Rect(772, 192, 1148, 428), color.RGBA{240, 240, 235, 0}, -1) // page
	gocv.Rectangle(&m, image.Rect(960, 220, 1130, 350), color.RGBA{90, 80, 70, 0}, -1)    // video box
	return m
}

func TestPersonsOnScreen(t *testing.T) {
	scene := drawScreenScene()
	defer scene.Close()
	quads, scale := screenRects(scene)
	if len(quads) == 0 {
		t.Fatal("no screen found")
	}
	cases := []struct {
		name string
		box  [4]float32 // x, y, w, h in the 1280×720 frame
		want bool
	}{
		{"person in the video box", [4]float32{975, 225, 140, 125}, true},
		{"person spilling a little past the video box", [4]float32{965, 215, 170, 140}, true},
		{"person standing in the doorway (feet on the floor)", [4]float32{140, 200, 160, 520}, false},
		{"person in front of the laptop (reaches below it)", [4]float32{820, 300, 200, 400}, false},
		{"person beside the screen on the wall", [4]float32{500, 150, 150, 300}, false},
	}
	for _, tc := range cases {
		if got := onScreen(quads, scale, tc.box); got != tc.want {
			t.Errorf("%s: on screen = %v, want %v (quads %v)", tc.name, got, tc.want, quads)
		}
	}
	// A wall brighter than the screen's page, whose bright part is not four-sided (a title bar,
	// the video in its corner), and a dark doorway: the screen still counts by its bezel (wider
	// than tall), the doorway does not.
	bright := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(225, 230, 235, 0), 720, 1280, gocv.MatTypeCV8UC3)
	defer bright.Close()
	gocv.Rectangle(&bright, image.Rect(0, 470, 1280, 720), color.RGBA{70, 90, 120, 0}, -1)     // desk
	gocv.Rectangle(&bright, image.Rect(80, 80, 360, 720), color.RGBA{40, 40, 45, 0}, -1)       // dark doorway
	gocv.Rectangle(&bright, image.Rect(760, 180, 1160, 440), color.RGBA{25, 25, 25, 0}, -1)    // bezel
	gocv.Rectangle(&bright, image.Rect(772, 192, 1148, 428), color.RGBA{200, 200, 195, 0}, -1) // page, dimmer than the wall
	gocv.Rectangle(&bright, image.Rect(772, 192, 1148, 215), color.RGBA{90, 60, 50, 0}, -1)    // title bar
	gocv.Rectangle(&bright, image.Rect(960, 215, 1148, 350), color.RGBA{90, 80, 70, 0}, -1)    // video box in the corner
	quads, scale = screenRects(bright)
	if !onScreen(quads, scale, [4]float32{980, 225, 150, 125}) {
		t.Errorf("person in the video box of a screen dimmer than the wall: not on screen (quads %v)", quads)
	}
	if onScreen(quads, scale, [4]float32{140, 200, 160, 500}) {
		t.Errorf("person standing in a dark doorway: on screen (quads %v)", quads)
	}

	// A warped screen on a green wall whose dark video box touches the bezel and whose lower edge
	// sits on a desk: neither the page nor an edge loop gives its outline, the dark bezel does.
	desk := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(160, 200, 150, 0), 720, 1280, gocv.MatTypeCV8UC3)
	defer desk.Close()
	gocv.Rectangle(&desk, image.Rect(0, 420, 1280, 720), color.RGBA{120, 80, 90, 0}, -1)
	for _, p := range []struct {
		pts []image.Point
		c   color.RGBA
	}{
		{[]image.Point{{760, 180}, {1160, 200}, {1160, 420}, {760, 445}}, color.RGBA{25, 25, 25, 0}},    // bezel
		{[]image.Point{{772, 192}, {1148, 211}, {1148, 410}, {772, 432}}, color.RGBA{235, 230, 232, 0}}, // page
	} {
		pv := gocv.NewPointsVectorFromPoints([][]image.Point{p.pts})
		gocv.FillPoly(&desk, pv, p.c)
		pv.Close()
	}
	gocv.Rectangle(&desk, image.Rect(772, 192, 1148, 214), color.RGBA{90, 60, 50, 0}, -1) // title bar
	gocv.Rectangle(&desk, image.Rect(960, 214, 1148, 330), color.RGBA{30, 30, 30, 0}, -1) // video box
	if quads, scale := screenRects(desk); !onScreen(quads, scale, [4]float32{975, 222, 160, 105}) {
		t.Errorf("person in the video box of a screen standing on a desk: not on screen (quads %v)", quads)
	}

	blank := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(150, 160, 165, 0), 720, 1280, gocv.MatTypeCV8UC3)
	defer blank.Close()
	if q, _ := screenRects(blank); len(q) != 0 {
		t.Errorf("a bare wall has %d screens", len(q))
	}
}

// BenchmarkScreenRects: the screen search, run by the persons analyzer on frames with ≥ 2
// people, on a 640×360 decode.
func BenchmarkScreenRects(b *testing.B) {
	scene := drawScreenScene()
	defer scene.Close()
	small := gocv.NewMat()
	defer small.Close()
	gocv.Resize(scene, &small, image.Pt(640, 360), 0, 0, gocv.InterpolationArea)
	for b.Loop() {
		screenRects(small)
	}
}
