package eval

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"proctor/analyzers"
	"proctor/models"
)

// TestPresenceAndIdentityTimeSkipWithoutData: both checks say why they measured nothing when
// the labelled folders are missing, instead of failing or printing empty rows.
func TestPresenceAndIdentityTimeSkipWithoutData(t *testing.T) {
	if _, err := models.CacheDir(); err != nil {
		t.Skipf("models not installed (%v): run scripts/setup.sh", err)
	}
	rep, err := Run(context.Background(), Options{Data: t.TempDir(), Only: []string{"presence", "identity-time"},
		Analyzers: analyzers.Config{Analyzers: []string{"faces", "landmarks", "identity"}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rows) != 0 {
		t.Errorf("rows without data: %+v", rep.Rows)
	}
	notes := strings.Join(rep.Notes, "\n")
	for _, want := range []string{"presence: no identities/", "identity-time: fewer than two held-back people"} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes %q lack %q", notes, want)
		}
	}
}

func TestPresenceLabels(t *testing.T) {
	for k := range maskDevAmbiguous {
		if maskDevSeveral[k] {
			t.Errorf("%s is both a group photo and left out", k)
		}
	}
	// The mask/train labels (tuning) never overlap one another, and the 61 photos the old
	// detector counted as several are all accounted for.
	for k := range maskTrainSeveral {
		if maskTrainOne[k] || maskTrainAmbiguous[k] {
			t.Errorf("mask/train %s has two labels", k)
		}
	}
	for k := range maskTrainOne {
		if maskTrainAmbiguous[k] {
			t.Errorf("mask/train %s has two labels", k)
		}
	}
	if n := len(maskTrainSeveral) + len(maskTrainOne) + len(maskTrainAmbiguous); n != 61 {
		t.Errorf("%d mask/train photos labelled, want 61", n)
	}
	if len(reportNoFaceCrops) < 100 {
		t.Errorf("%d face-free report crops, want the 178 labelled", len(reportNoFaceCrops))
	}
	for _, c := range reportNoFaceCrops {
		if c.r[2] < analyzers.MinSide || c.r[3] < analyzers.MinSide {
			t.Errorf("%s %v: smaller than a frame may be", c.file, c.r)
		}
		for _, old := range peopleFreeCrops {
			if old.file == c.file && old.r == c.r {
				t.Errorf("%s %v is a tuning crop too", c.file, c.r)
			}
		}
	}
}

// TestPhotoVariants: the identity-time check's degraded copies of a photo decode and keep its
// size (but the small one).
func TestPhotoVariants(t *testing.T) {
	dir, err := models.CacheDir()
	if err != nil {
		t.Skipf("model cache missing (%v): run scripts/setup.sh", err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "demo", "sample1.jpg"))
	if err != nil {
		t.Skipf("demo photos missing (%v): run scripts/setup.sh", err)
	}
	w, h, err := analyzers.ValidateJPEG(data)
	if err != nil {
		t.Fatal(err)
	}
	vs, err := photoVariants(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != len(identityTimeVariants) {
		t.Fatalf("%d variants, want %d", len(vs), len(identityTimeVariants))
	}
	for i, v := range vs {
		vw, vh, err := analyzers.ValidateJPEG(v)
		if err != nil {
			t.Fatalf("%s: %v", identityTimeVariants[i], err)
		}
		small := identityTimeVariants[i] == "small"
		if (vw == w && vh == h) == small {
			t.Errorf("%s is %dx%d (photo %dx%d)", identityTimeVariants[i], vw, vh, w, h)
		}
	}
}
