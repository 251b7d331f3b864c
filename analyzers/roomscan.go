package analyzers

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"math"
	"slices"
	"time"

	"gocv.io/x/gocv"
)

// RoomScanConfig configures the room-scan motion estimate. Zero values take the defaults noted;
// the defaults were measured with roomscan_test.go (see docs/evidence-camera.md).
type RoomScanConfig struct {
	// ThumbSide is the longer side a frame is shrunk to before its cylindrical projection.
	// Default 160: a 16:9 frame gives a 138×90 thumbnail (12 KB), 4:3 138×120 (16 KB); one
	// column is 0.5° at 70°, and the correlation peak is located to ~0.1 column (measured
	// error 0.04° per step), so a larger thumbnail buys nothing.
	ThumbSide int `json:"thumb_side,omitempty"`
	// FOVDeg is the camera's field of view across the longer image side. Default 70 (phone
	// front cameras are 65–80°); yaw scales with it, so a wrong value is a proportional error.
	FOVDeg float32 `json:"fov_deg,omitempty"`
	// MinConfidence is the confidence (see YawBetween) below which a pair gives no yaw.
	// Default 0.03: on 240 rendered pairs 5–200° apart it kept 132 of 134 correct estimates
	// and 7 of 106 wrong ones (all turned ≥ 22° apart, with little overlap); 0.05 let 1 wrong
	// one through but dropped a third of the correct ones with the candidate's face in view.
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
		c.MinConfidence = 0.03
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
	// Correlation scratch for the last thumbnail size: windowed float copies, their spectra,
	// the cross-power spectrum and its inverse; the window and zero-mean copies.
	a32, b32, fa, fb, cross, surface gocv.Mat
	window, za, zb                   []float32
	winW, winH                       int
	features                         *scanFeatures // lazily built by featureShift
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
	if r.features != nil {
		r.features.close()
		r.features = nil
	}
	for _, m := range []*gocv.Mat{&r.small, &r.gray, &r.cyl, &r.mapX, &r.mapY, &r.a32, &r.b32, &r.fa, &r.fb, &r.cross, &r.surface} {
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
// confidence of the estimate, 0–1: the phase-correlation peak of the chosen shift times how
// much better that shift aligns the two thumbnails than the other candidate shifts
// (1 − its alignment cost / the median candidate's).
//
// The candidates are the strongest correlation peaks, judged by pixel alignment: with the
// front camera the candidate's face stays put (and sharp) while the room turns (blurred)
// behind it, and the face can outvote the room in the correlation at zero shift; in the
// alignment the room, being most of the picture, wins. If (almost) nothing changed between the
// two, the camera did not turn: 0° with confidence 1.
//
// A pair contributes nothing — degrees is 0, so the result can be summed or passed to
// ScanCoverage as it is — when the thumbnails differ in size or focal length or are empty, when
// they were captured more than MaxGap apart (confidence 0), and when the confidence is below
// MinConfidence or the shift exceeds MaxShift (confidence reported as measured). Missing a
// real turn only lowers coverage; inventing one could pass a scan that never happened.
//
// A pair the correlation cannot measure, but whose frames are within MaxGap, gets a second try
// by matched ORB corners (roomscan_features.go): 1 fps frames of a brisk scan turn 25–40°
// apart, where the overlap is too small for the correlation's peak.
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
	if len(a) != n || len(b) != n || len(r.window) != n {
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
	for i := range n {
		pa, pb := float32(prev.Pix[i])-ma, float32(cur.Pix[i])-mb
		r.za[i], r.zb[i] = pa, pb
		if d := pa - pb; d > motionLevel || d < -motionLevel {
			changed++
		}
		a[i], b[i] = pa*r.window[i], pb*r.window[i]
	}
	if changed < n/100 {
		return 0, 1
	}
	dx, confidence, ok := r.correlate(w, h)
	if !ok {
		return 0, 0
	}
	if confidence < r.cfg.MinConfidence || math.Abs(float64(dx)) > float64(r.cfg.MaxShift)*float64(w) {
		// Too little overlap for the correlation (a turn of more than ~20° between frames, as
		// 1 fps frames of a brisk scan are): matched corner features may still agree on a shift.
		if fdx, fconf, ok := r.featureShift(prev, cur); ok {
			return yawOf(fdx, cur.Focal), fconf
		}
		return 0, confidence
	}
	// A large shift may be the alias of a larger one the other way (the DFT wraps at the
	// thumbnail's width: a 45° turn reads as −24°), and a weak peak may be a wrong one: where
	// corners agree on another shift, they are right (no wrong corner estimate in the
	// measurements, docs/evidence-camera.md).
	if math.Abs(float64(dx)) > 0.25*float64(w) || confidence < 0.15 {
		if fdx, fconf, ok := r.featureShift(prev, cur); ok && math.Abs(float64(fdx-dx)) > scanClusterCols {
			return yawOf(fdx, cur.Focal), fconf
		}
	}
	return yawOf(dx, cur.Focal), confidence
}

// yawOf turns a shift of a cylindrical thumbnail (Focal columns per radian) into the camera's
// turn in degrees: the scene moving left means the camera turned right.
func yawOf(dx, focal float32) float32 {
	return float32(-float64(dx) / float64(focal) * 180 / math.Pi)
}

// correlate phase-correlates r.a32 and r.b32 (windowed, zero-mean), picks the peak that best
// aligns the thumbnails (r.za, r.zb) and returns its horizontal shift (cur relative to prev,
// to ~0.1 pixel) and the confidence described at YawBetween. It does by hand what
// cv::phaseCorrelate does, to see more than the strongest peak.
func (r *RoomScan) correlate(w, h int) (dx, confidence float32, ok bool) {
	gocv.DFT(r.a32, &r.fa, gocv.DftComplexOutput)
	gocv.DFT(r.b32, &r.fb, gocv.DftComplexOutput)
	fa, _ := r.fa.DataPtrFloat32()
	fb, _ := r.fb.DataPtrFloat32()
	cross, _ := r.cross.DataPtrFloat32()
	if len(fa) != 2*w*h || len(fb) != len(fa) || len(cross) != len(fa) {
		return 0, 0, false
	}
	// Normalised cross-power spectrum conj(A)·B/|conj(A)·B|: only the phase difference, so
	// every frequency votes equally (a bright lamp does not outvote the room's texture).
	for i := 0; i < len(fa); i += 2 {
		ar, ai, br, bi := fa[i], fa[i+1], fb[i], fb[i+1]
		re, im := ar*br+ai*bi, ar*bi-ai*br
		mag := float32(math.Sqrt(float64(re*re+im*im))) + 1e-9
		cross[i], cross[i+1] = re/mag, im/mag
	}
	// Frequencies with no horizontal component say nothing about a horizontal shift, and a
	// room has plenty (the floor line, the top of a desk, seen at the same height whatever the
	// yaw): they would add a ridge along zero vertical shift with its maximum anywhere.
	for y := range h {
		cross[2*y*w], cross[2*y*w+1] = 0, 0
	}
	gocv.DFT(r.cross, &r.surface, gocv.DftInverse|gocv.DftRealOutput|gocv.DftScale)
	surf, _ := r.surface.DataPtrFloat32()
	if len(surf) != w*h {
		return 0, 0, false
	}
	var peaks [roomPeaks][2]int
	var costs [roomPeaks]float32
	best := 0
	for k := range peaks {
		peaks[k][0], peaks[k][1] = argmaxExcept(surf, w, h, peaks[:k])
		costs[k] = r.alignCost(wrapShift(peaks[k][0], w), wrapShift(peaks[k][1], h))
		if costs[k] < costs[best] {
			best = k
		}
	}
	x, y := peaks[best][0], peaks[best][1]
	bestCost := costs[best]
	slices.Sort(costs[:])
	gain := float32(0)
	if median := costs[roomPeaks/2]; median > 0 && !math.IsInf(float64(median), 1) {
		gain = max(0, 1-bestCost/median)
	}
	// Peak height and sub-pixel position: sum and centroid of the 3×3 around it (wrapping).
	var sw, sxw float32
	for oy := -1; oy <= 1; oy++ {
		for ox := -1; ox <= 1; ox++ {
			v := max(surf[((y+oy+h)%h)*w+(x+ox+w)%w], 0)
			sw += v
			sxw += v * float32(ox)
		}
	}
	if sw <= 0 {
		return 0, 0, false
	}
	return float32(wrapShift(x, w)) + sxw/sw, min(sw, 1) * gain, true
}

// roomPeaks is how many correlation peaks are weighed against each other. 6 measured better
// than 4 (face in view: the room's peak is sometimes 5th) and as good as 8.
const roomPeaks = 6

// argmaxExcept finds the largest value of a w×h surface outside the 5×5 (wrapped) around each
// of the points in skip.
func argmaxExcept(surf []float32, w, h int, skip [][2]int) (int, int) {
	bx, by := 0, 0
	best := float32(math.Inf(-1))
	for y := range h {
	next:
		for x := range w {
			v := surf[y*w+x]
			if v <= best {
				continue
			}
			for _, s := range skip {
				if absInt(wrapShift((x-s[0]+w)%w, w)) <= 2 && absInt(wrapShift((y-s[1]+h)%h, h)) <= 2 {
					continue next
				}
			}
			best, bx, by = v, x, y
		}
	}
	return bx, by
}

// alignCost is the mean truncated absolute difference between prev at p and cur at p+(dx,dy)
// over their overlap (zero-mean copies in r.za, r.zb): how badly that shift explains the pair.
// Truncation keeps whatever does not follow the shift (the face, for the room's shift) from
// counting more than a fixed amount per pixel.
func (r *RoomScan) alignCost(dx, dy int) float32 {
	const truncate = 24
	w, h := r.winW, r.winH
	x0, x1 := max(0, -dx), min(w, w-dx)
	y0, y1 := max(0, -dy), min(h, h-dy)
	if (x1-x0)*(y1-y0) < w*h/4 {
		return float32(math.Inf(1))
	}
	var sum float32
	for y := y0; y < y1; y++ {
		ra, rb := r.za[y*w+x0:y*w+x1], r.zb[(y+dy)*w+x0+dx:(y+dy)*w+x1+dx]
		for i, va := range ra {
			d := va - rb[i]
			if d < 0 {
				d = -d
			}
			sum += min(d, truncate)
		}
	}
	return sum / float32((x1-x0)*(y1-y0))
}

// wrapShift maps a DFT index to a signed shift.
func wrapShift(i, n int) int {
	if i > n/2 {
		return i - n
	}
	return i
}

func absInt(i int) int {
	if i < 0 {
		return -i
	}
	return i
}

// correlationScratch (re)creates the correlation images and the window for w×h thumbnails.
// The window is a Tukey window (flat, with a cosine taper over the outer 20% of each side) so
// that the FFT's wrap-around makes no false peak; unlike the Hann window of
// cv::phaseCorrelate it does not concentrate the weight in the middle, where the candidate's
// face is during a front-camera scan (measured: coverage with a face in view 197° → 328° of
// 360° at 10°/frame).
func (r *RoomScan) correlationScratch(w, h int) {
	for _, m := range []*gocv.Mat{&r.a32, &r.b32} {
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
	taper := func(i, n int) float64 {
		edge := 0.2 * float64(n-1)
		if d := min(float64(i), float64(n-1-i)); d < edge {
			return 0.5 * (1 - math.Cos(math.Pi*d/edge))
		}
		return 1
	}
	r.window = make([]float32, w*h)
	r.za, r.zb = make([]float32, w*h), make([]float32, w*h)
	for y := range h {
		wy := taper(y, h)
		for x := range w {
			r.window[y*w+x] = float32(math.Sqrt(wy * taper(x, w)))
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
