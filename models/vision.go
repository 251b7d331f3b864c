package models

import (
	"fmt"
	"strings"

	ort "github.com/yalue/onnxruntime_go"
)

// Vision model families of part B (persons, phones, face attributes): how a frame or a crop is fed
// and the outputs read.
const (
	// FamilyNanoDet is a NanoDet (GFL head) COCO detector: a letterboxed NCHW frame → per stride s
	// two outputs, "cls_s" [1,N,C] sigmoid class scores and "reg_s" [1,N,4*(RegMax+1)] distance
	// distributions of the box sides (left, top, right, bottom) from the cell centre, in strides.
	FamilyNanoDet = "nanodet"
	// FamilyFaceAttributes is a classifier of the aligned 112×112 face crop (Frame.FaceCrops) →
	// [N,len(Labels)] independent sigmoid scores, one per label (e.g. mask, occluded).
	FamilyFaceAttributes = "face-attributes"
)

// VisionSpec is the part of a manifest specific to the vision families above.
type VisionSpec struct {
	// Strides of the detector's output levels (nanodet), e.g. [8, 16, 32]; output names are
	// Decode.ScoresOutput+"_"+stride and Decode.BoxesOutput+"_"+stride.
	Strides []int `json:"strides,omitempty"`
	// RegMax is the last distance bin of the box distribution (nanodet): 4*(RegMax+1) values.
	RegMax int `json:"reg_max,omitempty"`
	// NumClasses is the number of class scores per cell (nanodet: 80 COCO classes).
	NumClasses int `json:"num_classes,omitempty"`
	// Classes maps the class names the service uses to their index in the class scores.
	Classes map[string]int `json:"classes,omitempty"`
	// Labels are the output columns of a face-attributes model, in order.
	Labels []string `json:"labels,omitempty"`
	// Scores are the default score thresholds per class (nanodet) or label (face-attributes).
	Scores map[string]float32 `json:"scores,omitempty"`
}

func isVisionFamily(f string) bool {
	return f == FamilyNanoDet || f == FamilyFaceAttributes || f == FamilyEarAttributes
}

// validateVision checks a manifest of a vision family.
func (m *Manifest) validateVision() error {
	problems := m.identityProblems()
	in := m.Input
	if in.Width <= 0 || in.Height <= 0 || in.Name == "" || in.Layout != "NCHW" ||
		(in.Colour != "RGB" && in.Colour != "BGR") {
		problems = append(problems, "input needs name, width, height, layout NCHW and colour RGB or BGR")
	}
	v := m.Vision
	if v == nil {
		problems = append(problems, "vision section is required for family "+m.Decode.Family)
		v = &VisionSpec{}
	}
	switch m.Decode.Family {
	case FamilyNanoDet:
		if in.Resize != "letterbox" {
			problems = append(problems, "nanodet wants resize letterbox")
		}
		if len(v.Strides) == 0 || v.RegMax <= 0 || v.NumClasses <= 0 || m.Decode.ScoresOutput == "" || m.Decode.BoxesOutput == "" {
			problems = append(problems, "nanodet needs vision.strides, reg_max, num_classes and decode scores_output/boxes_output")
		}
		for name, c := range v.Classes {
			if c < 0 || c >= v.NumClasses {
				problems = append(problems, fmt.Sprintf("class %q index %d out of range", name, c))
			}
			if s := v.Scores[name]; s <= 0 || s >= 1 {
				problems = append(problems, fmt.Sprintf("class %q needs a score threshold in (0,1)", name))
			}
		}
		if t := m.Thresholds.NMSIoU; t <= 0 || t > 1 {
			problems = append(problems, "nanodet needs thresholds.nms_iou in (0,1]")
		}
	case FamilyFaceAttributes, FamilyEarAttributes:
		switch {
		case m.Decode.Family == FamilyFaceAttributes && (in.Resize != "align" || in.Width != AlignedSize || in.Height != AlignedSize):
			problems = append(problems, fmt.Sprintf("face-attributes wants resize align and a %dx%d input", AlignedSize, AlignedSize))
		case m.Decode.Family == FamilyEarAttributes && (in.Resize != "ear" || in.Width != EarCropW || in.Height != EarCropH):
			problems = append(problems, fmt.Sprintf("ear-attributes wants resize ear and a %dx%d input", EarCropW, EarCropH))
		}
		if len(v.Labels) == 0 || len(m.Decode.Outputs) != 1 {
			problems = append(problems, m.Decode.Family+" needs vision.labels and one decode.outputs name")
		}
		for _, l := range v.Labels {
			if s := v.Scores[l]; s <= 0 || s >= 1 {
				problems = append(problems, fmt.Sprintf("label %q needs a score threshold in (0,1)", l))
			}
		}
	}
	if m.Source.Registry == RegistryProject && !strings.HasPrefix(m.File, "trained/") {
		problems = append(problems, "a project model's file must be under trained/")
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w %s: %s", ErrBadManifest, m.Name, strings.Join(problems, "; "))
	}
	return nil
}

// newVisionSession creates a session with tensors bound once, from the cache file or, for a
// project model, from the bytes compiled into the binary.
func newVisionSession(m *Manifest, inputs, outputs []string, in, out []ort.Value, o SessionOptions) (*ort.AdvancedSession, error) {
	if err := InitRuntime(); err != nil {
		return nil, err
	}
	if m.Source.Registry == RegistryProject || m.data != nil {
		data, err := ModelBytes(m)
		if err != nil {
			return nil, err
		}
		return openSession(o, func(opts *ort.SessionOptions) (*ort.AdvancedSession, error) {
			return ort.NewAdvancedSessionWithONNXData(data, inputs, outputs, in, out, opts)
		})
	}
	if m.Path == "" {
		return nil, fmt.Errorf("model %s: manifest must come from models.Load (no verified file path)", m.ID())
	}
	return openSession(o, func(opts *ort.SessionOptions) (*ort.AdvancedSession, error) {
		return ort.NewAdvancedSession(m.Path, inputs, outputs, in, out, opts)
	})
}
