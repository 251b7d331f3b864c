package bench

import (
	"math/rand/v2"

	"gocv.io/x/gocv"

	"proctor/internal/scenario"
)

// shot is one frame a session posts, and what it shows.
type shot struct {
	label string
	jpeg  []byte
}

// sessionScript is a candidate's session, in seconds at the platform's 1 frame/s: mostly the
// candidate at the desk (with sensor noise, so no two frames are the same bytes; with
// Options.Moving shifting in view every postureSecs), an empty room
// while they fetch something, a second person, and back. Sessions start at different points of
// it so that the events do not all coincide.
var sessionScript = []struct {
	label string
	secs  int
}{
	{"candidate", 25}, {"nobody", 6}, {"candidate", 20}, {"group", 4}, {"candidate", 15},
}

// postureSecs is how long a moving candidate holds still: then the frame shows them a little
// shifted or closer (the scenario's crops of the same photo, a few percent of the face width
// apart; the background moves with them, as when the laptop is nudged).
const postureSecs = 4

// variants of each shot with camera noise (different bytes, the same scene).
const variants = 4

// sessionTimelines builds each session's frames from the scenario's photos.
func sessionTimelines(f *scenario.Frames, sessions, perSession int, moving bool, seed uint64) ([][]shot, error) {
	pools := map[string][][]byte{"candidate": f.Candidate, "nobody": f.Nobody, "group": f.Group}
	rng := rand.New(rand.NewPCG(seed, 7))
	type key struct {
		base *byte
		v    int
	}
	noisy := map[key][]byte{} // base JPEG + variant → noisy JPEG
	variant := func(base []byte, v int) ([]byte, error) {
		key := key{&base[0], v}
		if b, ok := noisy[key]; ok {
			return b, nil
		}
		b, err := addNoise(base, rng)
		if err != nil {
			return nil, err
		}
		noisy[key] = b
		return b, nil
	}
	total := 0
	for _, p := range sessionScript {
		total += p.secs
	}
	out := make([][]shot, sessions)
	for s := range sessions {
		offset := (s * 17) % total
		for k := range perSession {
			// One candidate per session, the same person all along.
			cand := f.Candidate[s%len(f.Candidate)]
			if moving {
				cand = f.Candidate[(s+k/postureSecs)%len(f.Candidate)]
			}
			t := (k + offset) % total
			label := ""
			for _, p := range sessionScript {
				if t < p.secs {
					label = p.label
					break
				}
				t -= p.secs
			}
			base := cand
			if label != "candidate" {
				pool := pools[label]
				base = pool[(s+k/30)%len(pool)]
			}
			b, err := variant(base, k%variants)
			if err != nil {
				return nil, err
			}
			out[s] = append(out[s], shot{label, b})
		}
	}
	return out, nil
}

// addNoise re-encodes a JPEG with camera noise (σ≈2 levels) and a brightness flicker of ±1.
func addNoise(data []byte, rng *rand.Rand) ([]byte, error) {
	img, err := gocv.IMDecode(data, gocv.IMReadColor)
	if err != nil {
		return nil, err
	}
	defer img.Close()
	noise := gocv.NewMatWithSize(img.Rows(), img.Cols(), gocv.MatTypeCV8UC3)
	defer noise.Close()
	gocv.RandN(&noise, gocv.NewScalar(2, 2, 2, 0), gocv.NewScalar(2, 2, 2, 0))
	gocv.Add(img, noise, &img)
	shift := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(float64(rng.IntN(3)), float64(rng.IntN(3)), float64(rng.IntN(3)), 0),
		img.Rows(), img.Cols(), gocv.MatTypeCV8UC3)
	defer shift.Close()
	gocv.Subtract(img, shift, &img)
	buf, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, img, []int{gocv.IMWriteJpegQuality, 85})
	if err != nil {
		return nil, err
	}
	defer buf.Close()
	return append([]byte(nil), buf.GetBytes()...), nil
}
