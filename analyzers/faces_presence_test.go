package analyzers

import (
	"context"
	"image"
	"image/color"
	"path/filepath"
	"testing"

	"gocv.io/x/gocv"

	"proctor/models"
)

func box(x, y, w, h, s float32) models.FaceBox {
	return models.FaceBox{X: x, Y: y, W: w, H: h, Score: s}
}

func TestFilterFaces(t *testing.T) {
	cases := []struct {
		name                 string
		in                   []models.FaceBox
		contained, minSecond float32
		want                 int
	}{
		{"a box on the eyes inside the face is the same face",
			[]models.FaceBox{box(0, 0, 100, 120, 0.99), box(20, 30, 60, 30, 0.9)}, 0.5, 0.25, 1},
		{"half a face overlapping the whole face by more than half its area",
			[]models.FaceBox{box(0, 0, 100, 120, 0.99), box(40, 10, 70, 100, 0.8)}, 0.5, 0.25, 1},
		{"two people side by side stay two",
			[]models.FaceBox{box(0, 0, 100, 120, 0.99), box(150, 10, 90, 110, 0.95)}, 0.5, 0.25, 2},
		{"two people whose boxes touch stay two",
			[]models.FaceBox{box(0, 0, 100, 120, 0.99), box(80, 10, 90, 110, 0.95)}, 0.5, 0.25, 2},
		{"a face on a poster a fifth of the candidate's height is not counted",
			[]models.FaceBox{box(200, 100, 100, 130, 0.99), box(10, 10, 20, 26, 0.95)}, 0.5, 0.25, 1},
		{"a second person half the candidate's height counts",
			[]models.FaceBox{box(200, 100, 100, 130, 0.99), box(10, 10, 50, 65, 0.95)}, 0.5, 0.25, 2},
		{"disabled filters keep everything",
			[]models.FaceBox{box(0, 0, 100, 120, 0.99), box(20, 30, 60, 30, 0.9), box(300, 0, 10, 12, 0.8)}, 0, 0, 3},
		{"one face is left alone", []models.FaceBox{box(0, 0, 10, 10, 0.9)}, 0.5, 0.25, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := filterFaces(append([]models.FaceBox(nil), c.in...), c.contained, c.minSecond)
			if len(got) != c.want {
				t.Fatalf("got %d faces %v, want %d", len(got), got, c.want)
			}
			if got[0] != c.in[0] {
				t.Errorf("the best face must stay first: got %v", got[0])
			}
		})
	}
}

func TestMergeParts(t *testing.T) {
	// Two eye boxes (glasses) on one face that the padded pass sees whole.
	eyes := []models.FaceBox{box(8, 28, 63, 39, 0.99), box(73, 35, 60, 33, 0.77)}
	whole := []models.FaceBox{box(0, 5, 140, 120, 0.95)}
	got := mergeParts(append([]models.FaceBox(nil), eyes...), whole, 0.5)
	if len(got) != 1 || got[0].W != 140 || got[0].Score != 0.99 {
		t.Fatalf("eye boxes: got %v, want the padded face with the best score", got)
	}
	// Two real faces cheek to cheek that the padded pass saw as one box: each is nearly as
	// tall as that box, so they are not parts of it.
	two := []models.FaceBox{box(0, 0, 65, 100, 1), box(60, 5, 68, 100, 1)}
	got = mergeParts(append([]models.FaceBox(nil), two...), []models.FaceBox{box(0, 0, 130, 105, 0.9)}, 0.5)
	if len(got) != 2 {
		t.Fatalf("two faces: got %v, want both", got)
	}
	// A face the padded pass does not see is kept.
	got = mergeParts(append([]models.FaceBox(nil), two...), nil, 0.5)
	if len(got) != 2 {
		t.Fatalf("no padded faces: got %v, want both", got)
	}
}

func TestShiftClip(t *testing.T) {
	got := shiftClip([]models.FaceBox{box(1, 1, 1, 1, 1), box(40, 30, 100, 100, 0.9), box(0, 0, 10, 10, 0.8)}, 1, -50, -50, 60, 60)
	want := []models.FaceBox{box(1, 1, 1, 1, 1), box(0, 0, 60, 60, 0.9)}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("got %v, want %v (the box left of the frame dropped, the other clipped)", got, want)
	}
}

// TestFacesSecondPass: a face cropped so tight that it fills the frame is missed by the
// one-pass detector and found by the padded second pass; the second pass never adds a face to
// a frame the first pass already counted, and finds nothing on a plain frame.
func TestFacesSecondPass(t *testing.T) {
	requireModels(t)
	one := newTestFaces(t, FacesConfig{NoSecondPass: true, NoConfirmSeveral: true})
	two := newTestFaces(t, FacesConfig{})
	ctx := context.Background()
	count := func(a *Faces, img gocv.Mat) int {
		f := Frame{Camera: CameraMain, Image: img, Width: img.Cols(), Height: img.Rows()}
		var obs Observation
		if err := a.Analyze(ctx, &f, &obs); err != nil {
			t.Fatal(err)
		}
		return len(obs.Faces)
	}
	recovered, missed := 0, 0
	for n := 1; n <= 6; n++ {
		data := demoJPEG(t, n)
		img, err := gocv.IMDecode(data, gocv.IMReadColor)
		if err != nil {
			t.Fatal(err)
		}
		f := Frame{Image: img, Width: img.Cols(), Height: img.Rows()}
		var obs Observation
		if err := one.Analyze(ctx, &f, &obs); err != nil {
			t.Fatal(err)
		}
		for _, fc := range obs.Faces {
			for _, cut := range []float32{0.1, 0.15, 0.2} {
				// The inner part of the face box: forehead, chin and ears cut off, as a candidate
				// leaning into the camera.
				r := image.Rect(int(fc.Box[0]+cut*fc.Box[2]), int(fc.Box[1]+cut*fc.Box[3]),
					int(fc.Box[0]+(1-cut)*fc.Box[2]), int(fc.Box[1]+(1-cut)*fc.Box[3])).Intersect(image.Rect(0, 0, img.Cols(), img.Rows()))
				if r.Dx() < 40 || r.Dy() < 40 {
					continue
				}
				region := img.Region(r)
				crop := region.Clone()
				region.Close()
				a, b := count(one, crop), count(two, crop)
				crop.Close()
				if b < min(a, 1) || (a > 0 && b > a) {
					t.Errorf("sample%d face %v: one pass %d faces, with the second pass %d", n, r, a, b)
				}
				if a == 0 {
					missed++
					if b == 1 {
						recovered++
					}
				}
			}
		}
		img.Close()
	}
	// Measured: 17 of 21 missed crops found (demo photos of @vladmandic/face-api).
	t.Logf("second pass found %d of the %d tight crops the first pass missed", recovered, missed)
	if missed == 0 || recovered*2 < missed {
		t.Errorf("the second pass found %d of the %d tight face crops the first pass missed", recovered, missed)
	}
	plain := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(90, 120, 160, 0), 480, 640, gocv.MatTypeCV8UC3)
	defer plain.Close()
	if n := count(two, plain); n != 0 {
		t.Errorf("plain frame: %d faces", n)
	}
	if two.SecondPasses == 0 {
		t.Error("the second pass never ran")
	}
}

func TestVouched(t *testing.T) {
	cases := []struct {
		name         string
		faces, boxes []models.FaceBox
		want         int
	}{
		{"two people, each with a verifier box",
			[]models.FaceBox{box(0, 0, 100, 120, 0.99), box(200, 10, 90, 110, 0.9)},
			[]models.FaceBox{box(5, 10, 100, 100, 0.8), box(195, 20, 95, 95, 0.6)}, 2},
		{"two halves of one face covered by one verifier box count once",
			[]models.FaceBox{box(0, 0, 60, 120, 0.99), box(55, 0, 60, 120, 0.9)},
			[]models.FaceBox{box(0, 5, 115, 115, 0.8)}, 1},
		{"an ear the verifier does not see is dropped",
			[]models.FaceBox{box(100, 0, 100, 120, 0.99), box(60, 40, 30, 50, 0.8)},
			[]models.FaceBox{box(100, 10, 100, 100, 0.9)}, 1},
		{"the best face stays even when the verifier sees nothing",
			[]models.FaceBox{box(0, 0, 100, 120, 0.99), box(200, 10, 90, 110, 0.9)}, nil, 1},
		{"a verifier box barely touching a face does not vouch for it",
			[]models.FaceBox{box(0, 0, 100, 120, 0.99), box(300, 0, 100, 120, 0.9)},
			[]models.FaceBox{box(0, 0, 100, 120, 0.9), box(390, 110, 100, 100, 0.9)}, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := vouched(append([]models.FaceBox(nil), c.faces...), append([]models.FaceBox(nil), c.boxes...), verifyIoU)
			if len(got) != c.want || got[0] != c.faces[0] {
				t.Fatalf("got %v, want %d faces, the best first", got, c.want)
			}
		})
	}
}

// countFaces runs a on the dev photo (decoded as the service decodes it) and returns its faces.
func countFaces(t *testing.T, a *Faces, path string) int {
	t.Helper()
	f, err := DecodeJPEG(asJPEG(t, path), a.DecodeSide())
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer f.Image.Close()
	var obs Observation
	if err := a.Analyze(context.Background(), &f, &obs); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return len(obs.Faces)
}

// TestFacesVerifierDevPhotos: on tuning photos of mask/train labelled by eye
// (internal/eval/presence.go), the verifier drops the extra "faces" of one-person photos (a
// jacket, an ear by a helmet, an arm, hands) and keeps two people as two.
func TestFacesVerifierDevPhotos(t *testing.T) {
	dir := filepath.Join(devData(t), "faces", "mask", "train", "with_mask")
	requireModels(t)
	without := newTestFaces(t, FacesConfig{NoVerifier: true, NoAgreement: true})
	with := newTestFaces(t, FacesConfig{})
	for _, c := range []struct {
		file string
		want int
	}{
		{"with_mask159.jpg", 1}, {"with_mask295.jpg", 1}, {"with_mask498.jpg", 1}, {"with_mask517.jpg", 1},
		{"with_mask116.jpg", 2}, {"with_mask142.jpg", 2}, {"with_mask172.jpg", 2}, {"with_mask353.jpg", 2},
	} {
		p := filepath.Join(dir, c.file)
		before, after := countFaces(t, without, p), countFaces(t, with, p)
		if before < 2 || after != c.want {
			t.Errorf("%s: %d faces without the verifier, %d with it; want 2+ then %d", c.file, before, after, c.want)
		}
	}
	if with.Verified != 8 || with.Unverified < 5 {
		t.Errorf("the verifier ran on %d frames and dropped %d faces, want 8 frames and at least 5", with.Verified, with.Unverified)
	}
}

// TestFacesAgreementDevPhotos: masked faces both passes miss at the 0.7 threshold are found
// when UltraFace (at 0.4+) and BlazeFace agree; face-free crops stay empty.
func TestFacesAgreementDevPhotos(t *testing.T) {
	data := devData(t)
	requireModels(t)
	without := newTestFaces(t, FacesConfig{NoAgreement: true, NoTilted: true})
	with := newTestFaces(t, FacesConfig{NoTilted: true})
	for _, file := range []string{"0803.jpg", "102.jpg", "128.jpg", "with_mask170.jpg"} {
		p := filepath.Join(data, "faces", "mask", "train", "with_mask", file)
		if before, after := countFaces(t, without, p), countFaces(t, with, p); before != 0 || after != 1 {
			t.Errorf("%s: %d faces without the agreement pass, %d with it; want 0 then 1", file, before, after)
		}
	}
	if with.Agreed != 4 {
		t.Errorf("agreement found %d faces, want 4", with.Agreed)
	}
}

// TestFacesExtrasSkipOneFaceFrames: on ordinary one-face frames neither BlazeFace model runs
// (the verifier needs two faces, the agreement pass none).
func TestFacesExtrasSkipOneFaceFrames(t *testing.T) {
	requireModels(t)
	a := newTestFaces(t, FacesConfig{})
	ctx := context.Background()
	frames := 0
	for n := 1; n <= 6; n++ {
		img, err := gocv.IMDecode(demoJPEG(t, n), gocv.IMReadColor)
		if err != nil {
			t.Fatal(err)
		}
		f := Frame{Image: img, Width: img.Cols(), Height: img.Rows()}
		var obs Observation
		if err := a.Analyze(ctx, &f, &obs); err != nil {
			t.Fatal(err)
		}
		if len(obs.Faces) < 2 || a.Verified != n {
			t.Errorf("sample%d: %d faces, verifier ran %d times; want every demo group verified", n, len(obs.Faces), a.Verified)
		}
		for _, fc := range obs.Faces {
			// The face with as much room again around it, as a webcam frames a candidate.
			r := image.Rect(int(fc.Box[0]-fc.Box[2]), int(fc.Box[1]-fc.Box[3]/2),
				int(fc.Box[0]+2*fc.Box[2]), int(fc.Box[1]+2*fc.Box[3])).Intersect(image.Rect(0, 0, img.Cols(), img.Rows()))
			region := img.Region(r)
			crop := region.Clone()
			region.Close()
			verified, agreements, tilted := a.Verified, a.AgreementPasses, a.TiltedPasses
			cf := Frame{Image: crop, Width: crop.Cols(), Height: crop.Rows()}
			var co Observation
			if err := a.Analyze(ctx, &cf, &co); err != nil {
				t.Fatal(err)
			}
			crop.Close()
			if len(co.Faces) != 1 {
				continue // a neighbour's face in the crop
			}
			frames++
			if a.Verified != verified || a.AgreementPasses != agreements || a.TiltedPasses != tilted {
				t.Errorf("sample%d one-face crop %v: verifier, agreement pass or tilted look ran", n, r)
			}
		}
		img.Close()
	}
	if frames < 10 {
		t.Errorf("only %d one-face crops of the demo photos", frames)
	}
}

// newTestFaces builds a faces analyzer closed when the test ends.
func newTestFaces(t *testing.T, cfg FacesConfig) *Faces {
	t.Helper()
	a, err := NewFaces(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// TestFacesTiltedDevPhotos: tight masked faces (mask/train, tuning photos) that every other pass
// misses are found by the tilted look.
func TestFacesTiltedDevPhotos(t *testing.T) {
	data := devData(t)
	requireModels(t)
	without := newTestFaces(t, FacesConfig{NoTilted: true})
	with := newTestFaces(t, FacesConfig{})
	for _, file := range []string{"101.jpg", "121.jpg", "14.jpg", "1_0_15.jpg"} {
		p := filepath.Join(data, "faces", "mask", "train", "with_mask", file)
		if before, after := countFaces(t, without, p), countFaces(t, with, p); before != 0 || after != 1 {
			t.Errorf("%s: %d faces without the tilted look, %d with it; want 0 then 1", file, before, after)
		}
	}
	if with.TiltedPasses != 4 || with.TiltedFound != 4 {
		t.Errorf("the tilted look ran on %d frames and found %d faces, want 4 and 4", with.TiltedPasses, with.TiltedFound)
	}
}

// TestTiltedLookMapsBack checks the tilted look's geometry: the face each turn finds on a
// one-face crop, mapped back to the frame, covers the face the upright pass finds (the box
// around a turned box is larger, never elsewhere), and the tilted look runs on empty frames of
// the main camera, not of the evidence camera.
func TestTiltedLookMapsBack(t *testing.T) {
	requireModels(t)
	a := newTestFaces(t, FacesConfig{})
	ctx := context.Background()
	img, err := gocv.IMDecode(demoJPEG(t, 1), gocv.IMReadColor)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	f := Frame{Image: img, Width: img.Cols(), Height: img.Rows()}
	var obs Observation
	if err := a.Analyze(ctx, &f, &obs); err != nil || len(obs.Faces) < 2 {
		t.Fatalf("demo group: %v, %d faces", err, len(obs.Faces))
	}
	checked := 0
	for _, fc := range obs.Faces {
		r := image.Rect(int(fc.Box[0]-fc.Box[2]), int(fc.Box[1]-fc.Box[3]/2),
			int(fc.Box[0]+2*fc.Box[2]), int(fc.Box[1]+2*fc.Box[3])).Intersect(image.Rect(0, 0, img.Cols(), img.Rows()))
		region := img.Region(r)
		face := region.Clone() // a border around a region would be filled from the photo around it
		region.Close()
		// Off the centre (the turns move it), on a grey canvas; scaled as a decode at half size:
		// boxes must come back in the original pixels.
		crop := gocv.NewMat()
		gocv.CopyMakeBorder(face, &crop, 0, r.Dy(), 0, r.Dx(), gocv.BorderConstant, color.RGBA{127, 127, 127, 0})
		face.Close()
		cf := Frame{Image: crop, Width: 2 * crop.Cols(), Height: 2 * crop.Rows()}
		var co Observation
		if err := a.Analyze(ctx, &cf, &co); err != nil {
			t.Fatal(err)
		}
		if len(co.Faces) != 1 {
			crop.Close()
			continue
		}
		up := models.FaceBox{X: co.Faces[0].Box[0], Y: co.Faces[0].Box[1], W: co.Faces[0].Box[2], H: co.Faces[0].Box[3]}
		for _, deg := range []float64{20, -20} {
			b, ok, err := a.turnedPass(&cf, deg)
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				continue // a turn may miss a face the upright pass finds
			}
			checked++
			if in := intersection(up, b) / (up.W * up.H); in < 0.8 || b.W*b.H > 3*up.W*up.H {
				t.Errorf("crop %v turned %g°: box %+v, upright %+v: want it around the upright face (covers %.2f)", r, deg, b, up, in)
			}
		}
		crop.Close()
	}
	if checked < 4 {
		t.Errorf("only %d turned faces checked", checked)
	}
	grey := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(90, 100, 110, 0), 480, 640, gocv.MatTypeCV8UC3)
	defer grey.Close()
	before := a.TiltedPasses
	var eo Observation
	if err := a.Analyze(ctx, &Frame{Image: grey, Width: 640, Height: 480}, &eo); err != nil || len(eo.Faces) != 0 {
		t.Fatalf("grey frame: %v, %d faces", err, len(eo.Faces))
	}
	if a.TiltedPasses != before+1 {
		t.Errorf("the tilted look ran %d times on an empty frame, want once", a.TiltedPasses-before)
	}
	// The evidence camera's empty frames are not looked at again.
	if err := a.Analyze(ctx, &Frame{Image: grey, Width: 640, Height: 480, Camera: CameraEvidence}, &eo); err != nil || len(eo.Faces) != 0 {
		t.Fatalf("grey evidence frame: %v, %d faces", err, len(eo.Faces))
	}
	if a.TiltedPasses != before+1 {
		t.Errorf("the tilted look ran on an evidence-camera frame")
	}
}
