package analyzers

import (
	"cmp"
	"math"
	"slices"

	"gocv.io/x/gocv"
)

// scanFeatures matches ORB corners between two room-scan thumbnails: the fallback of YawBetween
// for pairs whose overlap is too small for the phase correlation.
type scanFeatures struct {
	orb     gocv.ORB
	matcher gocv.BFMatcher
	mask    gocv.Mat
}

func newScanFeatures() *scanFeatures {
	// Small thumbnails (138×90): a small patch and edge margin so corners near the border count,
	// three scales (a hand-held scan changes the distance a little), a low FAST threshold for
	// plain walls.
	return &scanFeatures{
		orb:     gocv.NewORBWithParams(400, 1.2, 3, 8, 0, 2, gocv.ORBScoreTypeHarris, 15, 8),
		matcher: gocv.NewBFMatcherWithParams(gocv.NormHamming, false),
		mask:    gocv.NewMat(),
	}
}

func (s *scanFeatures) close() {
	s.orb.Close()
	s.matcher.Close()
	s.mask.Close()
}

// featureShift estimates cur's horizontal shift relative to prev (thumbnail columns) from ORB
// matches that pass the ratio test: the shift most matches agree on (within scanClusterCols
// columns, 4 rows up or down), if enough do, 40% of them or more, and three times more than on
// any other shift.
// confidence is the share of the voting matches that agree.
func (r *RoomScan) featureShift(prev, cur *Thumb) (dx, confidence float32, ok bool) {
	if r.features == nil {
		r.features = newScanFeatures()
	}
	f := r.features
	a, err := gocv.NewMatFromBytes(prev.H, prev.W, gocv.MatTypeCV8U, prev.Pix)
	if err != nil {
		return 0, 0, false
	}
	defer a.Close()
	b, err := gocv.NewMatFromBytes(cur.H, cur.W, gocv.MatTypeCV8U, cur.Pix)
	if err != nil {
		return 0, 0, false
	}
	defer b.Close()
	kpA, descA := f.orb.DetectAndCompute(a, f.mask)
	defer descA.Close()
	kpB, descB := f.orb.DetectAndCompute(b, f.mask)
	defer descB.Close()
	if len(kpA) < scanMinMatches || len(kpB) < scanMinMatches || descA.Empty() || descB.Empty() {
		return 0, 0, false
	}
	// Small turns are the correlation's (it fails on large ones): what barely moved here is
	// the candidate's face or hand jitter, not the room.
	minShift := 0.06 * float64(cur.W)
	type shift struct{ dx, dy float32 }
	var shifts []shift
	for _, m := range f.matcher.KnnMatch(descA, descB, 2) {
		if len(m) < 2 || m[0].Distance > 0.8*m[1].Distance || m[0].QueryIdx >= len(kpA) || m[0].TrainIdx >= len(kpB) {
			continue
		}
		pa, pb := kpA[m[0].QueryIdx], kpB[m[0].TrainIdx]
		d := shift{float32(pb.X - pa.X), float32(pb.Y - pa.Y)}
		if math.Abs(float64(d.dx)) < minShift || math.Abs(float64(d.dy)) > 4 {
			continue
		}
		shifts = append(shifts, d)
	}
	if len(shifts) < scanMinMatches {
		return 0, 0, false
	}
	// The densest window of shifts, and the densest one clear of it: the room moves as one,
	// so its matches pile up at one shift, clearly above any other.
	slices.SortFunc(shifts, func(p, q shift) int { return cmp.Compare(p.dx, q.dx) })
	window := func(i int) int {
		j := i
		for j < len(shifts) && shifts[j].dx-shifts[i].dx <= scanClusterCols {
			j++
		}
		return j - i
	}
	best, bestAt := 0, 0
	for i := range shifts {
		if c := window(i); c > best {
			best, bestAt = c, i
		}
	}
	second := 0
	for i := range shifts {
		if math.Abs(float64(shifts[i].dx-shifts[bestAt].dx)) > 2*scanClusterCols {
			second = max(second, window(i))
		}
	}
	if best < scanMinMatches || best < 3*second || float32(best) < scanMinAgree*float32(len(shifts)) {
		return 0, 0, false
	}
	var sum float32
	for _, s := range shifts[bestAt : bestAt+best] {
		sum += s.dx
	}
	return sum / float32(best), float32(best) / float32(len(shifts)), true
}

// scanMinMatches is how many matches must agree on a shift, within scanClusterCols columns,
// and scanMinAgree the share of the voting matches they must be.
const (
	scanMinMatches  = 8
	scanClusterCols = 3
	scanMinAgree    = 0.4
)
