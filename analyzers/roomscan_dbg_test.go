package analyzers

import (
	"math/rand/v2"
	"os"
	"testing"
)

func TestRoomDbg(t *testing.T) {
	if os.Getenv("ROOMDBG") == "" {
		t.Skip()
	}
	rng := rand.New(rand.NewPCG(5, 6))
	strip := proceduralStrip(rng)
	pan := newPanorama(strip)
	strip.Close()
	defer pan.close()
	face := syntheticFace()
	defer face.Close()
	rs := newTestRoomScan(t)
	roomDebug = t.Logf
	defer func() { roomDebug = nil }()
	st := &panStats{}
	runScan(t, rs, pan, panScene{stepDeg: 10, face: os.Getenv("ROOMDBG") == "face"}, rng, face, st)
	t.Logf("MAE %.2f cov %v", meanOf(st.errs), st.covEst)
}
