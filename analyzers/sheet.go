package analyzers

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"math"

	"gocv.io/x/gocv"
)

func init() {
	Register("sheet", func(cfg *Config) (Analyzer, error) { return NewSheet(cfg.Sheet) })
}

// SheetConfig configures the "sheet" analyzer. Zero values take the defaults noted. The defaults
// were tuned on the composites of sheet_eval_test.go (real photos as backgrounds, see
// docs/evidence-camera.md); change them together with that test.
type SheetConfig struct {
	// DecodeSide is the longest side this analyzer wants frames decoded at. Default 480: of
	// the written sheets it detected (held-out composites), it read 86% as written at 320,
	// 98% at 480, 97% at 640 and 98% at full size; a ballpoint stroke on a sheet at arm's
	// length is about one pixel at 480. (The JPEG is decoded at 1/2, 1/4 or 1/8 scale, so a
	// 1280×720 frame decodes at 640×360 for both 480 and 640.) A Set decodes every frame once
	// at the largest side its analyzers ask for: with "faces" alone a 1280×720 frame decodes
	// at 320×180, with "sheet" at 640×360 (+0.8 ms measured); "landmarks" asks for 640 anyway.
	DecodeSide int `json:"decode_side,omitempty"`
	// DetectSide is the longest side of the copy the sheet outline is searched in. Default 320:
	// outlines need no detail, and contours at 320 px cost ~1 ms.
	DetectSide int `json:"detect_side,omitempty"`
	// MinArea is the smallest sheet, as a fraction of the frame area. Default 0.03: an A4 sheet
	// ~1 m from a 70° phone camera covers ~4% of the frame; anything smaller cannot be checked
	// for writing anyway.
	MinArea float32 `json:"min_area,omitempty"`
	// MinBrightness is the lowest mean grey level (0–255) inside the sheet. Default 80: paper is
	// the brightest large thing in most frames and auto exposure keeps it well above that; in
	// the composites (room gain 0.55–1.1, shadows 0.5–0.8) sheets average 140–230.
	MinBrightness float32 `json:"min_brightness,omitempty"`
	// MaxSaturation is the highest mean HSV saturation (0–255) inside the sheet. Default 80:
	// white paper under warm light stays well below (composites: 3–25); skin, wood and
	// coloured card are above.
	MaxSaturation float32 `json:"max_saturation,omitempty"`
	// MinEdgeSupport is the fraction of points along the outline where the inside is brighter
	// than the outside. Default 0.6: a hand holding the sheet covers up to a third of one edge;
	// a quadrilateral traced through clutter (a table edge, a door) is supported on far less.
	MinEdgeSupport float32 `json:"min_edge_support,omitempty"`
	// AspectTolerance is how far (|ln(ratio/√2)|) the sheet's true side ratio, recovered from
	// the perspective of the outline, may be from A4's √2. Default 0.15 (ratio 1.22–1.64): the
	// recovery is exact with the right field of view, off by up to 0.085 when the camera's is
	// 60° or 80° instead of 70° (TestA4RatioRecovery), plus corner noise; 16:9 screens (0.23)
	// and square things (0.35) fall outside. 0.2 kept ~1% more sheets and let more screens in.
	AspectTolerance float32 `json:"aspect_tolerance,omitempty"`
	// FOVDeg is the camera's field of view across the longer image side, used to undo the
	// perspective of the outline. Default 70 (phone cameras are 65–80°).
	FOVDeg float32 `json:"fov_deg,omitempty"`
	// PresentScore is the score at which a sheet counts as present. Default 0.5 (every criterion
	// above at its threshold; see SheetObservation.Score).
	PresentScore float32 `json:"present_score,omitempty"`
	// InkContrast is how much darker than the paper around it (as a fraction) a pixel must be to
	// count as ink. Default 0.14: on the tuning composites writing recall rose from 72% at 0.28
	// and 82% at 0.22 to 88% at 0.14 with no more false writing; from 0.10 down blank sheets
	// start to read as written (JPEG noise, shadow edges).
	InkContrast float32 `json:"ink_contrast,omitempty"`
	// WritingInk is the ink fraction (of the sheet's inner area) at which WritingScore is 0.5.
	// Default 0.0003, ~30 px of the 258×364 warped inner sheet: about one short word at arm's
	// length. After the stroke filters of inkFraction, blank composites measure 0 (1 in 55
	// measured 0.0015: background seen past a misplaced corner).
	WritingInk float32 `json:"writing_ink,omitempty"`
}

func (c SheetConfig) withDefaults() SheetConfig {
	def := func(v *float32, d float32) {
		if *v <= 0 {
			*v = d
		}
	}
	if c.DecodeSide <= 0 {
		c.DecodeSide = 480
	}
	if c.DetectSide <= 0 {
		c.DetectSide = 320
	}
	def(&c.MinArea, 0.03)
	def(&c.MinBrightness, 80)
	def(&c.MaxSaturation, 80)
	def(&c.MinEdgeSupport, 0.6)
	def(&c.AspectTolerance, 0.15)
	def(&c.FOVDeg, 70)
	def(&c.PresentScore, 0.5)
	def(&c.InkContrast, 0.14)
	def(&c.WritingInk, 0.0003)
	return c
}

// SheetObservation is what the "sheet" analyzer saw in one evidence-camera frame.
type SheetObservation struct {
	// Present: a whole A4-like sheet is in view (Score >= SheetConfig.PresentScore).
	Present bool `json:"present"`
	// Score is the best candidate's weakest criterion, each mapped so that 0.5 is its threshold
	// (brightness, saturation, edge support, A4 side ratio, solidity); 0 when nothing
	// quadrilateral and large enough was found.
	Score float32 `json:"score"`
	// Writing: the sheet carries ink (WritingScore >= 0.5). Only evaluated when Present.
	Writing bool `json:"writing"`
	// WritingScore is ink/(ink+SheetConfig.WritingInk), ink being the fraction of the sheet's
	// inner area (a 7% border is ignored: fingers and outline error) that is a thin dark stroke.
	WritingScore float32 `json:"writing_score"`
	// Quad is the sheet's corners in original pixels: top-left, top-right, bottom-right,
	// bottom-left as they appear in the frame. Zero when not Present.
	Quad [4][2]float32 `json:"quad"`
}

// Warped sheet size: A4 proportions, portrait. 300 px across is ~1.4 px/mm, enough to keep a
// ballpoint stroke (0.5 mm) as a dark line after the warp, and the warp + morphology stay ~1 ms.
const (
	sheetWarpW = 300
	sheetWarpH = 424
	// The border of the warped sheet ignored by the writing check (7% of each side): fingers
	// holding the sheet and a few pixels of corner error would otherwise read as ink.
	sheetMarginX, sheetMarginY = 21, 30
	// The inner part of the warped sheet, what the writing check looks at.
	sheetInnerW = sheetWarpW - 2*sheetMarginX
	sheetInnerH = sheetWarpH - 2*sheetMarginY
	// minInkBlob is the smallest connected stroke fragment counted (pixels of the warped sheet):
	// JPEG and sensor noise leave isolated specks of 1–3 pixels; a letter is 20 or more.
	minInkBlob = 5
	// inkKernel is the black-hat size on the warped sheet: dark structures narrower than this
	// (strokes) respond, wider ones (shadows, fingers, lighting gradients) do not.
	inkKernel = 9
	// inkFloor is the least absolute darkening (grey levels) counted as ink, so noise on dim
	// paper (where a relative contrast means few levels) does not count.
	inkFloor = 14
)

// Sheet finds a blank or written-on A4 sheet shown to the evidence camera (exam rule: within 15
// minutes before the start the candidate shows one blank A4 sheet, front and back). It uses plain
// OpenCV: bright low-saturation regions and edge loops → convex quadrilaterals → checks on
// brightness, saturation, outline contrast and the perspective-corrected side ratio; then the
// best sheet is warped to a rectangle and thin dark strokes are counted. Main-camera frames are
// left alone. Not safe for concurrent use.
type Sheet struct {
	cfg     SheetConfig
	version string

	// Scratch images, reused between frames.
	small, gray, hsv, sat, white, bin, morph, edges, hull lazyMat
	warped, red, black, closed, sheetHSV, skinNear        lazyMat
	labels, stats, centroids                              lazyMat
	skin, ink                                             gocv.Mat // sheetInnerH×sheetInnerW masks
	k3, k5, kInk                                          gocv.Mat
	homography                                            gocv.Mat
	cands                                                 []sheetCandidate
}

// lazyMat is a scratch Mat created on first use (a zero gocv.Mat must not be touched).
type lazyMat struct{ m gocv.Mat }

func (s *lazyMat) get() *gocv.Mat {
	if s.m.Ptr() == nil {
		s.m = gocv.NewMat()
	}
	return &s.m
}

func (s *lazyMat) close() {
	if s.m.Ptr() != nil {
		s.m.Close()
		s.m = gocv.Mat{}
	}
}

type sheetCandidate struct {
	quad  [4][2]float32 // detect-scale corners, TL TR BR BL
	score float32
	area  float32
}

// NewSheet builds the analyzer.
func NewSheet(cfg SheetConfig) (*Sheet, error) {
	cfg = cfg.withDefaults()
	if cfg.DetectSide < 64 || cfg.MinArea >= 1 || cfg.FOVDeg >= 170 || cfg.PresentScore >= 1 {
		return nil, fmt.Errorf("sheet analyzer: config out of range (detect_side >= 64, min_area < 1, fov_deg < 170, present_score < 1): %+v", cfg)
	}
	a := &Sheet{
		cfg: cfg,
		version: fmt.Sprintf("sheet-cv1 area=%g bright=%g sat=%g edge=%g aspect=%g fov=%g present=%g ink=%g/%g side=%d",
			cfg.MinArea, cfg.MinBrightness, cfg.MaxSaturation, cfg.MinEdgeSupport, cfg.AspectTolerance,
			cfg.FOVDeg, cfg.PresentScore, cfg.InkContrast, cfg.WritingInk, cfg.DecodeSide),
		k3:         gocv.GetStructuringElement(gocv.MorphRect, image.Pt(3, 3)),
		k5:         gocv.GetStructuringElement(gocv.MorphRect, image.Pt(5, 5)),
		kInk:       gocv.GetStructuringElement(gocv.MorphRect, image.Pt(inkKernel, inkKernel)),
		homography: gocv.NewMatWithSize(3, 3, gocv.MatTypeCV64F),
		skin:       gocv.NewMatWithSize(sheetInnerH, sheetInnerW, gocv.MatTypeCV8U),
		ink:        gocv.NewMatWithSize(sheetInnerH, sheetInnerW, gocv.MatTypeCV8U),
		// 64: the composites give 5 quads per frame (median), 10 at most; beyond 64 the last
		// sets' (edge loops) are dropped.
		cands: make([]sheetCandidate, 0, 64),
	}
	return a, nil
}

// Name implements Analyzer.
func (a *Sheet) Name() string { return "sheet" }

// Version implements Analyzer: the algorithm revision and the thresholds in effect.
func (a *Sheet) Version() string { return a.version }

// DecodeSide implements SideNeeder.
func (a *Sheet) DecodeSide() int { return a.cfg.DecodeSide }

// Close implements Analyzer.
func (a *Sheet) Close() error {
	for _, m := range []*lazyMat{&a.small, &a.gray, &a.hsv, &a.sat, &a.white, &a.bin, &a.morph, &a.edges,
		&a.hull, &a.warped, &a.red, &a.black, &a.closed, &a.sheetHSV, &a.skinNear, &a.labels, &a.stats, &a.centroids} {
		m.close()
	}
	for _, m := range []*gocv.Mat{&a.k3, &a.k5, &a.kInk, &a.homography, &a.skin, &a.ink} {
		if m.Ptr() != nil {
			m.Close()
			*m = gocv.Mat{}
		}
	}
	return nil
}

var errSheetInput = errors.New("sheet: frame is not a decoded 8-bit BGR image")

// Analyze implements Analyzer. On the evidence camera it always sets obs.Sheet.
func (a *Sheet) Analyze(_ context.Context, f *Frame, obs *Observation) error {
	if f.Camera != CameraEvidence {
		return nil
	}
	// OpenCV errors abort the process: check everything it will be handed.
	if f.Image.Ptr() == nil || f.Image.Empty() || f.Image.Type() != gocv.MatTypeCV8UC3 || f.Width <= 0 || f.Height <= 0 {
		return errSheetInput
	}
	res := &SheetObservation{}
	obs.Sheet = res
	if f.Image.Cols() < MinSide || f.Image.Rows() < MinSide {
		return nil // a sliver (a very wide frame decoded small): no sheet to see, not an error
	}
	best, scale := a.detect(f.Image)
	if best == nil {
		return nil
	}
	res.Score = best.score
	if best.score < a.cfg.PresentScore {
		return nil
	}
	res.Present = true
	// Corners: detect scale → decoded image → original pixels.
	var dec [4][2]float32
	sx := float32(f.Width) / float32(f.Image.Cols())
	sy := float32(f.Height) / float32(f.Image.Rows())
	for i, p := range best.quad {
		dec[i] = [2]float32{p[0] / scale, p[1] / scale}
		res.Quad[i] = [2]float32{dec[i][0] * sx, dec[i][1] * sy}
	}
	ink := a.inkFraction(f.Image, dec)
	res.WritingScore = ink / (ink + a.cfg.WritingInk)
	res.Writing = res.WritingScore >= 0.5
	return nil
}

// detect returns the best sheet candidate in detect-scale coordinates and that scale (detect
// pixels per decoded pixel), or nil.
func (a *Sheet) detect(img gocv.Mat) (*sheetCandidate, float32) {
	w, h := img.Cols(), img.Rows()
	scale := float32(1)
	src := img
	if long := max(w, h); long > a.cfg.DetectSide {
		scale = float32(a.cfg.DetectSide) / float32(long)
		sw, sh := max(int(float32(w)*scale+0.5), 1), max(int(float32(h)*scale+0.5), 1)
		gocv.Resize(img, a.small.get(), image.Pt(sw, sh), 0, 0, gocv.InterpolationArea)
		src = *a.small.get()
		// Recompute from the rounded size so corners map back exactly.
		scale = float32(sw) / float32(w)
	}
	gray, hsv, sat, white := a.gray.get(), a.hsv.get(), a.sat.get(), a.white.get()
	gocv.CvtColor(src, gray, gocv.ColorBGRToGray)
	gocv.CvtColor(src, hsv, gocv.ColorBGRToHSV)
	gocv.ExtractChannel(*hsv, sat, 1)
	// "Whiteness": bright and unsaturated. Paper under a warm lamp loses a little to saturation;
	// a skin-coloured or wooden region loses a lot.
	gocv.AddWeighted(*gray, 1, *sat, -0.5, 0, white)
	gocv.GaussianBlur(*white, white, image.Pt(5, 5), 0, 0, gocv.BorderReplicate)

	a.cands = a.cands[:0]
	sw, sh := src.Cols(), src.Rows()
	minArea := a.cfg.MinArea * float32(sw*sh)
	bin, morph := a.bin.get(), a.morph.get()

	// Candidates 1–3: bright regions at Otsu's level and two levels above it. Otsu alone merges
	// a sheet lying on a light desk with the desk; the higher levels separate them.
	t0 := gocv.Threshold(*white, bin, 0, 255, gocv.ThresholdBinary|gocv.ThresholdOtsu)
	top := t0 // the brightest level, in Go: gocv.MinMaxLoc allocates on every call
	if px, err := white.DataPtrUint8(); err == nil {
		var m byte
		for _, v := range px {
			m = max(m, v)
		}
		top = float32(m)
	}
	for i := range 3 {
		level := t0 + (top-t0)*float32(i)/3
		if i > 0 && top-t0 < 24 {
			break // no headroom: the higher levels would cut the sheet itself
		}
		if i > 0 {
			gocv.Threshold(*white, bin, level, 255, gocv.ThresholdBinary)
		}
		// Opening cuts thin bright bridges (a lit table edge touching the sheet).
		gocv.MorphologyEx(*bin, morph, gocv.MorphOpen, a.k5)
		a.quadsFrom(*morph, gocv.RetrievalExternal, minArea)
	}
	// Candidate sets 4–5: closed edge loops. They catch sheets whose brightness is split by a
	// lighting gradient or a shadow, where no single level holds the whole sheet. Two Canny
	// thresholds: 40/120 measured best alone (of 25/75, 40/120, 60/180; lower finds more loops
	// in clutter, higher loses the outline of a sheet on a light background), and adding 20/60
	// found ~2% more sheets at the same precision.
	edges := a.edges.get()
	for _, lo := range [...]float32{20, 40} {
		gocv.Canny(*gray, edges, lo, 3*lo)
		gocv.Dilate(*edges, edges, a.k3)
		a.quadsFrom(*edges, gocv.RetrievalList, minArea)
	}

	var best *sheetCandidate
	for i := range a.cands {
		c := &a.cands[i]
		c.score = a.scoreQuad(c.quad, c.area, sw, sh)
		if best == nil || c.score > best.score || (c.score == best.score && c.area > best.area) {
			best = c
		}
	}
	return best, scale
}

// quadsFrom appends the convex quadrilaterals fitted to the large contours of a binary image.
func (a *Sheet) quadsFrom(bin gocv.Mat, mode gocv.RetrievalMode, minArea float32) {
	contours := gocv.FindContours(bin, mode, gocv.ChainApproxSimple)
	defer contours.Close()
	hullMat := a.hull.get()
	for i := range contours.Size() {
		c := contours.At(i) // borrowed from contours: not closed separately
		area := float32(gocv.ContourArea(c))
		if area < minArea || len(a.cands) == cap(a.cands) {
			continue
		}
		// Hull first: a hand over an edge makes a notch the hull ignores; then the 4 hull
		// vertices spanning the most area are the corners (a hidden corner makes a 5th vertex).
		gocv.ConvexHull(c, hullMat, true, true)
		if hullMat.Empty() || hullMat.Rows() < 4 {
			continue
		}
		hull := gocv.NewPointVectorFromMat(*hullMat)
		peri := gocv.ArcLength(hull, true)
		hullArea := float32(gocv.ContourArea(hull))
		var quad [4][2]float32
		ok := false
		for _, eps := range [...]float64{0.02, 0.04} {
			approx := gocv.ApproxPolyDP(hull, eps*peri, true)
			quad, ok = fitQuad(approx, hullArea)
			approx.Close()
			if ok {
				break
			}
		}
		hull.Close()
		if !ok {
			continue
		}
		qa := quadArea(quad)
		// The quad and the hull must nearly coincide (rejects ellipses, blobs, L-shapes; a
		// corner hidden by a hand or cut by a shadow costs a few percent), and the region must
		// fill the quad (a hand may take a bite, a frame with a hole may not).
		if qa < minArea || min(qa, hullArea) < 0.88*max(qa, hullArea) || area < 0.7*qa {
			continue
		}
		a.cands = append(a.cands, sheetCandidate{quad: orderQuad(quad), area: area})
	}
}

// fitQuad fits a quadrilateral to a convex polygon of 4–10 vertices (a simplified hull). With
// more than 4 vertices it tries two fits and keeps the one closer to the hull's area: the 4
// vertices spanning the largest area (right when a side is bent or a corner rounded), and the
// intersections of the 4 longest sides (right when a corner is hidden by a hand or lost in a
// shadow: the sides still point at it).
func fitQuad(pv gocv.PointVector, hullArea float32) ([4][2]float32, bool) {
	n := pv.Size()
	if n < 4 || n > 10 {
		return [4][2]float32{}, false
	}
	var pts [10][2]float32
	for i := range n {
		p := pv.At(i)
		pts[i] = [2]float32{float32(p.X), float32(p.Y)}
	}
	if n == 4 {
		return [4][2]float32{pts[0], pts[1], pts[2], pts[3]}, true
	}
	var best [4][2]float32
	bestArea := float32(-1)
	for i := 0; i < n; i++ {
		for j := i + 1; j < n; j++ {
			for k := j + 1; k < n; k++ {
				for l := k + 1; l < n; l++ {
					q := [4][2]float32{pts[i], pts[j], pts[k], pts[l]}
					if ar := quadArea(q); ar > bestArea {
						best, bestArea = q, ar
					}
				}
			}
		}
	}
	agree := func(qa float32) float32 { return min(qa, hullArea) / max(qa, hullArea, 1) }
	if q, ok := longestSidesQuad(pts[:n]); ok && agree(quadArea(q)) > agree(bestArea) {
		return q, true
	}
	return best, bestArea > 0
}

// longestSidesQuad intersects the lines through the 4 longest sides of a convex polygon, taken
// in the polygon's order. It fails when two consecutive chosen sides are nearly parallel.
func longestSidesQuad(pts [][2]float32) ([4][2]float32, bool) {
	n := len(pts)
	var idx [4]int
	var used [10]bool
	for k := range 4 {
		best := -1
		var bestLen float32
		for i := range n {
			if l := pointDist2(pts[i], pts[(i+1)%n]); !used[i] && (best < 0 || l > bestLen) {
				best, bestLen = i, l
			}
		}
		used[best] = true
		idx[k] = best
	}
	// Back to polygon order.
	for i := 1; i < 4; i++ {
		for j := i; j > 0 && idx[j] < idx[j-1]; j-- {
			idx[j], idx[j-1] = idx[j-1], idx[j]
		}
	}
	var q [4][2]float32
	for k := range 4 {
		a0, a1 := pts[idx[k]], pts[(idx[k]+1)%n]
		b0, b1 := pts[idx[(k+1)%4]], pts[(idx[(k+1)%4]+1)%n]
		dax, day := a1[0]-a0[0], a1[1]-a0[1]
		dbx, dby := b1[0]-b0[0], b1[1]-b0[1]
		den := dax*dby - day*dbx
		// |sin| of the angle between the sides below ~0.26 (15°): the corner is too ill-defined.
		if den*den < 0.07*(dax*dax+day*day)*(dbx*dbx+dby*dby) {
			return q, false
		}
		t := ((b0[0]-a0[0])*dby - (b0[1]-a0[1])*dbx) / den
		q[(k+1)%4] = [2]float32{a0[0] + t*dax, a0[1] + t*day}
	}
	return q, true
}

// quadArea is the shoelace area of a simple polygon given in order.
func quadArea(q [4][2]float32) float32 {
	var s float32
	for i := range 4 {
		j := (i + 1) % 4
		s += q[i][0]*q[j][1] - q[j][0]*q[i][1]
	}
	return float32(math.Abs(float64(s))) / 2
}

// orderQuad returns the corners of a convex quad (given in either rotation direction) as
// top-left, top-right, bottom-right, bottom-left: clockwise on screen, starting at the corner
// with the smallest x+y.
func orderQuad(q [4][2]float32) [4][2]float32 {
	// Make the order clockwise in image coordinates (y down): positive shoelace sum.
	var s float32
	for i := range 4 {
		j := (i + 1) % 4
		s += q[i][0]*q[j][1] - q[j][0]*q[i][1]
	}
	if s < 0 {
		q[1], q[3] = q[3], q[1]
	}
	start := 0
	for i := 1; i < 4; i++ {
		if q[i][0]+q[i][1] < q[start][0]+q[start][1] {
			start = i
		}
	}
	var out [4][2]float32
	for i := range 4 {
		out[i] = q[(start+i)%4]
	}
	return out
}

// linearRamp maps x linearly so that lo → 0, hi → 1, clamped.
func linearRamp(x, lo, hi float32) float32 {
	switch {
	case x <= lo:
		return 0
	case x >= hi:
		return 1
	}
	return (x - lo) / (hi - lo)
}

// sheetCriteria are the measurements one candidate is judged on.
type sheetCriteria struct {
	inFrame   bool    // no corner within 2 px of the frame edge
	gray, sat float32 // means inside the quad
	support   float32 // edgeSupport
	ratio     float32 // a4Ratio (0: not a rectangle's image)
	fill      float32 // region area / quad area
}

// scoreQuad rates one candidate (detect-scale corners, region area) in [0,1]: the minimum of
// its criteria, each mapped so that its configured threshold lands on 0.5.
func (a *Sheet) scoreQuad(q [4][2]float32, area float32, w, h int) float32 {
	return a.score(a.measure(q, area, w, h))
}

func (a *Sheet) measure(q [4][2]float32, area float32, w, h int) sheetCriteria {
	var c sheetCriteria
	// The whole sheet must be in view: corners touching the frame edge mean a wall or desk cut
	// by the frame, or a sheet we cannot see all of.
	const margin = 2
	for _, p := range q {
		if p[0] < margin || p[1] < margin || p[0] > float32(w-1-margin) || p[1] > float32(h-1-margin) {
			return c
		}
	}
	gray, _ := a.gray.get().DataPtrUint8()
	sat, _ := a.sat.get().DataPtrUint8()
	if len(gray) != w*h || len(sat) != w*h {
		return c
	}
	c.inFrame = true
	c.ratio = a4Ratio(q, float32(w), float32(h), a.cfg.FOVDeg)
	c.fill = area / quadArea(q)
	if a.shapeScore(c) == 0 {
		return c // not A4-shaped: skip the pixel loops
	}
	c.gray, c.sat = quadMeans(q, gray, sat, w, h)
	c.support = edgeSupport(q, gray, w, h)
	return c
}

// shapeScore is the part of the score that needs no pixels: side ratio and solidity.
func (a *Sheet) shapeScore(c sheetCriteria) float32 {
	if !c.inFrame || c.ratio <= 0 {
		return 0
	}
	off := float32(math.Abs(math.Log(float64(c.ratio) / math.Sqrt2)))
	return min(1-linearRamp(off, a.cfg.AspectTolerance-0.1, a.cfg.AspectTolerance+0.1), linearRamp(c.fill, 0.7, 0.9))
}

func (a *Sheet) score(c sheetCriteria) float32 {
	score := a.shapeScore(c)
	if score == 0 {
		return 0
	}
	score = min(score, linearRamp(c.gray, a.cfg.MinBrightness-30, a.cfg.MinBrightness+30))
	score = min(score, 1-linearRamp(c.sat, a.cfg.MaxSaturation-30, a.cfg.MaxSaturation+30))
	return min(score, linearRamp(c.support, a.cfg.MinEdgeSupport-0.2, a.cfg.MinEdgeSupport+0.2))
}

// quadMeans averages grey and saturation over the pixels inside a convex quad (clockwise in
// image coordinates), shrunk by a pixel so the outline itself is not counted.
func quadMeans(q [4][2]float32, gray, sat []byte, w, h int) (float32, float32) {
	minX, minY, maxX, maxY := q[0][0], q[0][1], q[0][0], q[0][1]
	for _, p := range q[1:] {
		minX, maxX = min(minX, p[0]), max(maxX, p[0])
		minY, maxY = min(minY, p[1]), max(maxY, p[1])
	}
	x0, x1 := max(int(minX), 0), min(int(maxX)+1, w)
	y0, y1 := max(int(minY), 0), min(int(maxY)+1, h)
	var sg, ss, n int
	for y := y0; y < y1; y++ {
		for x := x0; x < x1; x++ {
			if !insideQuad(q, float32(x), float32(y), 1) {
				continue
			}
			i := y*w + x
			sg += int(gray[i])
			ss += int(sat[i])
			n++
		}
	}
	if n == 0 {
		return 0, 255
	}
	return float32(sg) / float32(n), float32(ss) / float32(n)
}

// insideQuad reports whether (x,y) lies inside the clockwise convex quad by at least d pixels
// (approximately: edge lengths normalise the cross products).
func insideQuad(q [4][2]float32, x, y, d float32) bool {
	for i := range 4 {
		j := (i + 1) % 4
		ex, ey := q[j][0]-q[i][0], q[j][1]-q[i][1]
		cross := ex*(y-q[i][1]) - ey*(x-q[i][0])
		l := float32(math.Sqrt(float64(ex*ex + ey*ey)))
		if cross < d*l {
			return false
		}
	}
	return true
}

// edgeSupport samples points along the middle 80% of each edge and returns the fraction where
// the grey level just inside exceeds that just outside by a clear step: paper is brighter than
// what is behind it along (most of) its outline.
func edgeSupport(q [4][2]float32, gray []byte, w, h int) float32 {
	const samples = 16
	const step = 8 // grey levels: above JPEG noise, below paper-on-light-desk contrast
	d := float32(max(2, max(w, h)/120))
	var ok, n int
	for i := range 4 {
		j := (i + 1) % 4
		ex, ey := q[j][0]-q[i][0], q[j][1]-q[i][1]
		l := float32(math.Sqrt(float64(ex*ex + ey*ey)))
		if l < 1 {
			return 0
		}
		// Clockwise on screen (y down): the inward normal is the edge direction turned right.
		nx, ny := -ey/l, ex/l
		for s := range samples {
			t := 0.1 + 0.8*float32(s)/float32(samples-1)
			px, py := q[i][0]+t*ex, q[i][1]+t*ey
			ix, iy := int(px+nx*d+0.5), int(py+ny*d+0.5)
			ox, oy := int(px-nx*d+0.5), int(py-ny*d+0.5)
			if ix < 0 || iy < 0 || ix >= w || iy >= h || ox < 0 || oy < 0 || ox >= w || oy >= h {
				continue
			}
			n++
			if int(gray[iy*w+ix])-int(gray[oy*w+ox]) >= step {
				ok++
			}
		}
	}
	if n == 0 {
		return 0
	}
	return float32(ok) / float32(n)
}

// a4Ratio recovers the true long/short side ratio of the rectangle whose image is the quad
// (TL, TR, BR, BL in pixels of a w×h image), assuming a pinhole camera with its principal point at
// the image centre and the given field of view across the longer side (Zhang & He, "Whiteboard
// scanning and image enhancement", 2007, with the focal length known instead of estimated: from
// a single quad it is ill-conditioned near fronto-parallel views). Returns 0 when degenerate.
func a4Ratio(q [4][2]float32, w, h, fovDeg float32) float32 {
	f := float64(max(w, h)) / 2 / math.Tan(float64(fovDeg)*math.Pi/360)
	cx, cy := float64(w)/2, float64(h)/2
	// Zhang & He label the rectangle's corners m1=(0,0), m2=(W,0), m3=(0,H), m4=(W,H).
	m := func(p [2]float32) [3]float64 { return [3]float64{float64(p[0]) - cx, float64(p[1]) - cy, 1} }
	m1, m2, m4, m3 := m(q[0]), m(q[1]), m(q[2]), m(q[3])
	m14 := vec3Cross(m1, m4)
	d2, d3 := vec3Dot(vec3Cross(m2, m4), m3), vec3Dot(vec3Cross(m3, m4), m2)
	if math.Abs(d2) < 1e-9 || math.Abs(d3) < 1e-9 {
		return 0
	}
	k2, k3 := vec3Dot(m14, m3)/d2, vec3Dot(m14, m2)/d3
	if k2 <= 0 || k3 <= 0 {
		return 0 // not the image of a rectangle in front of the camera
	}
	var n2, n3 [3]float64
	for i := range 3 {
		n2[i] = k2*m2[i] - m1[i]
		n3[i] = k3*m3[i] - m1[i]
	}
	w2 := n2[0]*n2[0] + n2[1]*n2[1] + f*f*n2[2]*n2[2]
	h2 := n3[0]*n3[0] + n3[1]*n3[1] + f*f*n3[2]*n3[2]
	if w2 <= 0 || h2 <= 0 {
		return 0
	}
	r := math.Sqrt(w2 / h2)
	if r < 1 {
		r = 1 / r
	}
	return float32(r)
}

func vec3Cross(a, b [3]float64) [3]float64 {
	return [3]float64{a[1]*b[2] - a[2]*b[1], a[2]*b[0] - a[0]*b[2], a[0]*b[1] - a[1]*b[0]}
}

func vec3Dot(a, b [3]float64) float64 { return a[0]*b[0] + a[1]*b[1] + a[2]*b[2] }

// inkFraction warps the inner part of the sheet (corners in decoded-image pixels, TL TR BR BL)
// to a portrait A4 rectangle and returns the fraction of it covered by thin dark strokes.
//
// The red channel is used because the inks a candidate may have (black, blue) are dark in it
// while light skin is bright. Black-hat (closing minus image) keeps only dark structures
// narrower than inkKernel: lighting gradients and shadows are wide and vanish; a shadow's edge
// is a step, which closing reproduces, so it vanishes too. What is left is filtered as strokes:
// pixels near skin-coloured ones (fingers holding the sheet, darker skin is dark in red too) do
// not count, nor do specks under minInkBlob pixels (noise) or blobs touching the border of the
// inner area (background showing past an imprecise corner, fingertips).
func (a *Sheet) inkFraction(img gocv.Mat, q [4][2]float32) float32 {
	// Portrait output: if the quad's first edge (top) is its long side, start from the
	// bottom-left corner so the long side maps to the warped height.
	top := pointDist2(q[0], q[1]) + pointDist2(q[3], q[2])
	left := pointDist2(q[0], q[3]) + pointDist2(q[1], q[2])
	if top > left {
		q = [4][2]float32{q[3], q[0], q[1], q[2]}
	}
	// Map the whole sheet so that only its inner part lands in the output image.
	const mx, my = sheetMarginX, sheetMarginY
	dst := [4][2]float32{{-mx, -my}, {sheetWarpW - 1 - mx, -my}, {sheetWarpW - 1 - mx, sheetWarpH - 1 - my}, {-mx, sheetWarpH - 1 - my}}
	hm, ok := quadHomography(q, dst)
	if !ok {
		return 0
	}
	for i := range 9 {
		a.homography.SetDoubleAt(i/3, i%3, hm[i])
	}
	warped, red, closed, black, hsv := a.warped.get(), a.red.get(), a.closed.get(), a.black.get(), a.sheetHSV.get()
	gocv.WarpPerspectiveWithParams(img, warped, a.homography, image.Pt(sheetInnerW, sheetInnerH),
		gocv.InterpolationLinear, gocv.BorderReplicate, color.RGBA{})
	if warped.Empty() || warped.Cols() != sheetInnerW || warped.Rows() != sheetInnerH {
		return 0
	}
	gocv.ExtractChannel(*warped, red, 2)
	gocv.MorphologyEx(*red, closed, gocv.MorphClose, a.kInk)
	gocv.Subtract(*closed, *red, black)
	gocv.CvtColor(*warped, hsv, gocv.ColorBGRToHSV)
	cl, _ := closed.DataPtrUint8()
	bh, _ := black.DataPtrUint8()
	hs, _ := hsv.DataPtrUint8()
	skin, _ := a.skin.DataPtrUint8()
	ink, _ := a.ink.DataPtrUint8()
	const n = sheetInnerW * sheetInnerH
	if len(cl) != n || len(bh) != n || len(hs) != 3*n || len(skin) != n || len(ink) != n {
		return 0
	}
	// Skin: a hue from red to orange, clearly more saturated than the paper (warm light tints
	// paper orange too, but weakly).
	var satSum int
	for i := range n {
		satSum += int(hs[3*i+1])
	}
	skinSat := satSum/n + 35
	for i := range n {
		h, s := hs[3*i], int(hs[3*i+1])
		if (h <= 25 || h >= 165) && s >= skinSat {
			skin[i] = 255
		} else {
			skin[i] = 0
		}
	}
	skinNear := a.skinNear.get()
	gocv.Dilate(a.skin, skinNear, a.kInk)
	near, _ := skinNear.DataPtrUint8()
	if len(near) != n {
		return 0
	}
	contrast := a.cfg.InkContrast
	for i := range n {
		b := bh[i]
		if b >= inkFloor && float32(b) >= contrast*float32(cl[i]) && near[i] == 0 {
			ink[i] = 255
		} else {
			ink[i] = 0
		}
	}
	labels, stats, centroids := a.labels.get(), a.stats.get(), a.centroids.get()
	count := gocv.ConnectedComponentsWithStats(a.ink, labels, stats, centroids)
	if stats.Rows() < count || stats.Cols() != 5 || stats.Type() != gocv.MatTypeCV32S {
		return 0
	}
	var inkPx int
	for c := 1; c < count; c++ { // label 0 is the background
		x, y := stats.GetIntAt(c, 0), stats.GetIntAt(c, 1)
		w, h, area := stats.GetIntAt(c, 2), stats.GetIntAt(c, 3), stats.GetIntAt(c, 4)
		if area < minInkBlob || x == 0 || y == 0 || x+w == sheetInnerW || y+h == sheetInnerH {
			continue
		}
		inkPx += int(area)
	}
	return float32(inkPx) / n
}

func pointDist2(a, b [2]float32) float32 {
	dx, dy := a[0]-b[0], a[1]-b[1]
	return dx*dx + dy*dy
}

// quadHomography solves for the 3×3 projective map (row-major, h33 = 1) taking src[i] to dst[i].
func quadHomography(src, dst [4][2]float32) ([9]float64, bool) {
	var m [8][9]float64 // augmented 8×8 system
	for i := range 4 {
		x, y := float64(src[i][0]), float64(src[i][1])
		u, v := float64(dst[i][0]), float64(dst[i][1])
		m[2*i] = [9]float64{x, y, 1, 0, 0, 0, -u * x, -u * y, u}
		m[2*i+1] = [9]float64{0, 0, 0, x, y, 1, -v * x, -v * y, v}
	}
	for c := range 8 {
		p := c
		for r := c + 1; r < 8; r++ {
			if math.Abs(m[r][c]) > math.Abs(m[p][c]) {
				p = r
			}
		}
		if math.Abs(m[p][c]) < 1e-12 {
			return [9]float64{}, false
		}
		m[c], m[p] = m[p], m[c]
		for r := range 8 {
			if r == c {
				continue
			}
			k := m[r][c] / m[c][c]
			for k2 := c; k2 < 9; k2++ {
				m[r][k2] -= k * m[c][k2]
			}
		}
	}
	var hm [9]float64
	for i := range 8 {
		hm[i] = m[i][8] / m[i][i]
	}
	hm[8] = 1
	return hm, true
}
