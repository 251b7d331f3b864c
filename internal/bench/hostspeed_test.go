package bench

import (
	"strings"
	"testing"
	"time"

	"proctor/models"
)

func TestHostSpeedReference(t *testing.T) {
	if _, err := models.ORTLibraryPath(); err != nil {
		t.Skipf("onnxruntime missing (%v): run scripts/setup.sh to run this test", err)
	}
	d, err := hostSpeed()
	if err != nil {
		t.Fatal(err)
	}
	// One run of NanoDet-m 416 costs tens of milliseconds on any CPU this service runs on; a
	// figure of microseconds would mean the model did not run.
	if d < time.Millisecond || d > 5*time.Second {
		t.Errorf("reference run took %v of CPU", d)
	}
}

func TestPrintHostSpeed(t *testing.T) {
	var b strings.Builder
	printHostSpeed(&b, 30*time.Millisecond, 32*time.Millisecond, 13.64)
	out := b.String()
	// 13.64 ms per frame over a 31 ms reference is 0.44 runs per frame; 150 frames/s on the
	// machine's cores needs cores×1000/150 ms per frame.
	for _, want := range []string{"reference 30.0 ms CPU per run before the rounds, 32.0 after", "0.440 reference runs per frame"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	b.Reset()
	printHostSpeed(&b, 0, 32*time.Millisecond, 13.64)
	if b.Len() != 0 {
		t.Errorf("printed without a reference before the rounds: %q", b.String())
	}
}
