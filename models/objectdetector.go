package models

import (
	"errors"
	"fmt"
	"image"
	"math"
	"slices"
	"strconv"

	ort "github.com/yalue/onnxruntime_go"
	"gocv.io/x/gocv"
)

// ObjectBox is one detected object in original-frame pixel coordinates.
type ObjectBox struct {
	Class      string
	X, Y, W, H float32
	Score      float32
}

// ObjectOptions tune an ObjectDetector. Zero values take the manifest's defaults.
type ObjectOptions struct {
	SessionOptions
	// Scores overrides the per-class score thresholds (class name → threshold).
	Scores map[string]float32
}

// ObjectDetector runs a detector of the "nanodet" family for the classes its manifest names
// (vision.classes), ignoring the others. Like FaceDetector it owns one ONNX session bound to
// preallocated tensors and scratch images: NOT safe for concurrent use, build one per worker.
type ObjectDetector struct {
	m      *Manifest
	nmsIoU float32

	session *ort.AdvancedSession
	input   *ort.Tensor[float32]
	levels  []objLevel
	classes []objClass

	resized gocv.Mat
	lut     [3][256]float32
	src     [3]int
	// padW, padH: content size of the last call, whose padding is still in the tensor.
	padW, padH int
	cands      []ObjectBox
}

type objLevel struct {
	stride, grid int
	cls, reg     *ort.Tensor[float32]
}

type objClass struct {
	name  string
	index int
	score float32
}

// NewObjectDetector creates a detector for m (from Load) and initialises the ONNX runtime.
func NewObjectDetector(m *Manifest, o ObjectOptions) (*ObjectDetector, error) {
	if m == nil || m.Vision == nil || m.Decode.Family != FamilyNanoDet {
		return nil, errors.New("new object detector: manifest of family nanodet from models.Load required")
	}
	if err := InitRuntime(); err != nil {
		return nil, err
	}
	in := m.Input
	if in.Width != in.Height {
		return nil, fmt.Errorf("new object detector %s: square input required", m.ID())
	}
	d := &ObjectDetector{m: m, nmsIoU: m.Thresholds.NMSIoU, cands: make([]ObjectBox, 0, 64), padW: -1}
	for name, idx := range m.Vision.Classes {
		s := m.Vision.Scores[name]
		if v, ok := o.Scores[name]; ok && v != 0 {
			s = v
		}
		if s <= 0 || s >= 1 {
			return nil, fmt.Errorf("new object detector %s: score threshold %.3f for %q out of (0,1)", m.ID(), s, name)
		}
		d.classes = append(d.classes, objClass{name: name, index: idx, score: s})
	}
	slices.SortFunc(d.classes, func(a, b objClass) int { return a.index - b.index })
	for c := range 3 {
		d.src[c] = c
		if in.Colour == "RGB" {
			d.src[c] = 2 - c
		}
		for v := range 256 {
			d.lut[c][v] = (float32(v) - in.Mean[c]) * in.Scale[c]
		}
	}
	fail := func(step string, err error) (*ObjectDetector, error) {
		d.Close()
		return nil, fmt.Errorf("new object detector %s: %s: %w", m.ID(), step, err)
	}
	var err error
	if d.input, err = ort.NewEmptyTensor[float32](ort.NewShape(1, 3, int64(in.Height), int64(in.Width))); err != nil {
		return fail("input tensor", err)
	}
	names := []string{}
	outs := []ort.Value{}
	nb := int64(4 * (m.Vision.RegMax + 1))
	for _, s := range m.Vision.Strides {
		if s <= 0 || in.Width%s != 0 {
			return fail("strides", fmt.Errorf("stride %d does not divide the input %d", s, in.Width))
		}
		l := objLevel{stride: s, grid: in.Width / s}
		n := int64(l.grid * l.grid)
		if l.cls, err = ort.NewEmptyTensor[float32](ort.NewShape(1, n, int64(m.Vision.NumClasses))); err != nil {
			return fail("class tensor", err)
		}
		if l.reg, err = ort.NewEmptyTensor[float32](ort.NewShape(1, n, nb)); err != nil {
			l.cls.Destroy()
			return fail("box tensor", err)
		}
		d.levels = append(d.levels, l)
		sfx := "_" + strconv.Itoa(s)
		names = append(names, m.Decode.ScoresOutput+sfx, m.Decode.BoxesOutput+sfx)
		outs = append(outs, l.cls, l.reg)
	}
	if d.session, err = newVisionSession(m, []string{in.Name}, names, []ort.Value{d.input}, outs, o.SessionOptions); err != nil {
		return fail("session", err)
	}
	d.resized = gocv.NewMatWithSize(in.Height, in.Width, gocv.MatTypeCV8UC3)
	return d, nil
}

// Manifest returns the model's manifest.
func (d *ObjectDetector) Manifest() *Manifest { return d.m }

// Input is the tensor the latest Detect fed the model (3×side×side, letterboxed and normalised
// as the manifest says); valid until the next call. Calibration tools quantise on exactly these
// values (training/vision/quantize.py).
func (d *ObjectDetector) Input() []float32 { return d.input.GetData() }

// Scores returns the score threshold in effect per class.
func (d *ObjectDetector) Scores() map[string]float32 {
	out := make(map[string]float32, len(d.classes))
	for _, c := range d.classes {
		out[c.name] = c.score
	}
	return out
}

// Detect finds objects of the manifest's classes in img (8-bit BGR, possibly a reduced decode of
// the original frame) and appends them to dst with boxes in origW×origH pixels, best first.
func (d *ObjectDetector) Detect(dst []ObjectBox, img gocv.Mat, origW, origH int) ([]ObjectBox, error) {
	if d.session == nil {
		return dst, errors.New("object detector is closed")
	}
	if img.Empty() || img.Type() != gocv.MatTypeCV8UC3 || img.Rows() < 2 || img.Cols() < 2 {
		return dst, ErrBadImage
	}
	if origW <= 0 || origH <= 0 {
		origW, origH = img.Cols(), img.Rows()
	}
	S := d.m.Input.Width
	s := min(float64(S)/float64(img.Cols()), float64(S)/float64(img.Rows()))
	cw := max(1, min(S, int(float64(img.Cols())*s+0.5)))
	ch := max(1, min(S, int(float64(img.Rows())*s+0.5)))
	interp := gocv.InterpolationLinear
	if img.Cols() > 2*cw || img.Rows() > 2*ch {
		interp = gocv.InterpolationArea
	}
	gocv.Resize(img, &d.resized, image.Pt(cw, ch), 0, 0, interp)
	if d.resized.Empty() || d.resized.Cols() != cw || d.resized.Rows() != ch || !d.resized.IsContinuous() {
		return dst, fmt.Errorf("resize to %dx%d failed", cw, ch)
	}
	pix, err := d.resized.DataPtrUint8()
	if err != nil {
		return dst, err
	}
	t := d.input.GetData()
	plane := S * S
	if cw != d.padW || ch != d.padH {
		// Content is top-left aligned (as the reference NanoDet demo pads): the padding is the
		// mean colour, 0 after normalisation, and only needs rewriting when the geometry changes.
		clear(t)
		d.padW, d.padH = cw, ch
	}
	c0, c1, c2 := t[:plane], t[plane:2*plane], t[2*plane:]
	l0, l1, l2 := &d.lut[0], &d.lut[1], &d.lut[2]
	s0, s1, s2 := d.src[0], d.src[1], d.src[2]
	for y := range ch {
		row := pix[y*cw*3 : (y+1)*cw*3]
		o := y * S
		r0, r1, r2 := c0[o:o+cw], c1[o:o+cw], c2[o:o+cw]
		for x := range cw {
			p := row[3*x : 3*x+3]
			r0[x] = l0[p[s0]]
			r1[x] = l1[p[s1]]
			r2[x] = l2[p[s2]]
		}
	}
	if err := d.session.Run(); err != nil {
		return dst, fmt.Errorf("run %s: %w", d.m.ID(), err)
	}
	// Model pixels → original pixels.
	sx, sy := float32(origW)/float32(cw), float32(origH)/float32(ch)
	return d.decode(dst, sx, sy, float32(origW), float32(origH)), nil
}

// decode reads the GFL outputs: a cell above a class threshold gives a box whose sides lie at the
// expected distance (softmax over RegMax+1 bins, times the stride) from the cell centre.
func (d *ObjectDetector) decode(dst []ObjectBox, sx, sy, fw, fh float32) []ObjectBox {
	nc := d.m.Vision.NumClasses
	nb := d.m.Vision.RegMax + 1
	cands := d.cands[:0]
	for _, l := range d.levels {
		cls, reg := l.cls.GetData(), l.reg.GetData()
		st := float32(l.stride)
		for i := range l.grid * l.grid {
			row := cls[i*nc : (i+1)*nc]
			for _, c := range d.classes {
				sc := row[c.index]
				if sc < c.score {
					continue
				}
				cx := (float32(i%l.grid) + 0.5) * st
				cy := (float32(i/l.grid) + 0.5) * st
				r := reg[i*4*nb : (i+1)*4*nb]
				left, top := expect(r[0:nb])*st, expect(r[nb:2*nb])*st
				right, bottom := expect(r[2*nb:3*nb])*st, expect(r[3*nb:4*nb])*st
				x1 := clamp((cx-left)*sx, 0, fw)
				y1 := clamp((cy-top)*sy, 0, fh)
				x2 := clamp((cx+right)*sx, 0, fw)
				y2 := clamp((cy+bottom)*sy, 0, fh)
				if x2-x1 < 1 || y2-y1 < 1 {
					continue
				}
				cands = append(cands, ObjectBox{Class: c.name, X: x1, Y: y1, W: x2 - x1, H: y2 - y1, Score: sc})
			}
		}
	}
	d.cands = cands
	// Hard NMS per class.
	dst = hardNMS(dst, cands, func(b ObjectBox) float32 { return b.Score },
		func(a, b ObjectBox) bool { return a.Class == b.Class && boxIoU(a, b) > d.nmsIoU })
	return dst
}

// expect is the mean of a softmax distribution over bins 0..RegMax.
func expect(logits []float32) float32 {
	m := logits[0]
	for _, v := range logits[1:] {
		m = max(m, v)
	}
	var sum, acc float32
	for k, v := range logits {
		e := float32(math.Exp(float64(v - m)))
		sum += e
		acc += e * float32(k)
	}
	return acc / sum
}

func boxIoU(a, b ObjectBox) float32 { return rectIoU(a.X, a.Y, a.W, a.H, b.X, b.Y, b.W, b.H) }

// Close frees the session, tensors and scratch image. The detector is unusable afterwards.
func (d *ObjectDetector) Close() error {
	var errs []error
	if d.session != nil {
		errs = append(errs, d.session.Destroy())
		d.session = nil
	}
	if d.input != nil {
		errs = append(errs, d.input.Destroy())
		d.input = nil
	}
	for _, l := range d.levels {
		errs = append(errs, l.cls.Destroy(), l.reg.Destroy())
	}
	d.levels = nil
	errs = append(errs, d.resized.Close())
	return errors.Join(errs...)
}
