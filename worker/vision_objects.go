package worker

import (
	"proctor/analyzers"
	"proctor/store"
)

// objectColumns copies what the "persons" and "attire" analyzers saw into the frame's columns,
// which the rules of rules/vision_objects.go read: counts and scores, NULL when not measured.
func objectColumns(fr *store.FrameResult, obs *analyzers.Observation) {
	fr.Persons, fr.Phones = obs.Persons, obs.Phones
	if obs.Persons != nil {
		fr.SecondPersonScore = analyzers.SecondBest(obs.Objects, analyzers.ClassPerson)
	}
	if obs.Phones != nil {
		fr.PhoneScore = analyzers.Best(obs.Objects, analyzers.ClassPhone)
	}
	// The main face among those the attire analyzer classified (a prefix of Faces).
	n := 0
	for n < len(obs.Faces) && (obs.Faces[n].Mask != nil || obs.Faces[n].Occluded != nil) {
		n++
	}
	if i := analyzers.MainFace(obs.Faces, n); n > 0 && i >= 0 {
		f := &obs.Faces[i]
		if f.Mask != nil {
			s := f.Mask.Score
			fr.MaskScore = &s
		}
		if f.Occluded != nil {
			s := f.Occluded.Score
			fr.OccludedScore = &s
		}
	}
}
