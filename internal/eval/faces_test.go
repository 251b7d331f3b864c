package eval

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"proctor/analyzers"
	"proctor/models"
)

// TestFaceCountAccuracy runs the face-count check of `proctor eval vision` on the dev photos
// (../shared/data/faces: portraits, group photos, people-free crops) and requires precision and
// recall ≥ 0.95 for each class, so a retuned detector cannot silently regress.
func TestFaceCountAccuracy(t *testing.T) {
	data := os.Getenv("PROCTOR_DEV_DATA")
	if data == "" {
		wd, _ := os.Getwd()
		data = filepath.Join(wd, "..", "..", "..", "shared", "data")
	}
	if _, err := os.Stat(filepath.Join(data, "faces", "multi_person")); err != nil {
		t.Skipf("dev photos not found at %s (set PROCTOR_DEV_DATA): face-count accuracy not measured", data)
	}
	if _, err := models.CacheDir(); err != nil {
		t.Skipf("models not installed (%v): run scripts/setup.sh", err)
	}
	rep, err := Run(context.Background(), Options{Data: data, Only: []string{"faces"},
		Analyzers: analyzers.Config{Analyzers: []string{"faces"}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rows) < 3 {
		t.Fatalf("face-count rows: %+v", rep.Rows)
	}
	for _, r := range rep.Rows {
		t.Logf("%-24s N %3d  P %.3f  R %.3f  F1 %.3f", r.Check, r.N, r.Precision, r.Recall, r.F1)
		if !strings.HasPrefix(r.Check, "faces") {
			continue
		}
		if math.IsNaN(r.Precision) || r.Precision < 0.95 || r.Recall < 0.95 {
			t.Errorf("%s: precision %.3f recall %.3f, want both ≥ 0.95", r.Check, r.Precision, r.Recall)
		}
	}
}
