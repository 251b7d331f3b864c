package models

import (
	"errors"
	"fmt"
	"image"

	ort "github.com/yalue/onnxruntime_go"
	"gocv.io/x/gocv"
)

// FaceBox is one detected face in original-frame pixel coordinates.
type FaceBox struct {
	X, Y, W, H float32
	Score      float32
}

// DetectorOptions tune a FaceDetector. Zero values take the manifest's defaults.
type DetectorOptions struct {
	SessionOptions
	// ScoreThreshold is the minimum face score; 0 = manifest thresholds.score.
	ScoreThreshold float32
	// NMSIoU is the overlap above which the weaker box is dropped; 0 = manifest thresholds.nms_iou.
	NMSIoU float32
	// MinFace is the minimum box height as a fraction of the frame height; 0 = manifest
	// thresholds.min_face, negative = no minimum.
	MinFace float32
}

// ErrBadImage is returned for an image the detector cannot take (empty, not 8-bit BGR). It is
// checked before any OpenCV call, because OpenCV errors abort the process.
var ErrBadImage = errors.New("detector input must be a non-empty 8-bit 3-channel BGR image")

// FaceDetector runs one face detection model of the "ultraface" family.
//
// A FaceDetector is NOT safe for concurrent use: it owns one ONNX session bound to preallocated
// input/output tensors and a scratch image, all reused on every call. Build one per worker
// goroutine from the same *Manifest (the manifest is read-only and can be shared):
//
//	m, _ := models.Load("ultraface-rfb-320")
//	for range workers { d, _ := models.NewFaceDetector(m, models.DetectorOptions{}); ... }
type FaceDetector struct {
	m       *Manifest
	score   float32
	nmsIoU  float32
	minFace float32

	session *ort.AdvancedSession
	input   *ort.Tensor[float32]
	scores  *ort.Tensor[float32]
	boxes   *ort.Tensor[float32]

	// resized is the frame scaled to the model input (or to the letterboxed content area).
	resized gocv.Mat
	// lut[c][v] is the normalised value of byte v for model channel c: (v-mean)*scale, so the
	// per-pixel work is three table lookups.
	lut [3][256]float32
	// src[c] is the byte offset inside a BGR pixel of model channel c.
	src [3]int
	// Letterbox geometry of the last call; the padding is rewritten only when it changes.
	padW, padH, padX, padY int
	cands                  []FaceBox
}

// NewFaceDetector creates a detector for m (which must come from Load, so that m.Path is a
// verified file) and initialises the ONNX runtime if needed.
func NewFaceDetector(m *Manifest, o DetectorOptions) (*FaceDetector, error) {
	if m == nil || m.Path == "" {
		return nil, fmt.Errorf("new face detector: manifest must come from models.Load (no verified file path)")
	}
	if m.Decode.Family != "ultraface" {
		return nil, fmt.Errorf("new face detector %s: decode family %q is not a face detector family", m.ID(), m.Decode.Family)
	}
	if err := InitRuntime(); err != nil {
		return nil, err
	}
	d := &FaceDetector{
		m:       m,
		score:   pick(o.ScoreThreshold, m.Thresholds.Score),
		nmsIoU:  pick(o.NMSIoU, m.Thresholds.NMSIoU),
		minFace: pick(o.MinFace, m.Thresholds.MinFace),
		cands:   make([]FaceBox, 0, 64),
	}
	if d.minFace < 0 {
		d.minFace = 0
	}
	if d.score <= 0 || d.score >= 1 || d.nmsIoU <= 0 || d.nmsIoU > 1 || d.minFace >= 1 {
		return nil, fmt.Errorf("new face detector %s: thresholds out of range (score %.3f, nms_iou %.3f, min_face %.3f)",
			m.ID(), d.score, d.nmsIoU, d.minFace)
	}
	in := m.Input
	for c := 0; c < 3; c++ {
		d.src[c] = c // BGR order as decoded by OpenCV
		if in.Colour == "RGB" {
			d.src[c] = 2 - c
		}
		for v := 0; v < 256; v++ {
			d.lut[c][v] = (float32(v) - in.Mean[c]) * in.Scale[c]
		}
	}

	var err error
	fail := func(step string, e error) (*FaceDetector, error) {
		d.Close()
		return nil, fmt.Errorf("new face detector %s: %s: %w", m.ID(), step, e)
	}
	if d.input, err = ort.NewEmptyTensor[float32](ort.NewShape(1, 3, int64(in.Height), int64(in.Width))); err != nil {
		return fail("input tensor", err)
	}
	n := int64(m.Decode.Anchors)
	if d.scores, err = ort.NewEmptyTensor[float32](ort.NewShape(1, n, 2)); err != nil {
		return fail("scores tensor", err)
	}
	if d.boxes, err = ort.NewEmptyTensor[float32](ort.NewShape(1, n, 4)); err != nil {
		return fail("boxes tensor", err)
	}
	d.session, err = openSession(o.SessionOptions, func(opts *ort.SessionOptions) (*ort.AdvancedSession, error) {
		return ort.NewAdvancedSession(m.Path, []string{in.Name}, []string{m.Decode.ScoresOutput, m.Decode.BoxesOutput},
			[]ort.Value{d.input}, []ort.Value{d.scores, d.boxes}, opts)
	})
	if err != nil {
		return fail("session", err)
	}
	d.resized = gocv.NewMatWithSize(in.Height, in.Width, gocv.MatTypeCV8UC3)
	d.padW = -1 // force the first letterbox fill
	return d, nil
}

func pick(v, def float32) float32 {
	if v != 0 {
		return v
	}
	return def
}

// Manifest returns the model's manifest.
func (d *FaceDetector) Manifest() *Manifest { return d.m }

// Thresholds returns the thresholds in effect (manifest defaults with options applied).
func (d *FaceDetector) Thresholds() Thresholds {
	return Thresholds{Score: d.score, NMSIoU: d.nmsIoU, MinFace: d.minFace}
}

// Detect finds faces in img (8-bit BGR, possibly a reduced decode of the original frame) and
// appends them to dst, boxes scaled to origW×origH, best score first. It also returns the best
// face score of the frame even when it is below the threshold (0 when nothing scores at all),
// counting only boxes that pass the minimum face size.
//
// Passing dst[:0] from the previous call makes the steady state allocation-free.
func (d *FaceDetector) Detect(dst []FaceBox, img gocv.Mat, origW, origH int) ([]FaceBox, float32, error) {
	if d.session == nil {
		return dst, 0, errors.New("face detector is closed")
	}
	if img.Empty() || img.Type() != gocv.MatTypeCV8UC3 || img.Rows() < 2 || img.Cols() < 2 {
		return dst, 0, ErrBadImage
	}
	if origW <= 0 || origH <= 0 {
		origW, origH = img.Cols(), img.Rows()
	}
	// sx, sy map model-input pixels back to original pixels; ox, oy is the letterbox offset.
	sx, sy, ox, oy, err := d.preprocess(img, origW, origH)
	if err != nil {
		return dst, 0, err
	}
	if err := d.session.Run(); err != nil {
		return dst, 0, fmt.Errorf("run %s: %w", d.m.ID(), err)
	}
	return d.decode(dst, sx, sy, ox, oy, origW, origH)
}

// preprocess scales img into d.resized and writes it, normalised and channel-planar, into the
// input tensor.
func (d *FaceDetector) preprocess(img gocv.Mat, origW, origH int) (sx, sy, ox, oy float32, err error) {
	W, H := d.m.Input.Width, d.m.Input.Height
	cw, ch, px, py := W, H, 0, 0
	if d.m.Input.Resize == "letterbox" {
		s := min(float64(W)/float64(img.Cols()), float64(H)/float64(img.Rows()))
		cw = max(1, min(W, int(float64(img.Cols())*s+0.5)))
		ch = max(1, min(H, int(float64(img.Rows())*s+0.5)))
		px, py = (W-cw)/2, (H-ch)/2
	}
	// A reduced JPEG decode (analyzers.DecodeJPEG) leaves at most a 2x shrink, where bilinear is
	// fine and costs 0.25 ms; INTER_AREA at such non-integer ratios costs 1.5-2 ms for the same
	// face counts on the dev photos. Beyond 2x (a full-size decode) bilinear skips source pixels
	// and aliases, so area averaging is worth its price there.
	interp := gocv.InterpolationLinear
	if img.Cols() > 2*cw || img.Rows() > 2*ch {
		interp = gocv.InterpolationArea
	}
	gocv.Resize(img, &d.resized, image.Pt(cw, ch), 0, 0, interp)
	if d.resized.Empty() || d.resized.Cols() != cw || d.resized.Rows() != ch || !d.resized.IsContinuous() {
		return 0, 0, 0, 0, fmt.Errorf("resize to %dx%d failed", cw, ch)
	}
	pix, err := d.resized.DataPtrUint8()
	if err != nil {
		return 0, 0, 0, 0, err
	}
	t := d.input.GetData()
	plane := W * H
	c0, c1, c2 := t[:plane], t[plane:2*plane], t[2*plane:3*plane]
	if cw == W && ch == H {
		d.padW = -1 // the whole tensor is overwritten; padding must be redone next time
	} else if cw != d.padW || ch != d.padH || px != d.padX || py != d.padY {
		// New letterbox geometry: the padding is the mean colour, i.e. 0 after normalisation.
		clear(t)
		d.padW, d.padH, d.padX, d.padY = cw, ch, px, py
	}
	l0, l1, l2 := &d.lut[0], &d.lut[1], &d.lut[2]
	s0, s1, s2 := d.src[0], d.src[1], d.src[2]
	for y := 0; y < ch; y++ {
		row := pix[y*cw*3 : (y+1)*cw*3]
		o := (y+py)*W + px
		r0, r1, r2 := c0[o:o+cw], c1[o:o+cw], c2[o:o+cw]
		for x := range cw {
			p := row[3*x : 3*x+3]
			r0[x] = l0[p[s0]]
			r1[x] = l1[p[s1]]
			r2[x] = l2[p[s2]]
		}
	}
	sx = float32(origW) / float32(cw)
	sy = float32(origH) / float32(ch)
	return sx, sy, float32(px), float32(py), nil
}

// decode reads the ultraface outputs: scores [1,N,2] softmax with index 1 = face, boxes [1,N,4]
// x1,y1,x2,y2 normalised to the model input (priors are already applied inside the graph).
func (d *FaceDetector) decode(dst []FaceBox, sx, sy, ox, oy float32, origW, origH int) ([]FaceBox, float32, error) {
	scores, boxes := d.scores.GetData(), d.boxes.GetData()
	W, H := float32(d.m.Input.Width), float32(d.m.Input.Height)
	fw, fh := float32(origW), float32(origH)
	minH := d.minFace * fh
	var top float32
	cands := d.cands[:0]
	for i := range d.m.Decode.Anchors {
		s := scores[2*i+1]
		if s <= top && s < d.score {
			continue // cheap exit for the ~99% of anchors that are background
		}
		b := boxes[4*i : 4*i+4]
		x1 := clamp((b[0]*W-ox)*sx, 0, fw)
		y1 := clamp((b[1]*H-oy)*sy, 0, fh)
		x2 := clamp((b[2]*W-ox)*sx, 0, fw)
		y2 := clamp((b[3]*H-oy)*sy, 0, fh)
		if x2-x1 < 1 || y2-y1 < 1 || y2-y1 < minH {
			continue
		}
		top = max(top, s)
		if s >= d.score {
			cands = append(cands, FaceBox{X: x1, Y: y1, W: x2 - x1, H: y2 - y1, Score: s})
		}
	}
	d.cands = cands
	// Hard NMS, as in the UltraFace reference: keep the best box, drop every weaker box that
	// overlaps a kept one by more than nmsIoU.
	dst = hardNMS(dst, cands, func(b FaceBox) float32 { return b.Score },
		func(a, b FaceBox) bool { return iou(a, b) > d.nmsIoU })
	return dst, top, nil
}

func clamp(v, lo, hi float32) float32 { return max(lo, min(hi, v)) }

func iou(a, b FaceBox) float32 { return rectIoU(a.X, a.Y, a.W, a.H, b.X, b.Y, b.W, b.H) }

// Close frees the session, tensors and scratch image. The detector is unusable afterwards.
func (d *FaceDetector) Close() error {
	var errs []error
	if d.session != nil {
		errs = append(errs, d.session.Destroy())
		d.session = nil
	}
	for _, t := range []*ort.Tensor[float32]{d.input, d.scores, d.boxes} {
		if t != nil {
			errs = append(errs, t.Destroy())
		}
	}
	d.input, d.scores, d.boxes = nil, nil, nil
	// Closing a zero Mat is a no-op (delete of a null pointer), so a half-built detector is fine.
	errs = append(errs, d.resized.Close())
	return errors.Join(errs...)
}
