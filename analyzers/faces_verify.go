package analyzers

import (
	"fmt"

	"proctor/models"
)

// A second face detector as a second opinion for the faces analyzer (FacesConfig.NoVerifier,
// NoAgreement): UltraFace's mistakes on the dev photos (an ear, a hand, fur, half a face as a
// second face; a masked face with sunglasses just below the threshold) are mostly not
// BlazeFace's, a different network trained on different data. It runs only on frames with
// several faces or none, never on the ordinary one-face frame.

// verifyIoU is how much a verifier box must overlap a face to vouch for it. Low on purpose:
// BlazeFace's boxes are square and sit lower than UltraFace's; what keeps a half face or an
// ear out is that each verifier box vouches for one face only (mask/train: IoU 0.1 left 2 of
// 11 one-person frames counted as several, 0.2 and 0.3 left 3).
const verifyIoU = 0.1

// agreeIoU is the overlap at which an UltraFace box and an agreeing box are the same face.
const agreeIoU = 0.3

func openBlazeFace(name string, threads int) (*models.BlazeFace, error) {
	m, err := models.Load(name)
	if err != nil {
		return nil, fmt.Errorf("faces analyzer: %w", err)
	}
	b, err := models.NewBlazeFace(m, models.SessionOptions{IntraOpThreads: threads})
	if err != nil {
		return nil, fmt.Errorf("faces analyzer: %w", err)
	}
	return b, nil
}

// appendBetween appends to dst the boxes scoring from lo up to (not including) hi.
func appendBetween(dst, boxes []models.FaceBox, lo, hi float32) []models.FaceBox {
	for _, b := range boxes {
		if b.Score >= lo && b.Score < hi {
			dst = append(dst, b)
		}
	}
	return dst
}

// verify keeps the faces the verifier vouches for (vouched), on a frame with several faces.
func (a *Faces) verify(faces []models.FaceBox, f *Frame) ([]models.FaceBox, error) {
	a.Verified++
	var err error
	if a.blaze, _, err = a.verifier.Detect(a.blaze[:0], f.Image, a.verifyScore); err != nil {
		return faces, err
	}
	toFrame(a.blaze, f, 0, 0)
	n := len(faces)
	faces = vouched(faces, a.blaze, verifyIoU)
	a.Unverified += n - len(faces)
	return faces, nil
}

// vouched keeps, in place, the best face (faces come best first) and each other face that a
// verifier box of its own overlaps by minIoU or more: each face in turn takes the unused box
// overlapping it most, so one box never vouches for two faces (two halves of one face, an ear
// beside it). It marks the boxes it uses (Score -1).
func vouched(faces, boxes []models.FaceBox, minIoU float32) []models.FaceBox {
	n := 0
	for i, fc := range faces {
		best, bestIoU := -1, minIoU
		for j, b := range boxes {
			if b.Score < 0 {
				continue // vouched for another face already
			}
			if v := faceIoU(fc, b); v >= bestIoU {
				best, bestIoU = j, v
			}
		}
		if best >= 0 {
			boxes[best].Score = -1
		}
		if best >= 0 || i == 0 {
			faces[n] = fc
			n++
		}
	}
	return faces[:n]
}

// agreement looks for one face on a frame both passes found empty: the best UltraFace box
// below the threshold (a.low, both passes) that the agreeing detector also sees, on the frame
// or on the second pass's padded frame (a.scratch, still holding this frame).
func (a *Faces) agreement(dst []models.FaceBox, f *Frame) ([]models.FaceBox, error) {
	a.AgreementPasses++
	var err error
	if a.blaze, _, err = a.agree.Detect(a.blaze[:0], f.Image, a.agreeScore); err != nil {
		return dst, err
	}
	toFrame(a.blaze, f, 0, 0)
	if a.secondPass && !a.scratch.Empty() {
		first := len(a.blaze)
		if a.blaze, _, err = a.agree.Detect(a.blaze, a.scratch, a.agreeScore); err != nil {
			return dst, err
		}
		bw, bh := int(float32(f.Image.Cols())*a.pad+0.5), int(float32(f.Image.Rows())*a.pad+0.5)
		toFrame(a.blaze[first:], f, bw, bh)
	}
	var best models.FaceBox
	for _, u := range a.low {
		if u.Score <= best.Score {
			continue
		}
		for _, b := range a.blaze {
			if faceIoU(u, b) >= agreeIoU {
				best = u
				break
			}
		}
	}
	if best.Score == 0 {
		return dst, nil
	}
	a.Agreed++
	return append(dst, best), nil
}

// toFrame maps boxes found on f.Image, or on it padded by padX, padY pixels per side, to the
// frame's original pixels, clipped to the frame.
func toFrame(boxes []models.FaceBox, f *Frame, padX, padY int) {
	sx, sy := float32(f.Width)/float32(f.Image.Cols()), float32(f.Height)/float32(f.Image.Rows())
	W, H := float32(f.Width), float32(f.Height)
	for i, b := range boxes {
		x1, y1 := max((b.X-float32(padX))*sx, 0), max((b.Y-float32(padY))*sy, 0)
		x2, y2 := min((b.X+b.W-float32(padX))*sx, W), min((b.Y+b.H-float32(padY))*sy, H)
		boxes[i] = models.FaceBox{X: x1, Y: y1, W: max(x2-x1, 0), H: max(y2-y1, 0), Score: b.Score}
	}
}

func faceIoU(a, b models.FaceBox) float32 {
	i := intersection(a, b)
	if i <= 0 {
		return 0
	}
	return i / (a.W*a.H + b.W*b.H - i)
}
