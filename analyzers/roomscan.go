package analyzers

import (
	"errors"
	"fmt"
	"image"
	"math"
	"time"

	"gocv.io/x/gocv"
)

// RoomScanConfig configures the room-scan motion estimate. Zero values take the defaults noted;
// the defaults were measured with roomscan_test.go (see docs/evidence-camera.md).
type RoomScanConfig struct {
	// ThumbSide is the longer side of a thumbnail in pixels. Default 160 (160×90 for 16:9,
	// 160×120 for 4:3: 14–19 KB): one pixel is ~0.45° at a 70° field of view, and phase
	// correlation resolves ~0.1 px, so the thumbnail adds far less error than the hand does.
	ThumbSide int `json:"thumb_side,omitempty"`
	// FOVDeg is the camera's field of view across the longer image side. Default 70 (phone
	// front cameras are 65–80°); yaw scales with it, so a wrong value is a proportional error.
	FOVDeg float32 `json:"fov_deg,omitempty"`
	// MinConfidence is the phase-correlation response below which a pair gives no yaw.
	// Default 0.06: unrelated frames (a cut, a cover over the lens) score under 0.04 at 160 px,
	// overlapping frames of a textured room 0.1–0.6, blur and noise pull them down to ~0.07.
	MinConfidence float32 `json:"min_confidence,omitempty"`
	// MaxShift is the largest horizontal shift, as a fraction of the thumbnail width, that is
	// believed. Default 0.4: beyond it the overlap is too small for a reliable peak (measured),
	// and a shift near half the width is ambiguous with the opposite direction.
	MaxShift float32 `json:"max_shift,omitempty"`
	// MaxGap is the largest time between the two frames of a pair. Default 2 s: during a scan
	// the phone turns 20–40°/s, so a longer gap means little or no overlap (or an upload gap)
	// and whatever peak appears is not motion.
	MaxGap time.Duration `json:"max_gap,omitempty"`
}

func (c RoomScanConfig) withDefaults() RoomScanConfig {
	if c.ThumbSide <= 0 {
		c.ThumbSide = 160
	}
	if c.FOVDeg <= 0 {
		c.FOVDeg = 70
	}
	if c.MinConfidence <= 0 {
		c.MinConfidence = 0.06
	}
	if c.MaxShift <= 0 {
		c.MaxShift = 0.4
	}
	if c.MaxGap <= 0 {
		c.MaxGap = 2 * time.Second
	}
	return c
}

// Thumb is a small greyscale copy of one evidence-camera frame, kept between frames (raw bytes,
// W×H, row-major) so the worker can estimate how far the camera turned since the previous one.
type Thumb struct {
	Pix  []byte
	W, H int
	// At is when the frame was captured; zero means unknown (then no gap check is made).
	At time.Time
}

// RoomScan turns frames into thumbnails and estimates the camera's yaw between two of them
// (exam rule: the phone scans the room through 360° before the exam). Not safe for concurrent
// use: it keeps OpenCV scratch images.
type RoomScan struct {
	cfg RoomScanConfig
	// Scratch, reused between calls.
	small, gray      gocv.Mat
	a8, b8, a32, b32 gocv.Mat
	window           gocv.Mat
	winW, winH       int
}

// NewRoomScan builds a RoomScan.
func NewRoomScan(cfg RoomScanConfig) (*RoomScan, error) {
	cfg = cfg.withDefaults()
	if cfg.ThumbSide < 32 || cfg.ThumbSide > 1024 || cfg.FOVDeg >= 170 || cfg.MaxShift >= 0.5 {
		return nil, fmt.Errorf("room scan: config out of range (thumb_side 32–1024, fov_deg < 170, max_shift < 0.5): %+v", cfg)
	}
	return &RoomScan{cfg: cfg, small: gocv.NewMat(), gray: gocv.NewMat()}, nil
}

// Config returns the configuration in effect (defaults filled in).
func (r *RoomScan) Config() RoomScanConfig { return r.cfg }

// Close frees the scratch images.
func (r *RoomScan) Close() error {
	for _, m := range []*gocv.Mat{&r.small, &r.gray, &r.a8, &r.b8, &r.a32, &r.b32, &r.window} {
		if m.Ptr() != nil {
			m.Close()
			*m = gocv.Mat{}
		}
	}
	return nil
}

// ThumbSize is the thumbnail size for a w×h frame: longer side side, aspect kept.
func ThumbSize(w, h, side int) (int, int) {
	if w >= h {
		return side, max(1, (h*side+w/2)/w)
	}
	return max(1, (w*side+h/2)/h), side
}

// Thumb fills dst with the thumbnail of a decoded frame captured at at, reusing dst.Pix.
func (r *RoomScan) Thumb(f *Frame, at time.Time, dst *Thumb) error {
	// OpenCV errors abort the process: check everything it will be handed.
	if f.Image.Ptr() == nil || f.Image.Empty() || f.Image.Type() != gocv.MatTypeCV8UC3 ||
		f.Image.Cols() < MinSide || f.Image.Rows() < MinSide {
		return errors.New("room scan: frame is not a decoded 8-bit BGR image")
	}
	w, h := ThumbSize(f.Image.Cols(), f.Image.Rows(), r.cfg.ThumbSide)
	// Shrink colour first, then convert: the conversion then touches 160×90 pixels, not the frame.
	gocv.Resize(f.Image, &r.small, image.Pt(w, h), 0, 0, gocv.InterpolationArea)
	gocv.CvtColor(r.small, &r.gray, gocv.ColorBGRToGray)
	pix, err := r.gray.DataPtrUint8()
	if err != nil || len(pix) != w*h {
		return fmt.Errorf("room scan: thumbnail is not %dx%d", w, h)
	}
	dst.Pix = append(dst.Pix[:0], pix...)
	dst.W, dst.H, dst.At = w, h, at
	return nil
}

// YawBetween estimates how far the camera turned about the vertical axis from prev to cur, in
// degrees (positive: the camera turned right, the scene moved left in the image), and the
// confidence of the estimate (the phase-correlation peak response, 0–1).
//
// A pair contributes nothing — degrees is 0, so the result can be summed or passed to
// ScanCoverage as it is — when the thumbnails differ in size or are empty, when they were
// captured more than MaxGap apart (confidence 0), and when the confidence is below
// MinConfidence or the shift exceeds MaxShift (confidence reported as measured). Missing a
// real turn only lowers coverage; inventing one could pass a scan that never happened.
//
// The estimate is exact for a pure rotation about the camera centre; a phone swung on an
// outstretched arm also translates, which makes near objects move faster than far ones.
func (r *RoomScan) YawBetween(prev, cur *Thumb) (degrees, confidence float32) {
	if prev == nil || cur == nil || prev.W != cur.W || prev.H != cur.H || prev.W < 8 || prev.H < 8 ||
		len(prev.Pix) != prev.W*prev.H || len(cur.Pix) != cur.W*cur.H {
		return 0, 0
	}
	if !prev.At.IsZero() && !cur.At.IsZero() {
		gap := cur.At.Sub(prev.At)
		if gap < 0 {
			gap = -gap
		}
		if gap > r.cfg.MaxGap {
			return 0, 0
		}
	}
	w, h := cur.W, cur.H
	if r.winW != w || r.winH != h {
		r.resize(w, h)
	}
	for _, p := range [...]struct {
		pix []byte
		u8  *gocv.Mat
		f32 *gocv.Mat
	}{{prev.Pix, &r.a8, &r.a32}, {cur.Pix, &r.b8, &r.b32}} {
		data, err := p.u8.DataPtrUint8()
		if err != nil || len(data) != len(p.pix) {
			return 0, 0
		}
		copy(data, p.pix)
		p.u8.ConvertTo(p.f32, gocv.MatTypeCV32F)
	}
	shift, response := gocv.PhaseCorrelate(r.a32, r.b32, r.window)
	confidence = float32(response)
	if math.IsNaN(float64(shift.X)) || confidence < r.cfg.MinConfidence ||
		math.Abs(float64(shift.X)) > float64(r.cfg.MaxShift)*float64(w) {
		return 0, confidence
	}
	// Pinhole camera: a rotation by θ moves the image centre by f·tan θ pixels.
	f := float64(max(w, h)) / 2 / math.Tan(float64(r.cfg.FOVDeg)*math.Pi/360)
	return float32(math.Atan(-float64(shift.X)/f) * 180 / math.Pi), confidence
}

// resize (re)creates the correlation scratch images and the Hanning window for w×h thumbnails.
// The window (as cv::createHanningWindow: sqrt of the product of two 1-D Hann windows) tapers
// the borders so that the wrap-around of the FFT does not create a false peak at zero shift.
func (r *RoomScan) resize(w, h int) {
	for _, m := range []*gocv.Mat{&r.a8, &r.b8, &r.a32, &r.b32, &r.window} {
		if m.Ptr() != nil {
			m.Close()
		}
	}
	r.a8 = gocv.NewMatWithSize(h, w, gocv.MatTypeCV8U)
	r.b8 = gocv.NewMatWithSize(h, w, gocv.MatTypeCV8U)
	r.a32, r.b32 = gocv.NewMat(), gocv.NewMat()
	r.window = gocv.NewMatWithSize(h, w, gocv.MatTypeCV32F)
	win, _ := r.window.DataPtrFloat32()
	for y := range h {
		wy := 0.5 * (1 - math.Cos(2*math.Pi*float64(y)/float64(h-1)))
		for x := range w {
			wx := 0.5 * (1 - math.Cos(2*math.Pi*float64(x)/float64(w-1)))
			win[y*w+x] = float32(math.Sqrt(wy * wx))
		}
	}
	r.winW, r.winH = w, h
}

// ScanCoverage integrates signed yaw steps (degrees, e.g. from YawBetween) into the angle the
// camera swept: the spread (max − min) of the running sum, so panning back and forth over the
// same 90° counts 90°, not the distance travelled; capped at 360. Non-finite steps are ignored.
func ScanCoverage(yawDeltas []float32) float32 {
	var sum, lo, hi float64
	for _, d := range yawDeltas {
		if math.IsNaN(float64(d)) || math.IsInf(float64(d), 0) {
			continue
		}
		sum += float64(d)
		lo, hi = min(lo, sum), max(hi, sum)
	}
	return float32(min(hi-lo, 360))
}
