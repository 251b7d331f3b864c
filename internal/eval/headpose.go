package eval

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"math"
	"path/filepath"

	"proctor/analyzers"
	"proctor/rules"
)

// evalHeadPose has no pose labels to work with (none of the dev photos has them), so it measures
// what can be measured without: how often the LOOKING_AWAY limits fire on portraits of people
// facing the camera (identities/, identities-crops/ — a false-alarm rate, assuming they all face
// it), and how consistent yaw is under mirroring (yaw(mirror) should be −yaw).
func evalHeadPose(ctx context.Context, env *Env) ([]Row, error) {
	has := false
	for _, a := range env.Set.Analyzers() {
		has = has || a.Name() == "headpose"
	}
	if !has {
		env.Note("headpose: the set has no headpose analyzer: skipped")
		return nil, nil
	}
	p := rules.New(rules.Config{}).Params()
	yawLimit, pitchLimit := p.Value(rules.SettingYawLimit), p.Value(rules.SettingPitchLimit)
	var n, away, mirrored int
	var mirrorErr, absYaw, absPitch float64
	for _, dir := range []string{"identities", "identities-crops"} {
		names, imgs := listPeople(filepath.Join(env.Data, dir))
		for _, name := range names {
			for _, p := range imgs[name] {
				data, err := ReadJPEG(p)
				if err != nil {
					return nil, err
				}
				yaw, pitch, ok, err := mainPose(ctx, env, data)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", p, err)
				}
				if !ok {
					continue
				}
				n++
				absYaw += math.Abs(yaw)
				absPitch += math.Abs(pitch)
				if math.Abs(yaw) > yawLimit || math.Abs(pitch) > pitchLimit {
					away++
					env.Logf("  headpose: %s: yaw %.0f pitch %.0f beyond the limits", rel(env.Data, p), yaw, pitch)
				}
				flipped, err := mirrorJPEG(data)
				if err != nil {
					return nil, err
				}
				myaw, _, ok, err := mainPose(ctx, env, flipped)
				if err != nil {
					return nil, err
				}
				if ok {
					mirrored++
					mirrorErr += math.Abs(yaw + myaw)
				}
			}
		}
	}
	if n == 0 {
		env.Note("headpose: no identities/ or identities-crops/ under %s: skipped", env.Data)
		return nil, nil
	}
	return []Row{{Check: "headpose: looking away on frontal portraits", Split: "test", N: n,
		Precision: math.NaN(), Recall: math.NaN(), F1: math.NaN(),
		Note: fmt.Sprintf("false alarms %d/%d (limits yaw %.0f°, pitch %.0f°); mean |yaw| %.1f°, |pitch| %.1f°; mirror |yaw+yaw'| %.1f° over %d; no pose labels, so no recall",
			away, n, yawLimit, pitchLimit, absYaw/float64(n), absPitch/float64(n), mirrorErr/float64(max(mirrored, 1)), mirrored)}}, nil
}

// mainPose is the yaw and pitch of the main face, ok false when there is none.
func mainPose(ctx context.Context, env *Env, data []byte) (yaw, pitch float64, ok bool, err error) {
	obs, err := env.Analyze(ctx, data, analyzers.FrameMeta{}, nil)
	if err != nil {
		return 0, 0, false, err
	}
	i := analyzers.MainFace(obs.Faces, 0)
	if i < 0 || obs.Faces[i].Yaw == nil {
		return 0, 0, false, nil
	}
	return float64(*obs.Faces[i].Yaw), float64(*obs.Faces[i].Pitch), true, nil
}

func mirrorJPEG(data []byte) ([]byte, error) {
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	b := img.Bounds()
	out := image.NewRGBA(b)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			out.Set(b.Max.X-1-(x-b.Min.X), y, img.At(x, y))
		}
	}
	return encodeJPEG(out)
}
