package models

import (
	"fmt"
	"strings"
)

// Face-analysis model families (after detection): how a crop is fed and the outputs read. The
// detector family ("ultraface") is validated in manifest.go.
const (
	// FamilyLandmarks68 is a 68-point landmark regressor: the detector's box, stretched to the
	// input size, grey, pixel/256 → [1,136] x0,y0,x1,y1… normalised to the box (0..1), in the
	// iBUG-300W order (0–16 jaw, 36–41 left eye, 42–47 right eye, 30 nose tip, 48/54 mouth
	// corners).
	FamilyLandmarks68 = "landmarks68"
	// FamilyFaceEmbedding is a face recogniser: a 112×112 crop aligned on 5 landmarks to the
	// ArcFace template (see AlignFace) → [1,Dim] embedding, compared by cosine similarity.
	FamilyFaceEmbedding = "face-embedding"
	// FamilyHopenet is a Hopenet-style head-pose classifier: the box expanded by a quarter on
	// each side, stretched to the input → three [1,Dim] logit vectors (yaw, pitch, roll) over
	// bins of 3° from −99°; the angle is the softmax expectation.
	FamilyHopenet = "hopenet"
)

func isFaceFamily(f string) bool {
	switch f {
	case FamilyLandmarks68, FamilyFaceEmbedding, FamilyHopenet:
		return true
	}
	return false
}

// validateFace checks a manifest of a face-analysis family.
func (m *Manifest) validateFace() error {
	problems := m.identityProblems()
	in := m.Input
	if in.Width <= 0 || in.Height <= 0 || in.Name == "" {
		problems = append(problems, "input name, width and height are required")
	}
	if in.Layout != "NCHW" {
		problems = append(problems, fmt.Sprintf("input layout %q unsupported (want NCHW)", in.Layout))
	}
	switch m.GraphOptimization {
	case "", "all", "extended", "basic", "none":
	default:
		problems = append(problems, fmt.Sprintf("graph_optimization %q unknown (all, extended, basic, none)", m.GraphOptimization))
	}
	wantOutputs := 1
	switch m.Decode.Family {
	case FamilyLandmarks68:
		if in.Colour != "GRAY" || in.Resize != "stretch" {
			problems = append(problems, "landmarks68 wants colour GRAY and resize stretch")
		}
		if m.Decode.Dim != 136 {
			problems = append(problems, "landmarks68 wants dim 136")
		}
	case FamilyFaceEmbedding:
		if (in.Colour != "RGB" && in.Colour != "BGR") || in.Resize != "align" || in.Width != in.Height ||
			in.Width < 32 || in.Width > 512 || in.Zoom < 0 || in.Zoom > 4 || in.Shift < -0.5 || in.Shift > 0.5 {
			problems = append(problems, "face-embedding wants colour RGB or BGR, resize align, a square input of 32 to 512 pixels, zoom 0 to 4 and shift -0.5 to 0.5")
		}
		if m.Decode.Dim <= 0 {
			problems = append(problems, "face-embedding needs dim")
		}
		if s := m.Thresholds.Similarity; s <= -1 || s >= 1 || s == 0 {
			problems = append(problems, "face-embedding needs thresholds.similarity in (-1,1)")
		}
	case FamilyHopenet:
		if (in.Colour != "RGB" && in.Colour != "BGR") || in.Resize != "stretch" {
			problems = append(problems, "hopenet wants colour RGB or BGR and resize stretch")
		}
		if m.Decode.Dim <= 0 {
			problems = append(problems, "hopenet needs dim (bins)")
		}
		wantOutputs = 3
	}
	if len(m.Decode.Outputs) != wantOutputs {
		problems = append(problems, fmt.Sprintf("%s needs %d output name(s) in decode.outputs", m.Decode.Family, wantOutputs))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w %s: %s", ErrBadManifest, m.Name, strings.Join(problems, "; "))
	}
	return nil
}
