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
// away is ≥ 40 px there.
const screenDetectSide = 320

// screenQuad is a bright, convex, four-sided region in detect-scale pixels.
type screenQuad struct {
	pts    []image.Point
	bounds image.Rectangle
}

// screenRects finds bright quadrilaterals (screens, posters) in img. scale maps original
// pixels to the detect scale.
func screenRects(img gocv.Mat) (quads []screenQuad, scale float32) {
	if img.Empty() || img.Type() != gocv.MatTypeCV8UC3 || img.Cols() < MinSide || img.Rows() < MinSide {
		return nil, 0
	}
	w, h := img.Cols(), img.Rows()
	s := min(1, float64(screenDetectSide)/float64(max(w, h)))
	sw, sh := max(int(float64(w)*s), 1), max(int(float64(h)*s), 1)
	small, grey, edges := gocv.NewMat(), gocv.NewMat(), gocv.NewMat()
	defer small.Close()
	defer grey.Close()
	defer edges.Close()
	gocv.Resize(img, &small, image.Pt(sw, sh), 0, 0, gocv.InterpolationArea)
	gocv.CvtColor(small, &grey, gocv.ColorBGRToGray)
	gocv.Canny(grey, &edges, 30, 90)
	k := gocv.GetStructuringElement(gocv.MorphRect, image.Pt(3, 3))
	defer k.Close()
	gocv.Dilate(edges, &edges, k)
	contours := gocv.FindContours(edges, gocv.RetrievalList, gocv.ChainApproxSimple)
	defer contours.Close()
	frameArea := float64(sw * sh)
	mask, ring := gocv.NewMatWithSize(sh, sw, gocv.MatTypeCV8U), gocv.NewMatWithSize(sh, sw, gocv.MatTypeCV8U)
	defer mask.Close()
	defer ring.Close()
	grow := gocv.GetStructuringElement(gocv.MorphRect, image.Pt(9, 9))
	defer grow.Close()
	for i := range contours.Size() {
		c := contours.At(i)
		area := gocv.ContourArea(c)
		// 1.5%: a laptop screen 2 m from the phone; ≤ 60%: not the frame itself.
		if area < 0.015*frameArea || area > 0.6*frameArea {
			continue
		}
		hull := gocv.NewMat()
		gocv.ConvexHull(c, &hull, true, false)
		hpts := hullPoints(c, hull)
		hull.Close()
		if len(hpts) < 4 {
			continue
		}
		hv := gocv.NewPointVectorFromPoints(hpts)
		approx := gocv.ApproxPolyDP(hv, 0.04*gocv.ArcLength(hv, true), true)
		hullArea := gocv.ContourArea(hv)
		hv.Close()
		pts := approx.ToPoints()
		approx.Close()
		if len(pts) != 4 || area < 0.8*hullArea {
			continue // not four-sided, or a ragged outline (a person, a plant)
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
		// Brighter than its surroundings: a lit screen, a poster under the room light.
		mask.SetTo(gocv.NewScalar(0, 0, 0, 0))
		pv := gocv.NewPointsVectorFromPoints([][]image.Point{pts})
		gocv.FillPoly(&mask, pv, color.RGBA{255, 255, 255, 0})
		pv.Close()
		gocv.Dilate(mask, &ring, grow)
		gocv.Subtract(ring, mask, &ring)
		in := grey.MeanWithMask(mask).Val1
		out := grey.MeanWithMask(ring).Val1
		if in < out+12 {
			continue
		}
		quads = append(quads, screenQuad{pts: pts, bounds: r})
	}
	return quads, float32(s)
}

// hullPoints returns the hull's points (ConvexHull gives indices into c).
func hullPoints(c gocv.PointVector, hull gocv.Mat) []image.Point {
	out := make([]image.Point, 0, hull.Rows())
	for j := range hull.Rows() {
		idx := int(hull.GetIntAt(j, 0))
		if idx >= 0 && idx < c.Size() {
			out = append(out, c.At(idx))
		}
	}
	return out
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
// pixels) lies inside one of the quads with a margin of 3% of the quad's size all round.
func onScreen(quads []screenQuad, scale float32, box [4]float32) bool {
	x0, y0 := float64(box[0]*scale), float64(box[1]*scale)
	x1, y1 := float64((box[0]+box[2])*scale), float64((box[1]+box[3])*scale)
	for _, q := range quads {
		if float64(q.bounds.Dx()*q.bounds.Dy()) < 1.3*(x1-x0)*(y1-y0) {
			continue // the person is the rectangle (a pasted box around them), not inside one
		}
		margin := 0.03 * float64(max(q.bounds.Dx(), q.bounds.Dy()))
		pv := gocv.NewPointVectorFromPoints(q.pts)
		inside := true
		for _, p := range [4][2]float64{{x0, y0}, {x1, y0}, {x1, y1}, {x0, y1}} {
			if gocv.PointPolygonTest(pv, image.Pt(int(math.Round(p[0])), int(math.Round(p[1]))), true) < margin {
				inside = false
				break
			}
		}
		pv.Close()
		if inside {
			return true
		}
	}
	return false
}
