package analyzers

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"image/color"
	"slices"

	"gocv.io/x/gocv"

	"proctor/models"
)

func init() {
	Register("faces", func(cfg *Config) (Analyzer, error) { return NewFaces(cfg.Faces) })
}

// FacesConfig configures the "faces" analyzer. Zero values take the defaults noted; the threshold
// defaults live in the model's manifest (models/manifests/<model>.json) so that a retuned or newer
// model is a data change.
type FacesConfig struct {
	// Model is the manifest name of the face detector. Default "ultraface-rfb-320".
	Model string `json:"model,omitempty"`
	// ScoreThreshold is the minimum face score. Default: the manifest's thresholds.score.
	// Raising it loses small, blurred and profile faces; lowering it lets hair, hands and
	// patterned cloth through (see the manifest for the measured trade-off).
	ScoreThreshold float32 `json:"score_threshold,omitempty"`
	// NMSIoU is the overlap above which two boxes count as one face. Default: the manifest's
	// thresholds.nms_iou.
	NMSIoU float32 `json:"nms_iou,omitempty"`
	// MinFace is the minimum face height as a fraction of the frame height; negative disables it.
	// Default: the manifest's thresholds.min_face.
	MinFace float32 `json:"min_face,omitempty"`
	// DecodeSide is the longest side this analyzer wants the JPEG decoded at. Default: the
	// model's longest input side (320). A 1920 px frame is then decoded at 1/4 scale (480 px):
	// measured on ../shared/data/faces, face counts are identical to 1/2-scale and full decodes,
	// and it saves ~10 ms per 1920 px frame.
	DecodeSide int `json:"decode_side,omitempty"`
	// Threads is the intra-op thread count of the model session. Default 1 (one detector per
	// worker; parallelism comes from workers).
	Threads int `json:"threads,omitempty"`

	// Contained is the share of a box's area lying inside a stronger face box above which it is
	// part of that face, not a second one. Default 0.5; negative disables. On tight crops the
	// detector adds boxes on the eyes (glasses), half the face or the forehead that overlap the
	// whole-face box by less than NMSIoU because they are small: 13 of the 14 double counts on
	// identities-rmfd were such boxes (docs/vision.md, "Face presence"). Faces of two people
	// overlap far less (at most 0.2 in multi_person/ and mask/dev).
	Contained float32 `json:"contained,omitempty"`
	// MinSecondFace is the smallest height, as a fraction of the largest face's height, at which
	// another face counts. Default 0.25; negative disables. Smaller boxes beside a candidate's
	// face were faces on posters and pictures behind them, ears and hands; a second person
	// leaning into a laptop camera's view is rarely less than half the candidate's face height.
	MinSecondFace float32 `json:"min_second_face,omitempty"`
	// NoSecondPass turns off the second pass. By default, when no face reaches the threshold, the
	// detector runs again on the frame padded with a grey border of SecondPassPad of its size on
	// each side: a face that fills the frame or is cut by its edge (a candidate leaning in, a
	// tight crop) is missed at 320x240 because no anchor covers it, and with room around it the
	// same model finds it. It costs one more detector run (~4 ms CPU), on empty frames only.
	// (Running the detector on the top-centre of the frame enlarged was tried too: on the dev
	// photos it found 1 missed face and 5 faces in face-free crops, so it is not done.)
	NoSecondPass bool `json:"no_second_pass,omitempty"`
	// SecondPassPad is the border of the second pass, as a fraction of the frame's width and
	// height per side. Default 0.5, the border registration photos get (EnrollPadding): 0.3
	// recovers more masked faces on mask/train (98 vs 78 of 160 missed) but found two faces in
	// the 178 face-free crops, 0.5 none (docs/vision.md).
	SecondPassPad float32 `json:"second_pass_pad,omitempty"`
	// SecondPassScore is the minimum face score of the second pass. Default: ScoreThreshold.
	SecondPassScore float32 `json:"second_pass_score,omitempty"`
	// NoConfirmSeveral turns off the confirmation of several faces. By default, when the first
	// pass finds two or more faces, the padded pass runs too and the frame keeps only the faces
	// it confirms: each of the padded pass's faces stands for the first-pass boxes lying mostly
	// inside it. On a face filling the frame the first pass often returns two eye boxes
	// (glasses) or two halves of the face side by side, none containing the other; with room
	// around it the detector sees one face. Costs one detector run on frames with several faces.
	NoConfirmSeveral bool `json:"no_confirm_several,omitempty"`

	// NoVerifier turns off the second opinion on extra faces. By default, on a frame still
	// showing two or more faces, a different detector (VerifierModel, MediaPipe BlazeFace) runs
	// on the whole frame and a face other than the best one counts only if a box of its own
	// (each box vouches for one face) scoring VerifyScore or more overlaps it. Ears, hands,
	// fur, a dog and half a face that UltraFace scores 0.7-1.0 are seldom faces to BlazeFace.
	// Costs one BlazeFace run (about 1.7 UltraFace runs of CPU) on frames with several faces
	// only.
	NoVerifier bool `json:"no_verifier,omitempty"`
	// VerifierModel is the manifest name of the verifying detector. Default "blazeface-back-256".
	VerifierModel string `json:"verifier_model,omitempty"`
	// VerifyScore is the verifier's minimum score for a box. Default 0.35 (mask/train tuning
	// frames, docs/vision.md: 0.25-0.35 keep 44 of 46 group photos, 0.4 loses one more).
	VerifyScore float32 `json:"verify_score,omitempty"`
	// NoAgreement turns off the agreement pass on empty frames. By default, when both passes
	// found no face at the threshold, a face still counts where UltraFace (either pass) scores
	// AgreeFaceScore or more and another detector (AgreeModel, BlazeFace front) scores
	// AgreeScore or more on the same spot (IoU 0.3): two different models rarely see the same
	// non-face (masked faces with sunglasses, low-resolution images). Costs two BlazeFace front
	// runs (about half an UltraFace run each) on empty frames with such a box only.
	NoAgreement bool `json:"no_agreement,omitempty"`
	// AgreeModel is the manifest name of the agreeing detector. Default "blazeface-front-128".
	AgreeModel string `json:"agree_model,omitempty"`
	// AgreeFaceScore is UltraFace's minimum score for an agreed face. Default 0.4.
	AgreeFaceScore float32 `json:"agree_face_score,omitempty"`
	// AgreeScore is the agreeing detector's minimum score. Default 0.5.
	AgreeScore float32 `json:"agree_score,omitempty"`
	// NoTilted turns off the tilted look (faces_tilted.go). By default, on a main-camera frame
	// every other pass found empty, the detector runs on the frame turned TiltDegrees each way,
	// and a face counts where both turns find one on the same spot. Costs two or four detector
	// runs, on empty frames only.
	NoTilted bool `json:"no_tilted,omitempty"`
	// TiltDegrees is the tilted look's turn. Default 20: on the 50 mask/train (tuning) frames
	// that show a face every other pass misses, turns of 10/15/20/25/30/35/45° found 16/24/24/
	// 17/18/16/14, with a face in 1/0/0/0/0/0/0 of the 35 tuning face-free frames
	// (docs/vision.md, "Face presence").
	TiltDegrees float32 `json:"tilt_degrees,omitempty"`
}

// Defaults of the face-count filters and the second pass (FacesConfig), chosen on the tuning
// photos (mask/train, the dev half of identities-rmfd; docs/vision.md).
const (
	DefaultContained     = 0.5
	DefaultMinSecondFace = 0.25
	DefaultSecondPassPad = 0.5

	DefaultVerifierModel  = "blazeface-back-256"
	DefaultVerifyScore    = 0.35
	DefaultAgreeModel     = "blazeface-front-128"
	DefaultAgreeFaceScore = 0.4
	DefaultAgreeScore     = 0.5
	DefaultTiltDegrees    = 20
)

// DefaultFacesModel is the face detector used when FacesConfig.Model is empty.
const DefaultFacesModel = "ultraface-rfb-320"

// Faces finds faces in a frame: it fills Observation.Faces (boxes in original pixels, best
// first) and Observation.TopFaceScore. Like every Analyzer it is not safe for concurrent use.
type Faces struct {
	det           *models.FaceDetector
	version       string
	decodeSide    int
	contained     float32
	minSecondFace float32
	secondPass    bool
	score, score2 float32 // first and second pass thresholds
	confirm       bool
	padded        []models.FaceBox // the padded pass's boxes, reused
	pad           float32
	buf           []models.FaceBox // reused between frames
	scratch       gocv.Mat         // the padded frame of the second pass, reused

	verifier    *models.BlazeFace // second opinion on extra faces; nil when off
	verifyScore float32
	agree       *models.BlazeFace // agreement pass on empty frames; nil when off
	agreeFace   float32           // UltraFace's minimum score for an agreed face
	agreeScore  float32
	low         []models.FaceBox // UltraFace boxes from agreeFace up to the pass's threshold
	// Whether the further looks on the frame being analysed were skipped or ran.
	looksSkipped, looksRan bool
	blaze                  []models.FaceBox // the BlazeFace boxes of the frame, reused
	tilt                   float64          // the tilted look's turn in degrees; 0 when off
	tilted                 gocv.Mat         // the turned frame of the tilted look, reused
	turned                 []models.FaceBox // the tilted look's boxes, reused
	// SecondPasses counts frames the second pass was run on and found a face on (for the eval).
	SecondPasses, SecondPassFound int
	// Verified counts frames the verifier ran on, Unverified the extra faces it dropped;
	// AgreementPasses the frames the agreement pass ran on, Agreed those it found a face on
	// (for the eval and tests).
	Verified, Unverified, AgreementPasses, Agreed int
	// TiltedPasses counts frames the tilted look ran on, TiltedFound those it found a face on.
	TiltedPasses, TiltedFound int
}

// NewFaces loads (and checksums) the model and builds its detector.
func NewFaces(cfg FacesConfig) (*Faces, error) {
	name := cfg.Model
	if name == "" {
		name = DefaultFacesModel
	}
	m, err := models.Load(name)
	if err != nil {
		return nil, fmt.Errorf("faces analyzer: %w", err)
	}
	score := cfg.ScoreThreshold
	if score == 0 {
		score = m.Thresholds.Score
	}
	// One detector serves both passes: it keeps boxes down to the lower of the two thresholds,
	// and each pass drops those below its own (greedy NMS keeps the same boxes above a
	// threshold whatever it saw below it).
	pass2 := cfg.SecondPassScore
	if pass2 <= 0 {
		pass2 = score
	}
	lowest := min(score, pass2)
	agreeFace := orDefault(cfg.AgreeFaceScore, DefaultAgreeFaceScore)
	if !cfg.NoAgreement {
		lowest = min(lowest, agreeFace)
	}
	det, err := models.NewFaceDetector(m, models.DetectorOptions{
		SessionOptions: models.SessionOptions{IntraOpThreads: cfg.Threads},
		ScoreThreshold: lowest,
		NMSIoU:         cfg.NMSIoU,
		MinFace:        cfg.MinFace,
	})
	if err != nil {
		return nil, fmt.Errorf("faces analyzer: %w", err)
	}
	side := cfg.DecodeSide
	if side <= 0 {
		side = max(m.Input.Width, m.Input.Height)
	}
	t := det.Thresholds()
	a := &Faces{
		det:           det,
		decodeSide:    side,
		contained:     orDefault(cfg.Contained, DefaultContained),
		minSecondFace: orDefault(cfg.MinSecondFace, DefaultMinSecondFace),
		secondPass:    !cfg.NoSecondPass,
		score:         score,
		score2:        pass2,
		confirm:       !cfg.NoConfirmSeveral,
		pad:           orDefault(cfg.SecondPassPad, DefaultSecondPassPad),
		buf:           make([]models.FaceBox, 0, 16),
		scratch:       gocv.NewMat(),
		verifyScore:   orDefault(cfg.VerifyScore, DefaultVerifyScore),
		agreeFace:     agreeFace,
		agreeScore:    orDefault(cfg.AgreeScore, DefaultAgreeScore),
		tilted:        gocv.NewMat(),
	}
	if !cfg.NoTilted {
		a.tilt = float64(orDefault(cfg.TiltDegrees, DefaultTiltDegrees))
	}
	if !cfg.NoVerifier {
		if a.verifier, err = openBlazeFace(cmp.Or(cfg.VerifierModel, DefaultVerifierModel), cfg.Threads); err != nil {
			a.Close()
			return nil, err
		}
	}
	if !cfg.NoAgreement {
		if a.agree, err = openBlazeFace(cmp.Or(cfg.AgreeModel, DefaultAgreeModel), cfg.Threads); err != nil {
			a.Close()
			return nil, err
		}
	}
	// The thresholds are part of the version: a flag raised at score 0.7 is not the same
	// evidence as one raised at 0.5.
	a.version = fmt.Sprintf("%s score=%g nms=%g min=%g contained=%g second=%g", m.ID(), score, t.NMSIoU, t.MinFace,
		max(a.contained, 0), max(a.minSecondFace, 0))
	if a.secondPass {
		a.version += fmt.Sprintf(" pass2=pad%g,score%g", a.pad, pass2)
	}
	if a.verifier != nil {
		a.version += fmt.Sprintf(" verify=%s,score%g", a.verifier.Manifest().ID(), a.verifyScore)
	}
	if a.agree != nil {
		a.version += fmt.Sprintf(" agree=%s,score%g,face%g", a.agree.Manifest().ID(), a.agreeScore, a.agreeFace)
	}
	if a.tilt != 0 {
		a.version += fmt.Sprintf(" tilted=%g", a.tilt)
	}
	return a, nil
}

// orDefault: 0 takes the default, a negative value disables (0).
func orDefault(v, def float32) float32 {
	switch {
	case v == 0:
		return def
	case v < 0:
		return 0
	}
	return v
}

// Name implements Analyzer.
func (a *Faces) Name() string { return "faces" }

// Version implements Analyzer: model name@version and the thresholds in effect.
func (a *Faces) Version() string { return a.version }

// DecodeSide implements SideNeeder.
func (a *Faces) DecodeSide() int { return a.decodeSide }

// Analyze implements Analyzer.
func (a *Faces) Analyze(_ context.Context, f *Frame, obs *Observation) error {
	var top float32
	var err error
	if a.buf, top, err = a.find(a.buf[:0], f, obs); err != nil {
		return err
	}
	if len(a.buf) == 0 && a.tilt != 0 && !a.looksSkipped {
		if a.buf, err = a.tiltedLook(a.buf, f); err != nil {
			return fmt.Errorf("faces: tilted look: %w", err)
		}
	}
	obs.TopFaceScore = top
	if len(a.buf) == 0 {
		obs.Faces = []Face{} // "faces": [] in JSON, not null; no allocation
	} else {
		// The observation outlives the frame (it is stored), so it gets its own slice.
		obs.Faces = make([]Face, len(a.buf))
		for i, b := range a.buf {
			obs.Faces[i] = Face{Box: [4]float32{b.X, b.Y, b.W, b.H}, Score: b.Score}
		}
	}
	if a.looksRan {
		f.Plan.Ran(LooksStep, f, obs)
	}
	return nil
}

// find runs the passes on one picture (the frame, or the frame turned by the tilted look) and
// returns the faces in f's pixels, best first, and the first passes' top score.
//
// With obs (the analysed frame, not a turned picture) it also decides the further looks on a
// frame the first pass saw empty: skipped on the evidence camera, and when the frame's Planner
// carries their last answer (ScheduleConfig.LooksEvery); a.looksSkipped and a.looksRan say
// which happened.
func (a *Faces) find(dst []models.FaceBox, f *Frame, obs *Observation) ([]models.FaceBox, float32, error) {
	dst, top, err := a.det.Detect(dst, f.Image, f.Width, f.Height)
	if err != nil {
		return dst, top, fmt.Errorf("faces: %w", err)
	}
	a.low = a.low[:0]
	if a.agree != nil {
		a.low = appendBetween(a.low, dst, a.agreeFace, a.score)
	}
	dst = atLeast(dst, 0, a.score)
	if obs != nil {
		a.looksSkipped, a.looksRan = false, false
		if len(dst) == 0 {
			switch {
			case f.Camera == CameraEvidence:
				// No rule reads the evidence camera's face count (FACE_ABSENT and MULTIPLE_FACES
				// are the main camera's; its faces are mostly the candidate's video on the
				// laptop); the schedule only watches it change, for which the first pass is
				// enough. The further looks would run on most of its frames.
				a.looksSkipped = true
			case f.Plan == nil:
			case f.Plan.Skip(LooksStep, f, obs):
				a.looksSkipped = true
			default:
				a.looksRan = true
			}
			if a.looksSkipped {
				return dst, top, nil
			}
		}
	}
	if len(dst) == 0 && a.secondPass {
		var top2 float32
		if dst, top2, err = a.secondLook(dst, f); err != nil {
			return dst, top, fmt.Errorf("faces: second pass: %w", err)
		}
		top = max(top, top2)
	}
	dst = filterFaces(dst, a.contained, a.minSecondFace)
	if len(dst) >= 2 && a.confirm {
		if dst, err = a.confirmSeveral(dst, f); err != nil {
			return dst, top, fmt.Errorf("faces: confirm: %w", err)
		}
	}
	if len(dst) >= 2 && a.verifier != nil {
		if dst, err = a.verify(dst, f); err != nil {
			return dst, top, fmt.Errorf("faces: verify: %w", err)
		}
	}
	if len(dst) == 0 && a.agree != nil && len(a.low) > 0 {
		if dst, err = a.agreement(dst, f); err != nil {
			return dst, top, fmt.Errorf("faces: agreement: %w", err)
		}
	}
	return dst, top, nil
}

// Close implements Analyzer.
func (a *Faces) Close() error {
	var errs []error
	if a.det != nil {
		errs = append(errs, a.det.Close())
	}
	for _, b := range []*models.BlazeFace{a.verifier, a.agree} {
		if b != nil {
			errs = append(errs, b.Close())
		}
	}
	a.scratch.Close()
	a.tilted.Close()
	return errors.Join(errs...)
}

// secondLook is the second pass on a frame where the first found no face: the frame padded
// with a neutral border. Boxes come back in the frame's original pixels, clipped to it.
func (a *Faces) secondLook(dst []models.FaceBox, f *Frame) ([]models.FaceBox, float32, error) {
	a.SecondPasses++
	first := len(dst)
	dst, top, err := a.padPass(dst, f)
	if a.agree != nil {
		a.low = appendBetween(a.low, dst[first:], a.agreeFace, a.score2)
	}
	dst = atLeast(dst, first, a.score2)
	if len(dst) > first {
		a.SecondPassFound++
		// A frame the first pass saw empty is weak evidence: the second pass may say that
		// someone is there, not that several people are (it found two boxes on one face in
		// mask/dev).
		dst = dst[:first+1]
	}
	return dst, top, err
}

// atLeast drops, in place, boxes[from:] scoring below score.
func atLeast(boxes []models.FaceBox, from int, score float32) []models.FaceBox {
	n := from
	for _, b := range boxes[from:] {
		if b.Score >= score {
			boxes[n] = b
			n++
		}
	}
	return boxes[:n]
}

// padPass runs the detector on the frame padded with a grey border of a.pad per side and
// appends what it finds to dst, in the frame's pixels.
func (a *Faces) padPass(dst []models.FaceBox, f *Frame) ([]models.FaceBox, float32, error) {
	cols, rows := f.Image.Cols(), f.Image.Rows()
	sx, sy := float32(f.Width)/float32(cols), float32(f.Height)/float32(rows)
	bw, bh := int(float32(cols)*a.pad+0.5), int(float32(rows)*a.pad+0.5)
	// Grey 127 is the model's mean: zero after normalisation, like its own letterbox padding.
	// (A replicated border, as registration photos get, recovers fewer faces: the smeared edge
	// pixels look like more of the face.)
	gocv.CopyMakeBorder(f.Image, &a.scratch, bh, bh, bw, bw, gocv.BorderConstant, color.RGBA{127, 127, 127, 0})
	if a.scratch.Empty() {
		return dst, 0, fmt.Errorf("border of %dx%d failed", bw, bh)
	}
	pw, ph := float32(bw)*sx, float32(bh)*sy
	first := len(dst)
	dst, top, err := a.det.Detect(dst, a.scratch, f.Width+int(2*pw+0.5), f.Height+int(2*ph+0.5))
	if err != nil {
		return dst, top, err
	}
	return shiftClip(dst, first, -pw, -ph, f.Width, f.Height), top, nil
}

// confirmSeveral checks several first-pass faces against the padded pass: two or more
// first-pass boxes that are parts of one padded-pass face (partOf) are replaced by it (with
// their best score). First-pass faces the padded pass does not see are kept: it misses small
// faces, which the first pass sees at twice the scale.
func (a *Faces) confirmSeveral(faces []models.FaceBox, f *Frame) ([]models.FaceBox, error) {
	var err error
	a.padded, _, err = a.padPass(a.padded[:0], f)
	if err != nil {
		return faces, err
	}
	a.padded = filterFaces(atLeast(a.padded, 0, a.score), a.contained, 0)
	return mergeParts(faces, a.padded, a.contained), nil
}

// mergeParts replaces two or more faces that are parts of one padded-pass face (partOf) with
// that face, scored as their best; it keeps the order best score first.
func mergeParts(faces, padded []models.FaceBox, contained float32) []models.FaceBox {
	changed := false
	for _, p := range padded {
		in, best := 0, float32(0)
		for _, b := range faces {
			if partOf(b, p, contained) {
				in++
				best = max(best, b.Score)
			}
		}
		if in < 2 {
			continue
		}
		n := 0
		for _, b := range faces {
			if !partOf(b, p, contained) {
				faces[n] = b
				n++
			}
		}
		p.Score = best
		faces = append(faces[:n], p)
		changed = true
	}
	if changed {
		slices.SortStableFunc(faces, func(x, y models.FaceBox) int { return cmp.Compare(y.Score, x.Score) })
	}
	return faces
}

// partOf: b lies mostly inside the padded-pass face p and is clearly smaller (eyes, half a
// face: at most 0.64 of its height on mask/train; two real faces side by side that the padded
// pass saw as one box were each 0.98 of it or more).
func partOf(b, p models.FaceBox, contained float32) bool {
	return b.H <= 0.75*p.H && intersection(b, p) >= contained*b.W*b.H
}

// shiftClip moves boxes[from:] by dx, dy and clips them to w×h, dropping any left empty.
func shiftClip(boxes []models.FaceBox, from int, dx, dy float32, w, h int) []models.FaceBox {
	out := boxes[:from]
	for _, b := range boxes[from:] {
		x1, y1 := max(b.X+dx, 0), max(b.Y+dy, 0)
		x2, y2 := min(b.X+dx+b.W, float32(w)), min(b.Y+dy+b.H, float32(h))
		if x2-x1 >= 1 && y2-y1 >= 1 {
			out = append(out, models.FaceBox{X: x1, Y: y1, W: x2 - x1, H: y2 - y1, Score: b.Score})
		}
	}
	return out
}

// filterFaces drops, in place, boxes (best score first) that lie mostly inside a stronger kept
// box (share of their own area > contained) and boxes smaller than minSecond of the largest
// face's height. Zero disables either test.
func filterFaces(boxes []models.FaceBox, contained, minSecond float32) []models.FaceBox {
	if len(boxes) < 2 {
		return boxes
	}
	n := 0
	for _, b := range boxes {
		inside := false
		for _, k := range boxes[:n] {
			if contained > 0 && intersection(b, k) >= contained*min(b.W*b.H, k.W*k.H) {
				inside = true
				break
			}
		}
		if !inside {
			boxes[n] = b
			n++
		}
	}
	boxes = boxes[:n]
	if minSecond <= 0 || len(boxes) < 2 {
		return boxes
	}
	var tallest float32
	for _, b := range boxes {
		tallest = max(tallest, b.H)
	}
	n = 0
	for _, b := range boxes {
		if b.H >= minSecond*tallest {
			boxes[n] = b
			n++
		}
	}
	return boxes[:n]
}

func intersection(a, b models.FaceBox) float32 {
	ix := min(a.X+a.W, b.X+b.W) - max(a.X, b.X)
	iy := min(a.Y+a.H, b.Y+b.H) - max(a.Y, b.Y)
	if ix <= 0 || iy <= 0 {
		return 0
	}
	return ix * iy
}
