package rules

import (
	"proctor/analyzers"
	"proctor/store"
)

// Flag types of the face-presence check.
const (
	FaceAbsent    = "FACE_ABSENT"
	MultipleFaces = "MULTIPLE_FACES"
)

// Settings of the face-presence check.
const (
	SettingFaceAbsentAfter    = "face_absent_after_sec"
	SettingMultipleFacesAfter = "multiple_faces_after_sec"
)

// The face-presence check judges the main camera only: the evidence camera films from behind
// and rarely sees the candidate's face.
func init() {
	Register(Check{
		Name:      "faces",
		Doc:       "The candidate's face is in the main camera, and only theirs.",
		Input:     InputFrames,
		Analyzers: []string{"faces"},
		DecidedBy: "faces",
		Flags: []FlagType{
			{Type: FaceAbsent, Severity: store.SeverityDetection, Weight: 0.3,
				Doc: "No face in the main camera."},
			{Type: MultipleFaces, Severity: store.SeverityAlert, Weight: 0.6,
				Doc: "Two or more faces in the main camera: someone may be helping."},
		},
		Settings: []Setting{
			// 5 s: shorter catches a candidate bending to pick up a pen.
			{Key: SettingFaceAbsentAfter, Unit: Seconds, Default: 5, Min: 0.5, Max: 600,
				Doc: "No face this long raises FACE_ABSENT."},
			// 2 s, so one frame with a face-like poster or a detector glitch raises nothing.
			{Key: SettingMultipleFacesAfter, Unit: Seconds, Default: 2, Min: 0.5, Max: 600,
				Doc: "Two or more faces this long raise MULTIPLE_FACES."},
		},
		Labels: []string{"persons"},
		// n: faces found; top: the best detector score even below threshold (a face just under
		// it is weak evidence of absence); second: the second face's score.
		Observe: func(obs *analyzers.Observation, _ string, _ Params) Signal {
			s := Signal{"n": float32(len(obs.Faces)), "top": obs.TopFaceScore}
			if len(obs.Faces) >= 2 {
				s["second"] = secondBestFace(obs.Faces)
			}
			return s
		},
		Rules: func(p Params) []FrameRule {
			faces := func(f *Frame) (float32, bool) { return f.Signal("faces").Get("n") }
			return []FrameRule{
				{Type: FaceAbsent, Camera: analyzers.CameraMain, After: p.Duration(SettingFaceAbsentAfter),
					Holds:      func(f *Frame) bool { n, ok := faces(f); return ok && n == 0 },
					Confidence: func(f *Frame) float64 { return 1 - float64(f.Signal("faces")["top"]) }},
				{Type: MultipleFaces, Camera: analyzers.CameraMain, After: p.Duration(SettingMultipleFacesAfter),
					Holds:      func(f *Frame) bool { n, ok := faces(f); return ok && n >= 2 },
					Confidence: func(f *Frame) float64 { return float64(f.Signal("faces")["second"]) }},
			}
		},
	})
}

func secondBestFace(faces []analyzers.Face) float32 {
	var a, b float32
	for _, f := range faces {
		if f.Score > a {
			a, b = f.Score, a
		} else if f.Score > b {
			b = f.Score
		}
	}
	return b
}
