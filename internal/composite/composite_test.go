package composite

import (
	"math/rand/v2"
	"testing"

	"gocv.io/x/gocv"
)

// A room is a 1280×720 colour frame that shows every person pasted into it: a person is a
// patch of a colour the wall and floor never have (pure green), at 80–340 px tall.
func TestRoomShowsEveryPerson(t *testing.T) {
	green := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(0, 255, 0, 0), 300, 200, gocv.MatTypeCV8UC3)
	defer green.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		fr := Room(rng, []gocv.Mat{green})
		if fr.Cols() != 1280 || fr.Rows() != 720 || fr.Channels() != 3 {
			t.Fatalf("room is %dx%d×%d, want 1280x720×3", fr.Cols(), fr.Rows(), fr.Channels())
		}
		// Count green pixels: a pasted person is at least 80×53 of them, at most 340×227.
		n := 0
		for y := 0; y < fr.Rows(); y++ {
			for x := 0; x < fr.Cols(); x++ {
				v := fr.GetVecbAt(y, x)
				if v[0] == 0 && v[1] == 255 && v[2] == 0 {
					n++
				}
			}
		}
		fr.Close()
		if n < 80*53 || n > 341*228 {
			t.Errorf("room shows %d green pixels, want one person of 80–340 px tall", n)
		}
	}
}

// Cover fills exactly w×h whatever the aspect ratio of the source.
func TestCoverSize(t *testing.T) {
	for _, sz := range [][2]int{{100, 400}, {640, 480}, {2000, 300}} {
		src := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(9, 9, 9, 0), sz[1], sz[0], gocv.MatTypeCV8UC3)
		out := Cover(src, 230, 172)
		if out.Cols() != 230 || out.Rows() != 172 {
			t.Errorf("Cover(%dx%d) = %dx%d, want 230x172", sz[0], sz[1], out.Cols(), out.Rows())
		}
		out.Close()
		src.Close()
	}
}
