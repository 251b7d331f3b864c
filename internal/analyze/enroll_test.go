package analyze

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"proctor/analyzers"
	"proctor/internal/scenario"
)

// Several --enroll photos form a gallery: a frame equal to a gallery photo matches it exactly,
// which the registration photo alone does not.
func TestEnrollGallery(t *testing.T) {
	dir, err := scenario.DemoDir()
	if err != nil {
		t.Skipf("demo photos unavailable (%v): run scripts/setup.sh", err)
	}
	set, err := analyzers.NewSet(ImageConfig("faces,landmarks,identity"))
	if err != nil {
		t.Skipf("models unavailable (%v): run scripts/setup.sh", err)
	}
	defer set.Close()
	ctx := context.Background()
	f, err := scenario.Build(ctx, set, dir)
	if err != nil {
		t.Skip(err)
	}
	tmp := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(tmp, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	photo, frame := write("photo.jpg", f.Photo), write("frame.jpg", f.Candidate[0])
	match := func(paths ...string) float32 {
		enr, err := Enroll(ctx, set, paths)
		if err != nil {
			t.Fatal(err)
		}
		obs, err := Image(ctx, set, frame, analyzers.FrameMeta{Camera: analyzers.CameraMain, Enrolled: enr})
		if err != nil {
			t.Fatal(err)
		}
		i := analyzers.MainFace(obs.Faces, 0)
		if i < 0 || obs.Faces[i].Match == nil {
			t.Fatalf("no match on the frame: %+v", obs.Faces)
		}
		return obs.Faces[i].Match.Similarity
	}
	alone, withGallery := match(photo), match(photo, frame)
	if withGallery < 0.99 || alone >= withGallery {
		t.Errorf("similarity with the photo %.3f, with photo + gallery %.3f: want the gallery's ≈ 1", alone, withGallery)
	}
	if enr, err := Enroll(ctx, set, nil); enr != nil || err != nil {
		t.Errorf("no paths: %v, %v", enr, err)
	}
}
