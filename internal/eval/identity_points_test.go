package eval

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"proctor/analyzers"
)

// TestDumpIdentityPoints writes, for training/vision/embedding_study.py, one line per identity
// photo: path, set, person, split, padded frame size, then the main face's box and five points
// in padded-frame pixels, as the identity check sees them (faces + landmarks on the photo padded
// by analyzers.EnrollPadding). Runs only when asked:
//
//	PROCTOR_DUMP=points.tsv [PROCTOR_DUMP_DATA=../shared/data/faces] go test -run TestDumpIdentityPoints ./internal/eval/
func TestDumpIdentityPoints(t *testing.T) {
	out := os.Getenv("PROCTOR_DUMP")
	if out == "" {
		t.Skip("PROCTOR_DUMP not set")
	}
	data := os.Getenv("PROCTOR_DUMP_DATA")
	if data == "" {
		data = "../../../shared/data/faces"
	}
	if abs, err := filepath.Abs(data); err == nil {
		data = abs
	}
	set, err := analyzers.NewSet(analyzers.Config{Analyzers: []string{"faces", "landmarks"}})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	n := len(set.Analyzers()) + 1
	env := &Env{Data: data, Set: set, spent: make([]time.Duration, n), cpu: make([]time.Duration, n), runs: make([]int, n)}
	w, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for _, s := range identitySets {
		names, imgs := listPeople(filepath.Join(data, s.dir))
		for _, name := range names {
			split := s.split
			if split == "person" {
				split = SplitOf(name)
			}
			for _, p := range imgs[name] {
				jp, err := ReadJPEG(p)
				if err != nil {
					t.Fatal(err)
				}
				_, err = env.AnalyzePadded(context.Background(), jp, analyzers.EnrollPadding, analyzers.FrameMeta{}, func(f *analyzers.Frame, obs *analyzers.Observation) error {
					i := analyzers.MainFace(obs.Faces, len(f.FaceCrops))
					var fields []string
					fields = append(fields, p, s.dir, name, split, fmt.Sprint(f.Width, "\t", f.Height))
					if i < 0 {
						fmt.Fprintln(w, strings.Join(fields, "\t"))
						return nil
					}
					b := obs.Faces[i].Box
					fields = append(fields, fmt.Sprintf("%.2f\t%.2f\t%.2f\t%.2f", b[0], b[1], b[2], b[3]))
					for _, q := range obs.Faces[i].Landmarks {
						fields = append(fields, fmt.Sprintf("%.3f\t%.3f", q[0], q[1]))
					}
					fmt.Fprintln(w, strings.Join(fields, "\t"))
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}
