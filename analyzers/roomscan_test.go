package analyzers

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"gocv.io/x/gocv"
)

// The room-scan estimate is measured on pan sequences rendered from 360° cylindrical panoramas —
// procedural rooms always, strips of real photos from ../shared/data when present — through a
// pinhole camera with the phone's field of view, so the true yaw of every frame is known. Frames
// get hand jitter (pitch), motion blur proportional to the turn, sensor noise and JPEG, and go
// through the same decode and thumbnail as in the service.

const (
	panFrameW, panFrameH = 640, 360 // an evidence frame as the Set decodes it (1280×720 at 1/2)
	panFOV               = 70.0
)

// panFocal is the focal length of the rendered frames in pixels.
var panFocal = float64(panFrameW) / 2 / math.Tan(panFOV*math.Pi/360)

// panorama is a cylindrical 360° image: column u is azimuth u/panFocal radians, row v is
// elevation atan((v − cy)/panFocal); it is padded on both sides with its own wrap-around so
// views near 0°/360° need no special case.
type panorama struct {
	img        gocv.Mat
	width      int // columns for 360°, without padding
	pad, cy    int
	mapX, mapY gocv.Mat // remap grid for yaw 0, pitch 0 (pad and cy included)
}

func (p *panorama) close() {
	p.img.Close()
	p.mapX.Close()
	p.mapY.Close()
}

// newPanorama pads a strip (any width; it is resized to exactly 360°) and builds the base
// remap grid.
func newPanorama(strip gocv.Mat) *panorama {
	width := int(math.Round(2 * math.Pi * panFocal))
	height := int(2*panFocal*math.Tan(30*math.Pi/180)) + 1 // ±30° elevation
	resized := gocv.NewMat()
	defer resized.Close()
	gocv.Resize(strip, &resized, image.Pt(width, height), 0, 0, gocv.InterpolationArea)
	pad := panFrameW
	p := &panorama{img: gocv.NewMat(), width: width, pad: pad, cy: height / 2}
	gocv.CopyMakeBorder(resized, &p.img, 0, 0, pad, pad, gocv.BorderWrap, color.RGBA{})
	p.mapX = gocv.NewMatWithSize(panFrameH, panFrameW, gocv.MatTypeCV32F)
	p.mapY = gocv.NewMatWithSize(panFrameH, panFrameW, gocv.MatTypeCV32F)
	mx, _ := p.mapX.DataPtrFloat32()
	my, _ := p.mapY.DataPtrFloat32()
	cx, cy := float64(panFrameW)/2, float64(panFrameH)/2
	for y := range panFrameH {
		for x := range panFrameW {
			X, Y := float64(x)-cx, float64(y)-cy
			mx[y*panFrameW+x] = float32(float64(pad) + panFocal*math.Atan2(X, panFocal))
			my[y*panFrameW+x] = float32(float64(p.cy) + panFocal*Y/math.Hypot(X, panFocal))
		}
	}
	return p
}

// view renders the camera at yaw (degrees, any value) and pitch (degrees, small) into dst.
// Pitch is approximated by a vertical shift of the cylinder, exact at the image centre.
func (p *panorama) view(dst *gocv.Mat, yaw, pitch float64) {
	yaw = math.Mod(yaw, 360)
	if yaw < 0 {
		yaw += 360
	}
	mx, my := p.mapX.Clone(), p.mapY.Clone()
	defer mx.Close()
	defer my.Close()
	mx.AddFloat(float32(yaw * math.Pi / 180 * panFocal))
	my.AddFloat(float32(panFocal * math.Tan(pitch*math.Pi/180)))
	gocv.Remap(p.img, dst, &mx, &my, gocv.InterpolationLinear, gocv.BorderReplicate, color.RGBA{})
}

// proceduralStrip draws a room unrolled over 360°: walls of changing colour, doors, shelves,
// pictures, a window, lamps, with texture noise — enough structure for correlation, like a room.
func proceduralStrip(rng *rand.Rand) gocv.Mat {
	w, h := 2880, 330
	strip := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(120, 130, 140, 0), h, w, gocv.MatTypeCV8UC3)
	x := 0
	for x < w { // wall segments
		seg := 300 + rng.IntN(500)
		v := 90 + rng.IntN(100)
		c := color.RGBA{uint8(v + rng.IntN(30)), uint8(v), uint8(v - rng.IntN(30)), 0}
		gocv.Rectangle(&strip, image.Rect(x, 0, x+seg, h), c, -1)
		x += seg
	}
	for range 40 { // furniture, frames, doors
		c := color.RGBA{uint8(rng.IntN(220)), uint8(rng.IntN(220)), uint8(rng.IntN(220)), 0}
		x0, y0 := rng.IntN(w), rng.IntN(h)
		r := image.Rect(x0, y0, x0+20+rng.IntN(200), y0+20+rng.IntN(150))
		if rng.IntN(3) == 0 {
			gocv.Rectangle(&strip, r, c, 2+rng.IntN(6))
		} else {
			gocv.Rectangle(&strip, r, c, -1)
		}
	}
	gocv.Rectangle(&strip, image.Rect(0, h*3/4, w, h), color.RGBA{90, 70, 50, 0}, -1) // floor
	noise := gocv.NewMatWithSize(h, w, gocv.MatTypeCV8UC3)
	gocv.RandN(&noise, gocv.NewScalar(128, 128, 128, 0), gocv.NewScalar(10, 10, 10, 0))
	gocv.GaussianBlur(noise, &noise, image.Pt(3, 3), 0, 0, gocv.BorderReplicate)
	gocv.AddWeighted(strip, 1, noise, 1, -128, &strip)
	noise.Close()
	return strip
}

// photoStrip joins real photos side by side (each scaled to the strip height).
func photoStrip(photos []gocv.Mat, h int) gocv.Mat {
	parts := make([]gocv.Mat, 0, len(photos))
	defer func() {
		for _, p := range parts {
			p.Close()
		}
	}()
	for _, ph := range photos {
		m := gocv.NewMat()
		gocv.Resize(ph, &m, image.Pt(ph.Cols()*h/ph.Rows(), h), 0, 0, gocv.InterpolationArea)
		parts = append(parts, m)
	}
	strip := parts[0].Clone()
	for _, p := range parts[1:] {
		next := gocv.NewMat()
		gocv.Hconcat(strip, p, &next)
		strip.Close()
		strip = next
	}
	return strip
}

// panScene describes one simulated scan.
type panScene struct {
	stepDeg  float64 // mean yaw per frame
	backStep bool    // pan back over part of the way, as people do
	face     bool    // a static face in the middle (front camera, candidate in view)
}

type panStats struct {
	errs      []float64 // |estimated − true| yaw per usable pair, degrees
	rejected  int       // pairs that gave no yaw (low confidence / too far)
	pairs     int
	covErr    []float64 // |ScanCoverage − true coverage| per scan, degrees
	covTrue   []float64
	covEst    []float64
	elapsed   time.Duration
	estimates int
}

// runScan renders one scan over pan, estimates every step and returns the estimated deltas and
// the true ones.
func runScan(t testing.TB, rs *RoomScan, pan *panorama, sc panScene, rng *rand.Rand, face gocv.Mat, st *panStats) {
	t.Helper()
	// True yaw track: forward to 360° (plus a back-and-forth in the middle when asked).
	var track []float64
	yaw := rng.Float64() * 360
	start := yaw
	for yaw-start < 360+sc.stepDeg && len(track) < 400 {
		track = append(track, yaw)
		if sc.stepDeg == 0 && len(track) == 30 {
			break // a phone lying still for 30 frames
		}
		step := sc.stepDeg * (0.7 + 0.6*rng.Float64())
		if sc.backStep && len(track) > 4 && len(track) < 8 {
			step = -step // turn back a little, then on again
		}
		yaw += step
	}
	frame := gocv.NewMat()
	defer frame.Close()
	var noise noiseBank
	defer noise.close()
	var prev, cur Thumb
	var est, truth []float32
	at := time.Unix(1_700_000_000, 0)
	for i, y := range track {
		pan.view(&frame, y, rng.NormFloat64()*1.5) // hand jitter in pitch
		if i > 0 {                                 // motion blur: the shutter is open for ~5% of the turn between frames
			if k := int(math.Abs(y-track[i-1]) * math.Pi / 180 * panFocal * 0.05); k >= 2 {
				gocv.Blur(frame, &frame, image.Pt(k, 1))
			}
		}
		if sc.face {
			// The candidate's face and shoulders stay put (and sharp) while the room turns,
			// motion-blurred, behind them.
			roi := frame.Region(image.Rect(panFrameW/2-face.Cols()/2, panFrameH-face.Rows(), panFrameW/2+(face.Cols()+1)/2, panFrameH))
			silhouette := headAndShoulders(face.Cols(), face.Rows())
			face.CopyToWithMask(&roi, silhouette)
			silhouette.Close()
			roi.Close()
		}
		noise.add(rng, &frame, 2+2*rng.Float64())
		buf, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, frame, []int{gocv.IMWriteJpegQuality, 60 + rng.IntN(26)})
		if err != nil {
			t.Fatal(err)
		}
		data := bytes.Clone(buf.GetBytes())
		buf.Close()

		t0 := time.Now()
		f, err := DecodeJPEG(data, 640)
		if err != nil {
			t.Fatal(err)
		}
		prev, cur = cur, prev
		err = rs.Thumb(&f, at.Add(time.Duration(i)*time.Second), &cur)
		f.Image.Close()
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			st.elapsed += time.Since(t0)
			continue
		}
		d, _ := rs.YawBetween(&prev, &cur)
		st.elapsed += time.Since(t0)
		st.estimates++
		trueStep := y - track[i-1]
		st.pairs++
		if d == 0 {
			st.rejected++
		} else {
			st.errs = append(st.errs, math.Abs(float64(d)-trueStep))
		}
		est = append(est, d)
		truth = append(truth, float32(trueStep))
	}
	// Yaw sign: the scene moving left means the camera turned right (positive).
	gotCov, wantCov := float64(ScanCoverage(est)), float64(ScanCoverage(truth))
	st.covErr = append(st.covErr, math.Abs(gotCov-wantCov))
	st.covTrue = append(st.covTrue, wantCov)
	st.covEst = append(st.covEst, gotCov)
}

func meanOf(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

func p90(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)*9/10]
}

// headAndShoulders is the mask of a person seen by their own front camera: a head ellipse over
// the shoulders, the room visible around them.
func headAndShoulders(w, h int) gocv.Mat {
	m := gocv.NewMatWithSize(h, w, gocv.MatTypeCV8U)
	m.SetTo(gocv.NewScalar(0, 0, 0, 0))
	white := color.RGBA{255, 255, 255, 0}
	gocv.Ellipse(&m, image.Pt(w/2, h), image.Pt(w/2, h*3/10), 0, 180, 360, white, -1)
	gocv.Ellipse(&m, image.Pt(w/2, h*2/5), image.Pt(w/4, h*2/5), 0, 0, 360, white, -1)
	return m
}

// syntheticFace is a face-and-shoulders blob for the "candidate in view" scenes when no real
// photo is at hand.
func syntheticFace() gocv.Mat {
	m := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(40, 40, 40, 0), 200, 220, gocv.MatTypeCV8UC3)
	gocv.Ellipse(&m, image.Pt(110, 200), image.Pt(110, 60), 0, 180, 360, color.RGBA{60, 60, 140, 0}, -1)
	gocv.Ellipse(&m, image.Pt(110, 85), image.Pt(50, 65), 0, 0, 360, color.RGBA{200, 160, 130, 0}, -1)
	for _, x := range []int{90, 130} {
		gocv.Circle(&m, image.Pt(x, 75), 6, color.RGBA{40, 30, 30, 0}, -1)
	}
	gocv.Line(&m, image.Pt(95, 115), image.Pt(125, 115), color.RGBA{120, 60, 60, 0}, 3)
	return m
}

func evalScans(t *testing.T, rs *RoomScan, pans []*panorama, face gocv.Mat, seed uint64, rows []panRow) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 9))
	var b strings.Builder
	fmt.Fprintf(&b, "%-34s %6s %9s %9s %9s %12s\n", "scene (mean step/frame)", "pairs", "rejected", "MAE yaw", "p90 yaw", "coverage err")
	results := map[string]*panStats{}
	var all panStats
	for _, r := range rows {
		st := &panStats{}
		for _, p := range pans {
			runScan(t, rs, p, r.sc, rng, face, st)
		}
		results[r.name] = st
		fmt.Fprintf(&b, "%-34s %6d %8.1f%% %8.2f° %8.2f° %11.1f°  (true %.0f°, est. %.0f° mean)\n", r.name, st.pairs,
			pct(st.rejected, st.pairs), meanOf(st.errs), p90(st.errs), meanOf(st.covErr), meanOf(st.covTrue), meanOf(st.covEst))
		all.elapsed += st.elapsed
		all.estimates += st.estimates
	}
	fmt.Fprintf(&b, "time: %.2f ms per frame (decode 640 px + thumbnail + YawBetween)\n",
		float64(all.elapsed.Microseconds())/1000/float64(all.estimates))
	t.Log(b.String())

	// Quality floors (figures in docs/evidence-camera.md, with margin). 25°/frame and beyond
	// is past what the method can do (too little overlap) and has no floor.
	for _, r := range rows {
		st := results[r.name]
		if r.maxMAE > 0 && !(meanOf(st.errs) <= r.maxMAE) {
			t.Errorf("%s: mean yaw error %.2f°, want <= %.1f°", r.name, meanOf(st.errs), r.maxMAE)
		}
		if r.maxCovErr > 0 && !(meanOf(st.covErr) <= r.maxCovErr) {
			t.Errorf("%s: coverage error %.1f°, want <= %.0f°", r.name, meanOf(st.covErr), r.maxCovErr)
		}
	}
}

// panRow is one scene of the table with its quality floors (0: none).
type panRow struct {
	name              string
	sc                panScene
	maxMAE, maxCovErr float64
}

var panRows = []panRow{
	{"still phone (0°/frame)", panScene{stepDeg: 0}, 0.3, 3},
	{"5°/frame", panScene{stepDeg: 5}, 0.3, 15},
	{"10°/frame", panScene{stepDeg: 10}, 0.3, 15},
	{"10°/frame, back and forth", panScene{stepDeg: 10, backStep: true}, 0.3, 15},
	{"20°/frame", panScene{stepDeg: 20}, 1, 100},
	{"25°/frame", panScene{stepDeg: 25}, 0, 0},
	// 1 fps frames of a brisk scan: the correlation fails on most pairs, matched corners
	// measure them (before them, coverage errors of 250–360°).
	{"30°/frame", panScene{stepDeg: 30}, 1, 180},
	{"35°/frame", panScene{stepDeg: 35}, 3, 220},
	// Steps of more than ~41° (a thumbnail's 69° less the correlation's 28°) can read as
	// the alias the other way when the corners find nothing: no MAE floor.
	{"40°/frame", panScene{stepDeg: 40}, 0, 280},
	{"30°/frame, face in view", panScene{stepDeg: 30, face: true}, 0, 0},
	{"10°/frame, face in view", panScene{stepDeg: 10, face: true}, 2, 150},
	{"20°/frame, face in view", panScene{stepDeg: 20, face: true}, 0, 0},
}

func newTestRoomScan(t testing.TB) *RoomScan {
	rs, err := NewRoomScan(RoomScanConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rs.Close() })
	return rs
}

// TestRoomScanProcedural is the always-on measurement on procedural rooms.
func TestRoomScanProcedural(t *testing.T) {
	deterministicOpenCV(t, 3)
	rng := rand.New(rand.NewPCG(5, 6))
	var pans []*panorama
	for range 2 * evalScale(t) {
		strip := proceduralStrip(rng)
		pans = append(pans, newPanorama(strip))
		strip.Close()
	}
	defer func() {
		for _, p := range pans {
			p.close()
		}
	}()
	face := syntheticFace()
	defer face.Close()
	evalScans(t, newTestRoomScan(t), pans, face, 1, panRows)
}

// TestRoomScanRealPhotos pans across strips of the real photos of ../shared/data.
func TestRoomScanRealPhotos(t *testing.T) {
	deterministicOpenCV(t, 4)
	photos := realBackgrounds(t)
	defer func() {
		for _, p := range photos {
			p.Close()
		}
	}()
	n := min(2*evalScale(t), len(photos)/4-1) // four photos per panorama
	if testing.Short() {
		n = 1
	}
	var pans []*panorama
	for i := range n {
		// Four different photos per strip, the wide group photos first.
		strip := photoStrip([]gocv.Mat{photos[4*i], photos[4*i+1], photos[4*i+2], photos[4*i+3]}, 330)
		pans = append(pans, newPanorama(strip))
		strip.Close()
	}
	defer func() {
		for _, p := range pans {
			p.close()
		}
	}()
	// A real face (from a portrait of the same set) stands in for the candidate.
	face := gocv.NewMat()
	defer face.Close()
	portrait := photos[len(photos)-1]
	gocv.Resize(portrait, &face, image.Pt(220, 220*portrait.Rows()/portrait.Cols()), 0, 0, gocv.InterpolationArea)
	if face.Rows() > 250 {
		crop := face.Region(image.Rect(0, 0, 220, 250))
		c := crop.Clone()
		crop.Close()
		face.Close()
		face = c
	}
	// The slow scenes only: 5° and 25°/frame behave on photos as on the procedural rooms.
	rows := slices.DeleteFunc(slices.Clone(panRows), func(r panRow) bool {
		return evalScale(t) == 1 && (r.sc.stepDeg == 5 || r.sc.stepDeg == 25)
	})
	evalScans(t, newTestRoomScan(t), pans, face, 2, rows)
}

// Turns of 30° and 34° between frames (1 fps frames of a 10–12 s scan) are past what the
// correlation measures; matched corners measure most of them, and none wrongly.
func TestYawBetweenLargeTurns(t *testing.T) {
	rs := newTestRoomScan(t)
	strip := proceduralStrip(rand.New(rand.NewPCG(1, 1)))
	pan := newPanorama(strip)
	strip.Close()
	defer pan.close()
	frame := gocv.NewMat()
	defer frame.Close()
	thumb := func(yaw float64) *Thumb {
		pan.view(&frame, yaw, 0)
		th := &Thumb{}
		if err := rs.Thumb(&Frame{Image: frame, Width: panFrameW, Height: panFrameH}, time.Time{}, th); err != nil {
			t.Fatal(err)
		}
		return th
	}
	for _, step := range []float64{30, 34} {
		measured := 0
		for base := 0.0; base < 360; base += 30 {
			d, c := rs.YawBetween(thumb(base), thumb(base+step))
			switch {
			case math.Abs(float64(d)-step) <= 0.5:
				measured++
			case d != 0:
				t.Errorf("%v° turn from %v°: measured %.1f° (confidence %.2f)", step, base, d, c)
			}
		}
		t.Logf("%v° turns: %d of 12 measured", step, measured)
		if measured < 6 {
			t.Errorf("%v° turns: %d of 12 measured, want at least 6", step, measured)
		}
	}
}

// Unusable pairs give no yaw: a gap in time, unrelated frames, mismatched sizes.
func TestYawBetweenRejects(t *testing.T) {
	rs := newTestRoomScan(t)
	rng := rand.New(rand.NewPCG(1, 1))
	strip := proceduralStrip(rng)
	pan := newPanorama(strip)
	strip.Close()
	defer pan.close()
	frame := gocv.NewMat()
	defer frame.Close()
	thumb := func(yaw float64, at time.Time) *Thumb {
		pan.view(&frame, yaw, 0)
		th := &Thumb{}
		if err := rs.Thumb(&Frame{Image: frame, Width: panFrameW, Height: panFrameH}, at, th); err != nil {
			t.Fatal(err)
		}
		return th
	}
	t0 := time.Unix(1_700_000_000, 0)
	a, b := thumb(10, t0), thumb(20, t0.Add(time.Second))
	if d, c := rs.YawBetween(a, b); math.Abs(float64(d)-10) > 0.5 || c < 0.1 {
		t.Errorf("10° turn: got %.2f° (confidence %.2f)", d, c)
	}
	if d, _ := rs.YawBetween(b, a); math.Abs(float64(d)+10) > 0.5 {
		t.Errorf("reverse 10° turn: got %.2f°", d)
	}
	late := thumb(20, t0.Add(5*time.Second))
	if d, c := rs.YawBetween(a, late); d != 0 || c != 0 {
		t.Errorf("5 s gap: got %.2f° confidence %.2f, want nothing", d, c)
	}
	far := thumb(190, t0.Add(time.Second)) // the other side of the room: no overlap
	if d, c := rs.YawBetween(a, far); d != 0 {
		t.Errorf("unrelated frames: got %.2f° (confidence %.2f), want 0", d, c)
	}
	small := &Thumb{Pix: make([]byte, 80*45), W: 80, H: 45, Focal: a.Focal}
	if d, c := rs.YawBetween(a, small); d != 0 || c != 0 {
		t.Errorf("size mismatch: %.2f %.2f", d, c)
	}
	if d, c := rs.YawBetween(nil, a); d != 0 || c != 0 {
		t.Errorf("nil: %.2f %.2f", d, c)
	}
	// 160×90 shrunk, then the cylindrical projection keeps the 70° across 138 columns.
	if len(a.Pix) != 138*90 || a.W != 138 || a.H != 90 || math.Abs(float64(a.Focal)-114.26) > 0.1 {
		t.Errorf("thumbnail %dx%d, %d bytes, focal %.2f", a.W, a.H, len(a.Pix), a.Focal)
	}
	if err := rs.Thumb(&Frame{}, t0, a); err == nil {
		t.Error("zero frame accepted")
	}
}

func TestScanCoverage(t *testing.T) {
	for _, tc := range []struct {
		deltas []float32
		want   float32
	}{
		{nil, 0},
		{[]float32{30, 30, 30}, 90},
		{[]float32{30, 30, -60, -30}, 90},               // back past the start: max 60, min −30
		{[]float32{90, -90, 90, -90}, 90},               // sweeping the same quarter counts once
		{[]float32{100, 100, 100, 100}, 360},            // capped
		{[]float32{-50, float32(math.NaN()), -50}, 100}, // NaN ignored, direction irrelevant
	} {
		if got := ScanCoverage(tc.deltas); math.Abs(float64(got-tc.want)) > 1e-4 {
			t.Errorf("ScanCoverage(%v) = %v, want %v", tc.deltas, got, tc.want)
		}
	}
}

func BenchmarkRoomScan(b *testing.B) {
	rs := newTestRoomScan(b)
	rng := rand.New(rand.NewPCG(1, 1))
	strip := proceduralStrip(rng)
	pan := newPanorama(strip)
	strip.Close()
	defer pan.close()
	frame := gocv.NewMat()
	defer frame.Close()
	pan.view(&frame, 0, 0)
	f := Frame{Image: frame, Width: panFrameW, Height: panFrameH, Camera: CameraEvidence}
	var prev, cur Thumb
	if err := rs.Thumb(&f, time.Time{}, &prev); err != nil {
		b.Fatal(err)
	}
	b.Run("Thumb", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := rs.Thumb(&f, time.Time{}, &cur); err != nil {
				b.Fatal(err)
			}
		}
	})
	pan.view(&frame, 12, 0)
	rs.Thumb(&f, time.Time{}, &cur)
	b.Run("YawBetween", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			rs.YawBetween(&prev, &cur)
		}
	})
	// A 1 fps pair of a brisk scan (34°): the correlation fails and the corners measure it.
	pan.view(&frame, 30, 0)
	rs.Thumb(&f, time.Time{}, &prev)
	pan.view(&frame, 64, 0)
	rs.Thumb(&f, time.Time{}, &cur)
	if d, _ := rs.YawBetween(&prev, &cur); math.Abs(float64(d)-34) > 0.5 {
		b.Fatalf("34° pair measured %.1f°", d)
	}
	b.Run("YawBetween34", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			rs.YawBetween(&prev, &cur)
		}
	})
}
