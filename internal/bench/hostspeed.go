package bench

import (
	"fmt"
	"io"
	"runtime"
	"slices"
	"time"

	"gocv.io/x/gocv"

	"proctor/analyzers"
	"proctor/models"
)

// referenceModel is the fixed workload that measures the host's speed: the float person
// detector, committed and compiled into the binary, the same kind of work as the analyzers
// (ONNX Runtime convolutions on one thread). Shared 2-core machines drift by a quarter within
// hours (docs/vision.md), which moves every frames/s figure; a run of this model in the same
// minutes tells a slow host from slower code.
const referenceModel = analyzers.DefaultEvidencePersonsModel

// referenceRuns is how many timed runs the reference takes (after two warm-up runs): about half
// a second on this machine kind.
const referenceRuns = 10

// hostSpeed is the median thread CPU time of one reference run on a fixed grey 640×480 frame.
func hostSpeed() (time.Duration, error) {
	m, err := models.Load(referenceModel)
	if err != nil {
		return 0, err
	}
	det, err := models.NewObjectDetector(m, models.ObjectOptions{})
	if err != nil {
		return 0, err
	}
	defer det.Close()
	img := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(128, 128, 128, 0), 480, 640, gocv.MatTypeCV8UC3)
	defer img.Close()
	// Thread CPU time is this goroutine's only while it stays on one OS thread.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var boxes []models.ObjectBox
	times := make([]time.Duration, 0, referenceRuns)
	for i := range referenceRuns + 2 {
		t0 := analyzers.ThreadCPU()
		if boxes, err = det.Detect(boxes[:0], img, 0, 0); err != nil {
			return 0, fmt.Errorf("host speed reference: %w", err)
		}
		if i >= 2 {
			times = append(times, analyzers.ThreadCPU()-t0)
		}
	}
	slices.Sort(times)
	return times[len(times)/2], nil
}

// printHostSpeed writes the reference before and after the rounds and the work per frame in
// reference runs: CPU per frame divided by the reference, which the host's speed does not move,
// so two runs of the bench on differently fast minutes compare by it.
func printHostSpeed(w io.Writer, before, after time.Duration, cpuPerFrame float64) {
	if before <= 0 || after <= 0 {
		return
	}
	ref := float64(before+after) / 2 / float64(time.Millisecond)
	fmt.Fprintf(w, "host speed: reference %.1f ms CPU per run before the rounds, %.1f after (%s float, one thread, fixed frame; a slower host raises it)\n",
		float64(before)/float64(time.Millisecond), float64(after)/float64(time.Millisecond), referenceModel)
	if cpuPerFrame > 0 {
		n := float64(runtime.NumCPU())
		fmt.Fprintf(w, "work:       %.3f reference runs per frame end to end (host-independent); %d idle cores reach 150 frames/s when a reference run takes at most %.1f ms\n",
			cpuPerFrame/ref, int(n), 1000*n/150/(cpuPerFrame/ref))
	}
}
