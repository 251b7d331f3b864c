package scenario

import (
	"context"
	"fmt"
	"image"
	"math"
	"os"
	"path/filepath"
	"sort"

	"gocv.io/x/gocv"

	"proctor/analyzers"
)

// Impostors are frames of other people than the candidate, each alone in a camera frame, framed
// like Frames.Candidate: someone else taking over the exam. They are cut from the faces of the
// group photos and checked with set, which must hold the identity analyzer (and faces, landmarks
// and headpose): one face, not the registration photo's person, facing the camera (|yaw| < 25°,
// |pitch| < 20°, so the frames do not also look away). At most max frames, from different people.
func Impostors(ctx context.Context, set *analyzers.Set, dir string, f *Frames, max int) ([][]byte, error) {
	enr, err := set.Enroll(ctx, f.Photo)
	if err != nil {
		return nil, fmt.Errorf("enrol the registration photo: %w", err)
	}
	paths, err := filepath.Glob(filepath.Join(dir, "sample*.jpg"))
	if err != nil || len(paths) == 0 {
		return nil, fmt.Errorf("no sample*.jpg in %s: run scripts/setup.sh", dir)
	}
	sort.Strings(paths)
	var out [][]byte
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		frames, err := impostorsIn(ctx, set, data, &enr)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Base(p), err)
		}
		for _, fr := range frames {
			if len(out) < max {
				out = append(out, fr)
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no impostor frame could be cut from %s", dir)
	}
	return out, nil
}

func impostorsIn(ctx context.Context, set *analyzers.Set, data []byte, enr *analyzers.Enrollment) ([][]byte, error) {
	img, err := gocv.IMDecode(data, gocv.IMReadColor)
	if err != nil || img.Empty() {
		img.Close()
		return nil, fmt.Errorf("decode: %v", err)
	}
	defer img.Close()
	obs, err := set.AnalyzeJPEG(ctx, data, analyzers.CameraMain)
	if err != nil {
		return nil, err
	}
	W, H := img.Cols(), img.Rows()
	var out [][]byte
	for i, fc := range obs.Faces {
		x, y, w, h := int(fc.Box[0]), int(fc.Box[1]), int(fc.Box[2]), int(fc.Box[3])
		cw := w * 3
		ch := cw * 3 / 4
		r := image.Rect(x+w/2-cw/2, y+h/2-ch/3, x+w/2-cw/2+cw, y+h/2-ch/3+ch).Intersect(image.Rect(0, 0, W, H))
		if r.Dx() < 160 || overlapsOther(r, obs.Faces, i) {
			continue
		}
		crop := img.Region(r)
		frame := gocv.NewMat()
		gocv.Resize(crop, &frame, image.Pt(FrameSize, FrameSize*3/4), 0, 0, gocv.InterpolationArea)
		crop.Close()
		buf, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, frame, []int{gocv.IMWriteJpegQuality, 85})
		frame.Close()
		if err != nil {
			continue
		}
		jpeg := append([]byte(nil), buf.GetBytes()...)
		buf.Close()
		got, err := set.AnalyzeFrameJPEG(ctx, jpeg, analyzers.FrameMeta{Camera: analyzers.CameraMain, Enrolled: enr})
		if err != nil {
			return nil, err
		}
		if len(got.Faces) != 1 {
			continue
		}
		g := got.Faces[0]
		if g.Match == nil || g.Match.SamePerson || g.Yaw == nil || math.Abs(float64(*g.Yaw)) >= 25 ||
			math.Abs(float64(*g.Pitch)) >= 20 {
			continue
		}
		out = append(out, jpeg)
	}
	return out, nil
}
