package analyzers

import (
	"image"
	"image/color"
	"math"

	"gocv.io/x/gocv"
)

// People on screens. The evidence phone films the candidate from behind, so the laptop screen —
// showing the candidate's own live video — is in its view, and the person detector finds a
// person there. A person on a screen (or a poster, a framed photo) is inside a rectangle with a
// visible border that is brighter than what surrounds it, with some margin all round: the
// screen's own picture is framed by its bezel, while a real person in a doorway or in front of
// a window reaches past the frame (feet on the floor, body below the sill). screenRects finds
// those rectangles once per frame; onScreen tests a person box against them.

// screenDetectSide is the longest side the rectangles are looked for at: a laptop screen 1–2 m
// away is ≥ 60 px there, its bezel a few pixels.
const screenDetectSide = 480

// screenQuad is a bright, convex, four-sided region in detect-scale pixels.
type screenQuad struct {
	pts    []image.Point
	bounds image.Rectangle
}

// screenRects finds bright quadrilaterals (screens, posters) in img. scale maps decoded pixels
// to the detect scale. Candidates are the outer outlines of bright regions at several levels
// (a lit screen is among the brightest things in a room; its dark bezel parts it from a light
// wall) and closed edge loops (the bezel's outline when the wall is as bright).
func screenRects(img gocv.Mat) (quads []screenQuad, scale float32) {
	if img.Empty() || img.Type() != gocv.MatTypeCV8UC3 || img.Cols() < MinSide || img.Rows() < MinSide {
		return nil, 0
	}
	w, h := img.Cols(), img.Rows()
	s := min(1, float64(screenDetectSide)/float64(max(w, h)))
	sw, sh := max(int(float64(w)*s), 1), max(int(float64(h)*s), 1)
	small, grey, bin := gocv.NewMat(), gocv.NewMat(), gocv.NewMat()
	defer small.Close()
	defer grey.Close()
	defer bin.Close()
	gocv.Resize(img, &small, image.Pt(sw, sh), 0, 0, gocv.InterpolationArea)
	gocv.CvtColor(small, &grey, gocv.ColorBGRToGray)
	mask, ring := gocv.NewMatWithSize(sh, sw, gocv.MatTypeCV8U), gocv.NewMatWithSize(sh, sw, gocv.MatTypeCV8U)
	defer mask.Close()
	defer ring.Close()
	k3 := gocv.GetStructuringElement(gocv.MorphRect, image.Pt(3, 3))
	defer k3.Close()
	grow := gocv.GetStructuringElement(gocv.MorphRect, image.Pt(9, 9))
	defer grow.Close()
	frameArea := float64(sw * sh)
	edges := gocv.NewMat()
	defer edges.Close()

	consider := func(contours gocv.PointsVector) {
		for i := range contours.Size() {
			c := contours.At(i)
			area := gocv.ContourArea(c)
			// 1%: a laptop screen 2 m from the phone; ≤ 60%: not the frame itself.
			if area < 0.01*frameArea || area > 0.6*frameArea {
				continue
			}
			// As for the sheet (sheet.go): the hull, then the quad that best fits it, which must
			// nearly coincide with it and be filled by the region.
			hullMat := gocv.NewMat()
			gocv.ConvexHull(c, &hullMat, true, true)
			if hullMat.Empty() || hullMat.Rows() < 4 {
				hullMat.Close()
				continue
			}
			hull := gocv.NewPointVectorFromMat(hullMat)
			hullMat.Close()
			peri, hullArea := gocv.ArcLength(hull, true), float32(gocv.ContourArea(hull))
			var q [4][2]float32
			ok := false
			for _, eps := range [...]float64{0.02, 0.04} {
				approx := gocv.ApproxPolyDP(hull, eps*peri, true)
				q, ok = fitQuad(approx, hullArea)
				approx.Close()
				if ok {
					break
				}
			}
			hull.Close()
			qa := quadArea(q)
			if screenDebug != nil {
				screenDebug("contour area %.0f hull %.0f quad %.0f ok %v", area, hullArea, qa, ok)
			}
			if !ok || min(qa, hullArea) < 0.88*max(qa, hullArea) || float32(area) < 0.7*qa {
				continue // not four-sided, or a ragged outline (a person, a plant)
			}
			pts := make([]image.Point, 4)
			for j, p := range q {
				pts[j] = image.Pt(int(math.Round(float64(p[0]))), int(math.Round(float64(p[1]))))
			}
			qv := gocv.NewPointVectorFromPoints(pts)
			r := gocv.BoundingRect(qv)
			qv.Close()
			if ar := float64(r.Dx()) / float64(max(r.Dy(), 1)); ar < 0.6 || ar > 3.2 {
				continue
			}
			if dup(quads, r) {
				continue
			}
			support := outlineSupport(edges, pts)
			// Brighter than its surroundings: a lit screen, a poster under the room light.
			mask.SetTo(gocv.NewScalar(0, 0, 0, 0))
			pv := gocv.NewPointsVectorFromPoints([][]image.Point{pts})
			gocv.FillPoly(&mask, pv, color.RGBA{255, 255, 255, 0})
			pv.Close()
			gocv.Dilate(mask, &ring, grow)
			gocv.Subtract(ring, mask, &ring)
			in, out := grey.MeanWithMask(mask).Val1, grey.MeanWithMask(ring).Val1
			if screenDebug != nil {
				screenDebug("quad %v in %.0f out %.0f support %.2f", pts, in, out, support)
			}
			// Bright (a lit screen), or framed all round (a bezel, a picture frame) and not
			// darker than the wall — or, framed all round and wider than tall, a screen on a
			// wall brighter than its page: the dark rectangle a person really stands in is a
			// doorway, taller than wide.
			landscape := float64(r.Dx()) >= 1.2*float64(r.Dy())
			if !(in >= out+12 && support >= 0.5) && !(support >= 0.75 && (in >= out-5 || landscape)) {
				continue
			}
			quads = append(quads, screenQuad{pts: pts, bounds: r})
		}
	}
	gocv.Canny(grey, &edges, 40, 120)
	gocv.Dilate(edges, &edges, k3)
	// The closed edge loops first: a bezel's outline is the screen's true outline.
	gocv.Canny(grey, &bin, 40, 120)
	gocv.MorphologyEx(bin, &bin, gocv.MorphClose, k3)
	c := gocv.FindContours(bin, gocv.RetrievalList, gocv.ChainApproxSimple)
	consider(c)
	c.Close()
	otsu := gocv.Threshold(grey, &bin, 0, 255, gocv.ThresholdBinary|gocv.ThresholdOtsu)
	for _, level := range []float32{-1, max(otsu+30, 150), 190, 225} {
		if level >= 0 {
			gocv.Threshold(grey, &bin, level, 255, gocv.ThresholdBinary)
		}
		gocv.MorphologyEx(bin, &bin, gocv.MorphOpen, k3)
		c = gocv.FindContours(bin, gocv.RetrievalExternal, gocv.ChainApproxSimple)
		consider(c)
		c.Close()
	}
	// The dark bezel itself: its outer outline is the screen's, whatever the page shows (a
	// video box in a corner leaves the bright page no four-sided outline of its own) and where
	// an edge loop does not close (the screen standing on a desk edge). 80: a 12 px bezel
	// shrunk to the detect scale blends with the page at its thinnest.
	gocv.Threshold(grey, &bin, 80, 255, gocv.ThresholdBinaryInv)
	c = gocv.FindContours(bin, gocv.RetrievalExternal, gocv.ChainApproxSimple)
	consider(c)
	c.Close()
	return quads, float32(s)
}

// outlineSupport is the share of points along the quad's sides that lie on an edge (edges
// dilated by one pixel).
func outlineSupport(edges gocv.Mat, pts []image.Point) float64 {
	const per = 24
	on, n := 0, 0
	for i := range pts {
		a, b := pts[i], pts[(i+1)%len(pts)]
		for j := range per {
			x := a.X + (b.X-a.X)*j/per
			y := a.Y + (b.Y-a.Y)*j/per
			if x < 0 || y < 0 || x >= edges.Cols() || y >= edges.Rows() {
				continue
			}
			n++
			if edges.GetUCharAt(y, x) > 0 {
				on++
			}
		}
	}
	if n == 0 {
		return 0
	}
	return float64(on) / float64(n)
}

// dup: the same rectangle found again (the inner and outer edge of a bezel).
func dup(quads []screenQuad, r image.Rectangle) bool {
	for _, q := range quads {
		in := q.bounds.Intersect(r)
		if u := q.bounds.Union(r); float64(in.Dx()*in.Dy()) > 0.9*float64(u.Dx()*u.Dy()) {
			return true
		}
	}
	return false
}

// onScreen reports whether a person box (x, y, w, h in original pixels; scale to detect
// pixels) is on one of the quads: ≥ 85% of the box inside it (a detector box spills past the
// video's edge), and the middle of its bottom edge clearly inside, above the quad's bottom
// (1.5% of the quad's size): a person in a doorway or in front of a window stands on the floor
// below its frame, while a video shows a person cut off inside the screen.
func onScreen(quads []screenQuad, scale float32, box [4]float32) bool {
	x0, y0 := float64(box[0]*scale), float64(box[1]*scale)
	x1, y1 := float64((box[0]+box[2])*scale), float64((box[1]+box[3])*scale)
	for _, q := range quads {
		if float64(q.bounds.Dx()*q.bounds.Dy()) < 1.3*(x1-x0)*(y1-y0) {
			continue // the person is the rectangle (a pasted box around them), not inside one
		}
		margin := 0.015 * float64(max(q.bounds.Dx(), q.bounds.Dy()))
		pv := gocv.NewPointVectorFromPoints(q.pts)
		on := gocv.PointPolygonTest(pv, image.Pt(int(math.Round((x0+x1)/2)), int(math.Round(y1))), true) >= margin
		if on {
			const grid = 8
			in := 0
			for i := range grid {
				for j := range grid {
					x := x0 + (x1-x0)*(float64(i)+0.5)/grid
					y := y0 + (y1-y0)*(float64(j)+0.5)/grid
					if gocv.PointPolygonTest(pv, image.Pt(int(math.Round(x)), int(math.Round(y))), false) >= 0 {
						in++
					}
				}
			}
			on = in >= grid*grid*85/100
		}
		pv.Close()
		if on {
			return true
		}
	}
	return false
}

var screenDebug func(string, ...any)
