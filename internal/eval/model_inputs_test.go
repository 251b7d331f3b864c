package eval

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"proctor/analyzers"
	"proctor/internal/composite"
)

// TestDumpModelInputs writes the exact input tensors the service feeds the two models that
// training/vision/quantize.py calibrates, for the calibration photos only (the tuning part of
// the dev data; the evaluation's photos are never dumped):
//
//   - identity.f32 + identity.tsv: FaceNet's 3×160×160 crop of the main face of every photo of
//     the identities-rmfd **dev** people (SplitOf), padded as a registration photo, as the
//     identity check embeds them;
//   - persons.f32 + persons.tsv: NanoDet's 3×416×416 letterboxed frame of every 8th photo of
//     mask/train (with and without mask, sorted by name): real faces and bodies of people that
//     neither the persons check (identities/, multi_person/) nor the mask check (mask/dev) uses
//     (nanodet-coco-int8 v1's calibration);
//   - persons-scenes / persons-tune (.f32 + .tsv): evidence-camera scenes of other mask/train
//     photos (dumpSceneInputs): v2's calibration, and the scenes variants are compared on.
//
// The .f32 files are the tensors back to back, float32 little-endian; the .tsv the photo per
// tensor (path relative to the data folder, person or folder, split). Runs only when asked:
//
//	PROCTOR_DUMP_INPUTS=DIR [PROCTOR_DUMP_DATA=../shared/data/faces] go test -run TestDumpModelInputs ./internal/eval/
func TestDumpModelInputs(t *testing.T) {
	out := os.Getenv("PROCTOR_DUMP_INPUTS")
	if out == "" {
		t.Skip("PROCTOR_DUMP_INPUTS not set")
	}
	data := os.Getenv("PROCTOR_DUMP_DATA")
	if data == "" {
		data = "../../../shared/data/faces"
	}
	if abs, err := filepath.Abs(data); err == nil {
		data = abs
	}
	if st, err := os.Stat(filepath.Join(data, "identities-rmfd")); err != nil || !st.IsDir() {
		t.Skipf("no dev data at %s (identities-rmfd/): nothing to dump", data)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	set, err := analyzers.NewSet(analyzers.Config{Analyzers: []string{"faces", "landmarks", "identity", "persons"}})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	var id *analyzers.Identity
	var persons *analyzers.Persons
	for _, a := range set.Analyzers() {
		switch v := a.(type) {
		case *analyzers.Identity:
			id = v
		case *analyzers.Persons:
			persons = v
		}
	}
	n := len(set.Analyzers()) + 1
	env := &Env{Data: data, Set: set, spent: make([]time.Duration, n), cpu: make([]time.Duration, n), runs: make([]int, n)}
	dummy := &analyzers.Enrollment{Model: id.EnrollModel(), Vector: make([]float32, id.Dim())}

	idOut := newTensorDump(t, out, "identity")
	defer idOut.close(t)
	names, imgs := listPeople(filepath.Join(data, "identities-rmfd"))
	for _, name := range names {
		if SplitOf(name) != "dev" {
			continue
		}
		for _, p := range imgs[name] {
			jp, err := ReadJPEG(p)
			if err != nil {
				t.Fatal(err)
			}
			_, err = env.AnalyzePadded(context.Background(), jp, analyzers.EnrollPadding,
				analyzers.FrameMeta{Enrolled: dummy}, // no session: every photo is embedded, as in evalIdentity
				func(f *analyzers.Frame, obs *analyzers.Observation) error {
					for _, fc := range obs.Faces {
						if fc.Match != nil && fc.Match.Measured {
							idOut.add(t, id.ModelInput(), rel(data, p), name, "dev")
						}
					}
					return nil
				})
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
		}
	}

	pOut := newTensorDump(t, out, "persons")
	defer pOut.close(t)
	for _, cls := range []string{"with_mask", "without_mask"} {
		for i, p := range listImages(filepath.Join(data, "mask", "train", cls)) {
			if i%8 != 0 {
				continue
			}
			jp, err := ReadJPEG(p)
			if err != nil {
				t.Fatal(err)
			}
			_, err = env.Analyze(context.Background(), jp, analyzers.FrameMeta{Session: "dump-" + rel(data, p)},
				func(f *analyzers.Frame, obs *analyzers.Observation) error {
					if obs.Persons != nil { // the detector ran on this frame
						pOut.add(t, persons.ModelInput(), rel(data, p), cls, "train")
					}
					return nil
				})
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
		}
	}
	scenes := dumpSceneInputs(t, env, persons, data, out)
	t.Logf("dumped %d identity, %d persons and %d scene input tensors to %s", idOut.n, pOut.n, scenes, out)
	if idOut.n == 0 || pOut.n == 0 || scenes == 0 {
		t.Fatal("a dump is empty")
	}
}

// tensorDump appends float32 tensors to NAME.f32 and one line per tensor to NAME.tsv.
type tensorDump struct {
	f32, tsv *os.File
	buf      []byte
	n        int
}

func newTensorDump(t *testing.T, dir, name string) *tensorDump {
	d := &tensorDump{}
	var err error
	if d.f32, err = os.Create(filepath.Join(dir, name+".f32")); err != nil {
		t.Fatal(err)
	}
	if d.tsv, err = os.Create(filepath.Join(dir, name+".tsv")); err != nil {
		t.Fatal(err)
	}
	return d
}

func (d *tensorDump) add(t *testing.T, v []float32, fields ...string) {
	d.buf = d.buf[:0]
	for _, x := range v {
		d.buf = binary.LittleEndian.AppendUint32(d.buf, math.Float32bits(x))
	}
	if _, err := d.f32.Write(d.buf); err != nil {
		t.Fatal(err)
	}
	line := ""
	for i, f := range fields {
		if i > 0 {
			line += "\t"
		}
		line += f
	}
	if _, err := fmt.Fprintln(d.tsv, line); err != nil {
		t.Fatal(err)
	}
	d.n++
}

func (d *tensorDump) close(t *testing.T) {
	if err := d.f32.Close(); err != nil {
		t.Error(err)
	}
	if err := d.tsv.Close(); err != nil {
		t.Error(err)
	}
}

// dumpSceneInputs writes NanoDet's input for 1280×720 scenes the mask/train close-ups alone lack
// (small and distant people, a person on a laptop screen; internal/composite), built from
// mask/train photos only (with and without mask, sorted by name):
//
//   - persons-scenes: from every 8th photo starting at the 5th (i%8 == 4, disjoint from
//     persons.f32's): 48 evidence-camera views (composite.Screen: a person, and another on the
//     laptop) and 48 rooms of 2–6 people (composite.Room), for calibration;
//   - persons-tune: the same from i%8 == 2, to choose between int8 variants by their agreement
//     with the float model; never calibrated on.
//
// The persons check (identities/, multi_person/) and TestEvidenceComposites (identities/,
// multi_person/) use none of these photos.
func dumpSceneInputs(t *testing.T, env *Env, persons *analyzers.Persons, data, out string) int {
	t.Helper()
	n := 0
	for k, set := range []struct {
		name  string
		phase int
	}{{"persons-scenes", 4}, {"persons-tune", 2}} {
		var paths []string
		var mats []gocv.Mat
		for _, cls := range []string{"with_mask", "without_mask"} {
			for i, p := range listImages(filepath.Join(data, "mask", "train", cls)) {
				if i%8 != set.phase {
					continue
				}
				m := gocv.IMRead(p, gocv.IMReadColor)
				if m.Empty() {
					m.Close()
					continue
				}
				paths, mats = append(paths, rel(data, p)), append(mats, m)
			}
		}
		d := newTensorDump(t, out, set.name)
		rng := rand.New(rand.NewPCG(14, uint64(k)))
		for i := range 96 {
			var fr gocv.Mat
			var used []string
			if i%2 == 0 {
				a, b := rng.IntN(len(mats)), rng.IntN(len(mats))
				fr, used = composite.Screen(rng, mats[a], mats[b]), []string{paths[a], paths[b]}
			} else {
				var group []gocv.Mat
				for range 2 + rng.IntN(5) {
					j := rng.IntN(len(mats))
					group, used = append(group, mats[j]), append(used, paths[j])
				}
				fr = composite.Room(rng, group)
			}
			buf, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, fr, []int{gocv.IMWriteJpegQuality, 85})
			fr.Close()
			if err != nil {
				t.Fatal(err)
			}
			jpg := append([]byte(nil), buf.GetBytes()...)
			buf.Close()
			kind := map[bool]string{true: "screen", false: "room"}[i%2 == 0]
			_, err = env.Analyze(context.Background(), jpg, analyzers.FrameMeta{Camera: analyzers.CameraEvidence, Session: fmt.Sprintf("%s-%d", set.name, i)},
				func(f *analyzers.Frame, obs *analyzers.Observation) error {
					if obs.Persons != nil {
						d.add(t, persons.ModelInput(), strings.Join(used, ","), kind, "train")
					}
					return nil
				})
			if err != nil {
				t.Fatalf("%s %d: %v", set.name, i, err)
			}
		}
		for _, m := range mats {
			m.Close()
		}
		d.close(t)
		n += d.n
	}
	return n
}
