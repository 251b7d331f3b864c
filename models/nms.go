package models

import "slices"

// hardNMS appends to dst the boxes of cands that survive greedy non-maximum suppression: best
// score first, each box kept unless it overlaps (by the caller's test) one already kept. cands is
// sorted in place. Both detectors use it, with their own overlap rule (per class for objects).
func hardNMS[B any](dst, cands []B, score func(B) float32, overlaps func(a, b B) bool) []B {
	slices.SortFunc(cands, func(a, b B) int {
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
