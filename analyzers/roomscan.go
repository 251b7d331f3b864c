package analyzers

import (
	"errors"
	"fmt"
	"image"
	"image/color"
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
	// ForegroundPeak is how strong, relative to a peak at zero shift, a second peak must be to
	// be taken as the turn when the images changed (see YawBetween). Default 0.3 (measured:
	// a room turning behind a static face peaks at 0.5–1× the face's peak; noise and a person
	// moving in front of a still camera stay lower).
	ForegroundPeak float32 `json:"foreground_peak,omitempty"`
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
	if c.ForegroundPeak <= 0 {
		c.ForegroundPeak = 0.3
	}
	if c.MaxGap <= 0 {
		c.MaxGap = 2 * time.Second
	}
	return c
}

// Thumb is a small greyscale copy of one evidence-camera frame, kept between frames (raw bytes,
// W×H, row-major) so the worker can estimate how far the camera turned since the previous one.
// It is a cylindrical projection of the frame (columns are equal steps of azimuth), so a turn
// of the camera is the same horizontal shift everywhere in it.
type Thumb struct {
	Pix  []byte
	W, H int
	// Focal is the focal length in thumbnail pixels: a shift of Focal columns is one radian.
	Focal float32
	// At is when the frame was captured; zero means unknown (then no gap check is made).
	At time.Time
}

// RoomScan turns frames into thumbnails and estimates the camera's yaw between two of them
// (exam rule: the phone scans the room through 360° before the exam). Not safe for concurrent
// use: it keeps OpenCV scratch images.
type RoomScan struct {
	cfg RoomScanConfig
	// Thumbnail scratch and the cylindrical remap grid of the last frame size.
	small, gray, cyl, mapX, mapY gocv.Mat
	srcW, srcH                   int
	// Correlation scratch for the last thumbnail size.
	a32, b32, mask, fa, fb, cross, surface gocv.Mat
	hann                                   []float32
	winW, winH                             int
}

// NewRoomScan builds a RoomScan.
func NewRoomScan(cfg RoomScanConfig) (*RoomScan, error) {
	cfg = cfg.withDefaults()
	if cfg.ThumbSide < 32 || cfg.ThumbSide > 1024 || cfg.FOVDeg >= 170 || cfg.MaxShift >= 0.5 {
		return nil, fmt.Errorf("room scan: config out of range (thumb_side 32–1024, fov_deg < 170, max_shift < 0.5): %+v", cfg)
	}
	return &RoomScan{cfg: cfg, small: gocv.NewMat(), gray: gocv.NewMat(), cyl: gocv.NewMat()}, nil
}

// Config returns the configuration in effect (defaults filled in).
func (r *RoomScan) Config() RoomScanConfig { return r.cfg }

// Close frees the scratch images.
func (r *RoomScan) Close() error {
	for _, m := range []*gocv.Mat{&r.small, &r.gray, &r.cyl, &r.mapX, &r.mapY, &r.a32, &r.b32, &r.mask, &r.fa, &r.fb, &r.cross, &r.surface} {
		if m.Ptr() != nil {
			m.Close()
			*m = gocv.Mat{}
		}
	}
	return nil
}

// ThumbSize is the size a w×h frame is shrunk to before the cylindrical projection: longer
// side side, aspect kept.
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
	if w != r.srcW || h != r.srcH {
		r.cylinderGrid(w, h)
	}
	// Shrink colour first, then convert: the conversion then touches 160×90 pixels, not the frame.
	gocv.Resize(f.Image, &r.small, image.Pt(w, h), 0, 0, gocv.InterpolationArea)
	gocv.CvtColor(r.small, &r.gray, gocv.ColorBGRToGray)
	gocv.Remap(r.gray, &r.cyl, &r.mapX, &r.mapY, gocv.InterpolationLinear, gocv.BorderReplicate, color.RGBA{})
	cw, ch := r.mapX.Cols(), r.mapX.Rows()
	pix, err := r.cyl.DataPtrUint8()
	if err != nil || len(pix) != cw*ch {
		return fmt.Errorf("room scan: thumbnail is not %dx%d", cw, ch)
	}
	dst.Pix = append(dst.Pix[:0], pix...)
	dst.W, dst.H, dst.At = cw, ch, at
	dst.Focal = float32(r.focal(w, h))
	return nil
}

// focal is the focal length in pixels of a w×h image under the configured field of view.
func (r *RoomScan) focal(w, h int) float64 {
	return float64(max(w, h)) / 2 / math.Tan(float64(r.cfg.FOVDeg)*math.Pi/360)
}

// cylinderGrid builds the remap from a w×h pinhole image to its cylindrical projection, as
// wide as the frame's horizontal field of view (so every output pixel has a source pixel).
func (r *RoomScan) cylinderGrid(w, h int) {
	f := r.focal(w, h)
	cx, cy := float64(w-1)/2, float64(h-1)/2
	halfAngle := math.Atan(cx / f)
	cw := max(8, int(2*f*halfAngle))
	if r.mapX.Ptr() != nil {
		r.mapX.Close()
		r.mapY.Close()
	}
	r.mapX = gocv.NewMatWithSize(h, cw, gocv.MatTypeCV32F)
	r.mapY = gocv.NewMatWithSize(h, cw, gocv.MatTypeCV32F)
	mx, _ := r.mapX.DataPtrFloat32()
	my, _ := r.mapY.DataPtrFloat32()
	ccx := float64(cw-1) / 2
	for yc := range h {
		for xc := range cw {
			theta := (float64(xc) - ccx) / f
			mx[yc*cw+xc] = float32(cx + f*math.Tan(theta))
			my[yc*cw+xc] = float32(cy + (float64(yc)-cy)/math.Cos(theta))
		}
	}
	r.srcW, r.srcH = w, h
}

// motionLevel is the grey-level change (after removing an exposure change) that marks a
// thumbnail pixel as changed: thumbnails average ~4×4 pixels, so JPEG and sensor noise stay
// under ~4 levels.
const motionLevel = 8

// YawBetween estimates how far the camera turned about the vertical axis from prev to cur, in
// degrees (positive: the camera turned right, the scene moved left in the image), and the
// confidence of the estimate (the phase-correlation peak, 0–1: the share of the image that
// moved together by that shift).
//
// With the front camera the candidate's face stays put while the room turns behind it: the
// correlation then has a peak at zero shift (the face) and one at the room's shift. When the
// strongest peak is at zero but the images changed and a second peak elsewhere is at least
// ForegroundPeak of it, the second peak is the turn. If (almost) nothing changed, the camera
// did not turn: 0° with confidence 1.
//
// A pair contributes nothing — degrees is 0, so the result can be summed or passed to
// ScanCoverage as it is — when the thumbnails differ in size or focal length or are empty, when
// they were captured more than MaxGap apart (confidence 0), and when the confidence is below
// MinConfidence or the shift exceeds MaxShift (confidence reported as measured). Missing a
// real turn only lowers coverage; inventing one could pass a scan that never happened.
//
// The estimate is exact for a pure rotation about the camera centre; a phone swung on an
// outstretched arm also translates, which makes near objects move faster than far ones.
func (r *RoomScan) YawBetween(prev, cur *Thumb) (degrees, confidence float32) {
	if prev == nil || cur == nil || prev.W != cur.W || prev.H != cur.H || prev.W < 8 || prev.H < 8 ||
		len(prev.Pix) != prev.W*prev.H || len(cur.Pix) != cur.W*cur.H || prev.Focal != cur.Focal || cur.Focal <= 0 {
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
		r.correlationScratch(w, h)
	}
	a, _ := r.a32.DataPtrFloat32()
	b, _ := r.b32.DataPtrFloat32()
	n := w * h
	if len(a) != n || len(b) != n || len(r.hann) != n {
		return 0, 0
	}
	var sa, sb int
	for i := range n {
		sa += int(prev.Pix[i])
		sb += int(cur.Pix[i])
	}
	// Zero mean (which also removes an exposure change), so the window's own shape, identical
	// in both, adds no peak at zero shift.
	ma, mb := float32(sa)/float32(n), float32(sb)/float32(n)
	changed := 0
	mask, _ := r.mask.DataPtrFloat32()
	if len(mask) != n {
		return 0, 0
	}
	for i := range n {
		pa, pb := float32(prev.Pix[i])-ma, float32(cur.Pix[i])-mb
		mask[i] = 0
		if d := pa - pb; d > motionLevel || d < -motionLevel {
			changed++
			mask[i] = 1
		}
		a[i], b[i] = pa*r.hann[i], pb*r.hann[i]
	}
	if changed < n/100 {
		return 0, 1
	}
	if roomMask {
		// Keep in prev only what changed: a static foreground (the candidate's face) is then
		// in cur alone and has no partner to make a peak at zero shift.
		gocv.GaussianBlur(r.mask, &r.mask, image.Pt(0, 0), 2, 2, gocv.BorderReplicate)
		mask, _ = r.mask.DataPtrFloat32()
		for i := range n {
			a[i] *= min(1, 2*mask[i])
		}
	}
	dx, dy, peak, ok := r.correlate(w, h)
	if !ok {
		return 0, 0
	}
	confidence = peak
	if confidence < r.cfg.MinConfidence || math.Abs(float64(dx)) > float64(r.cfg.MaxShift)*float64(w) {
		return 0, confidence
	}
	_ = dy
	// Cylindrical thumbnails: Focal columns per radian.
	return float32(-float64(dx) / float64(cur.Focal) * 180 / math.Pi), confidence
}

// correlate phase-correlates r.a32 and r.b32 (windowed, zero-mean) and returns the shift of b
// relative to a, to a tenth of a pixel, and the height of its peak. It does by hand what
// cv::phaseCorrelate does in order to see the second peak.
func (r *RoomScan) correlate(w, h int) (dx, dy, peak float32, ok bool) {
	gocv.DFT(r.a32, &r.fa, gocv.DftComplexOutput)
	gocv.DFT(r.b32, &r.fb, gocv.DftComplexOutput)
	fa, _ := r.fa.DataPtrFloat32()
	fb, _ := r.fb.DataPtrFloat32()
	cross, _ := r.cross.DataPtrFloat32()
	if len(fa) != 2*w*h || len(fb) != len(fa) || len(cross) != len(fa) {
		return 0, 0, 0, false
	}
	// Normalised cross-power spectrum conj(A)·B/|conj(A)·B|: only the phase difference, so
	// every frequency votes equally (a bright lamp does not outvote the room's texture).
	for i := 0; i < len(fa); i += 2 {
		ar, ai, br, bi := fa[i], fa[i+1], fb[i], fb[i+1]
		re, im := ar*br+ai*bi, ar*bi-ai*br
		mag := float32(math.Sqrt(float64(re*re+im*im))) + 1e-9
		cross[i], cross[i+1] = re/mag, im/mag
	}
	// Frequencies with no horizontal component say nothing about a horizontal shift, and the
	// room has plenty (the floor line, the top of a desk, seen at the same height whatever the
	// yaw): they would add a ridge along zero vertical shift with its maximum anywhere.
	for y := range h {
		cross[2*y*w], cross[2*y*w+1] = 0, 0
	}
	gocv.DFT(r.cross, &r.surface, gocv.DftInverse|gocv.DftRealOutput|gocv.DftScale)
	surf, _ := r.surface.DataPtrFloat32()
	if len(surf) != w*h {
		return 0, 0, 0, false
	}
	x1, y1 := argmax(surf, w, h, -1, -1)
	if roomDebug != nil {
		x2, y2 := argmax(surf, w, h, x1, y1)
		roomDebug("p1 (%d,%d) %.3f  p2 (%d,%d) %.3f", wrapShift(x1, w), wrapShift(y1, h), peakSum(surf, w, h, x1, y1), wrapShift(x2, w), wrapShift(y2, h), peakSum(surf, w, h, x2, y2))
	}
	x, y := x1, y1
	if sx, sy := wrapShift(x1, w), wrapShift(y1, h); abs(sx) <= 1 && abs(sy) <= 1 {
		// The strongest peak is "nothing moved". Something did (see YawBetween): a static
		// foreground in front of a turning room. Take the best peak elsewhere if it is real.
		x2, y2 := argmax(surf, w, h, x1, y1)
		if wrapShift(x2, w) != 0 && peakSum(surf, w, h, x2, y2) >= r.cfg.ForegroundPeak*peakSum(surf, w, h, x1, y1) {
			x, y = x2, y2
		}
	}
	// Sub-pixel: centroid of the 3×3 around the peak (wrapping at the borders).
	var sw, sxw, syw float32
	for oy := -1; oy <= 1; oy++ {
		for ox := -1; ox <= 1; ox++ {
			v := max(surf[((y+oy+h)%h)*w+(x+ox+w)%w], 0)
			sw += v
			sxw += v * float32(ox)
			syw += v * float32(oy)
		}
	}
	if sw <= 0 {
		return 0, 0, 0, false
	}
	return float32(wrapShift(x, w)) + sxw/sw, float32(wrapShift(y, h)) + syw/sw, sw, true
}

// argmax finds the largest value of a w×h surface, skipping the 5×5 (wrapped) around
// (skipX, skipY) when skipX >= 0.
func argmax(surf []float32, w, h, skipX, skipY int) (int, int) {
	bx, by := 0, 0
	best := float32(math.Inf(-1))
	for y := range h {
		for x := range w {
			if skipX >= 0 && abs(wrapShift((x-skipX+w)%w, w)) <= 2 && abs(wrapShift((y-skipY+h)%h, h)) <= 2 {
				continue
			}
			if v := surf[y*w+x]; v > best {
				best, bx, by = v, x, y
			}
		}
	}
	return bx, by
}

// peakSum is the sum of the 3×3 (wrapped) around (x, y): a peak's height, robust to the
// sub-pixel split of a peak between neighbours.
func peakSum(surf []float32, w, h, x, y int) float32 {
	var s float32
	for oy := -1; oy <= 1; oy++ {
		for ox := -1; ox <= 1; ox++ {
			s += max(surf[((y+oy+h)%h)*w+(x+ox+w)%w], 0)
		}
	}
	return s
}

// wrapShift maps a DFT index to a signed shift.
func wrapShift(i, n int) int {
	if i > n/2 {
		return i - n
	}
	return i
}

func abs(i int) int {
	if i < 0 {
		return -i
	}
	return i
}

// correlationScratch (re)creates the correlation images and the Hanning window for w×h
// thumbnails. The window (as cv::createHanningWindow: sqrt of the product of two 1-D Hann
// windows) tapers the borders so that the wrap-around of the FFT does not create a false peak.
func (r *RoomScan) correlationScratch(w, h int) {
	for _, m := range []*gocv.Mat{&r.a32, &r.b32, &r.mask} {
		if m.Ptr() != nil {
			m.Close()
		}
		*m = gocv.NewMatWithSize(h, w, gocv.MatTypeCV32F)
	}
	for _, m := range []*gocv.Mat{&r.fa, &r.fb, &r.cross} {
		if m.Ptr() != nil {
			m.Close()
		}
		*m = gocv.NewMatWithSize(h, w, gocv.MatTypeCV32FC2)
	}
	if r.surface.Ptr() == nil {
		r.surface = gocv.NewMat()
	}
	r.hann = make([]float32, w*h)
	taper := func(i, n int) float64 {
		if !roomTukey {
			return 0.5 * (1 - math.Cos(2*math.Pi*float64(i)/float64(n-1)))
		}
		// Tukey: flat in the middle, a cosine over the outer 20% at each side.
		edge := 0.2 * float64(n-1)
		d := min(float64(i), float64(n-1-i))
		if d >= edge {
			return 1
		}
		return 0.5 * (1 - math.Cos(math.Pi*d/edge))
	}
	for y := range h {
		wy := taper(y, h)
		for x := range w {
			r.hann[y*w+x] = float32(math.Sqrt(wy * taper(x, w)))
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

var roomDebug func(string, ...any) // TEMP

var roomMask = false // TEMP

var roomTukey = false // TEMP
