package app

import (
	"log/slog"
	"os"
	"testing"
)

var debugLog *slog.Logger

func TestZZDebugVision(t *testing.T) {
	dir := maskDir(t)
	f := sampleFrames(t)
	set := visionSet(t)
	cand := pick(t, set, "candidate alone", f.Candidate, 2, alone)
	masked := maskedFrames(t, set, dir, 3)
	var main [][]byte
	for i := range 18 {
		if i >= 6 && i < 12 {
			main = append(main, masked[i%len(masked)])
		} else {
			main = append(main, cand[i%len(cand)])
		}
	}
	b := backends(t)[1]
	debugLog = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	defer func() { debugLog = nil }()
	got, _, _ := objectFlags(t, b, main, nil)
	t.Log(got)
}
