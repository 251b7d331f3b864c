package eval

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"proctor/analyzers"
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
//     neither the persons check (identities/, multi_person/) nor the mask check (mask/dev) uses.
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
	t.Logf("dumped %d identity and %d persons input tensors to %s", idOut.n, pOut.n, out)
	if idOut.n == 0 || pOut.n == 0 {
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
