package api

import (
	"os/exec"
	"strings"
	"testing"
)

// The API takes requests and produces messages; it must not link the workers' code (analysis
// handlers, recordings processor, model watching), and the transport must not know its
// consumers. What both sides share lives in pipeline (message format), store and
// internal/modelversions.
func TestLayers(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go command not found")
	}
	for _, tc := range []struct{ pkg, mustNotImport string }{
		{"proctor/api", "proctor/worker"},
		{"proctor/pipeline", "proctor/worker"},
		{"proctor/pipeline", "proctor/api"},
	} {
		out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", tc.pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", tc.pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			if dep == tc.mustNotImport || strings.HasPrefix(dep, tc.mustNotImport+"/") {
				t.Errorf("%s imports %s (directly or through another package); move what it needs to a package both can import", tc.pkg, dep)
			}
		}
	}
}
