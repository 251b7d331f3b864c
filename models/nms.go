package models

import "slices"

// hardNMS appends to dst the boxes of cands that survive greedy non-maximum suppression: best
// score first, each box kept unless it overlaps (by the caller's test) one already kept. cands is
// sorted in place. Both detectors use it, with their own overlap rule (per class for objects).
func hardNMS[B any](dst, cands []B, score func(B) float32, overlaps func(a, b B) bool) []B {
	// Stable: near-certain faces saturate at score 1.0, and which of two tied boxes survives must
	// not depend on how many weaker candidates were collected (the faces analyzer collects down
	// to 0.4 for its agreement pass; an unstable sort then picked another tied box on 46 of
	// 5,690 identity photos).
	slices.SortStableFunc(cands, func(a, b B) int {
		switch sa, sb := score(a), score(b); {
		case sa > sb:
			return -1
		case sa < sb:
			return 1
		}
		return 0
	})
	first := len(dst)
	for _, c := range cands {
		keep := true
		for _, k := range dst[first:] {
			if overlaps(c, k) {
				keep = false
				break
			}
		}
		if keep {
			dst = append(dst, c)
		}
	}
	return dst
}

// rectIoU is the intersection over union of two x, y, w, h boxes.
func rectIoU(ax, ay, aw, ah, bx, by, bw, bh float32) float32 {
	ix := min(ax+aw, bx+bw) - max(ax, bx)
	iy := min(ay+ah, by+bh) - max(ay, by)
	if ix <= 0 || iy <= 0 {
		return 0
	}
	inter := ix * iy
	return inter / (aw*ah + bw*bh - inter)
}
