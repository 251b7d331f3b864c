// Package eval measures the analyzers against labelled data. `proctor eval vision` (Run) runs
// every check in Checks over a folder of photos and prints precision, recall and F1 per check,
// TAR at fixed false-accept rates for identity, and milliseconds per image per analyzer.
// `proctor eval audio` (RunAudio, audio.go) scores the VAD and the phrase spotter on labelled WAV
// files.
//
// Folder layout (../shared/data/faces works as is; a check whose folders are missing is skipped):
//
//	identities/NAME/*.jpg|png        one person per folder: identity pairs; each photo shows exactly one face
//	identities-crops/NAME/*          one person per folder (tight or aligned crops): identity pairs
//	identities-rmfd/NAME/*           one person per folder (tight crops): identity pairs, split by person
//	multi_person/*                   photos of two or more people
//	no_face/*                        optional: photos without any face (besides built-in people-free crops)
//
// Splits. Identity calibrates its threshold on the "dev" people (half of identities-rmfd, chosen
// by a hash of the folder name) and reports on the held-back "test" people (the other half plus
// identities/ and identities-crops/, never used for tuning). The detector's thresholds were
// tuned on all the face-count photos, so those rows are in-sample and say so.
package eval

import (
	"context"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"proctor/analyzers"
)

// Check is one evaluation. Run reads what it needs under env.Data and returns its table rows
// (none when its folders are missing, with a note saying so).
type Check struct {
	Name string
	Run  func(ctx context.Context, env *Env) ([]Row, error)
}

// Checks lists every evaluation, in the order of the table. Adding a check is one line here and a
// file with its Run function (part B: attributes.go, persons.go).
var Checks = []Check{
	{"faces", evalFaces},
	{"identity", evalIdentity},
	{"headpose", evalHeadPose},
	{"attributes", evalAttributes},
	{"persons", evalPersons},
	{"presence", evalPresence},
	{"identity-time", evalIdentityTime},
}

// Row is one line of the result table. Metrics that do not apply are NaN (printed "-").
type Row struct {
	Check                 string // e.g. "faces: no face"
	Split                 string // "test" (held back), "dev", "in-sample"
	N                     int    // items (images or pairs) the row counts
	Precision, Recall, F1 float64
	Note                  string // other metrics: TAR@FAR, threshold, …
}

// PRF returns precision, recall and F1 from counts (NaN where undefined).
func PRF(tp, fp, fn int) (p, r, f1 float64) {
	p, r, f1 = math.NaN(), math.NaN(), math.NaN()
	if tp+fp > 0 {
		p = float64(tp) / float64(tp+fp)
	}
	if tp+fn > 0 {
		r = float64(tp) / float64(tp+fn)
	}
	if !math.IsNaN(p) && !math.IsNaN(r) && p+r > 0 {
		f1 = 2 * p * r / (p + r)
	}
	return p, r, f1
}

// Options configure a run.
type Options struct {
	// Data is the labelled folder (layout in the package doc). A folder holding faces/ (like
	// ../shared/data) is accepted too.
	Data string
	// Analyzers is the set under test. Default: faces, landmarks, identity, headpose with the
	// service's settings.
	Analyzers analyzers.Config
	// Only runs the checks named here (all when empty).
	Only []string
	// Log receives progress and notes (nil: discarded).
	Log io.Writer
}

// Report is the outcome of a run.
type Report struct {
	Rows   []Row
	Timing []Timing
	Notes  []string
}

// Timing is the mean cost of one analyzer (or of the JPEG decode) per image: wall-clock, and
// CPU time of the analysing thread (what the analyzer costs when other processes compete for
// the cores, as on a shared machine).
type Timing struct {
	Analyzer      string
	Images        int
	MsPerImage    float64
	CPUMsPerImage float64
}

// Env is what a check gets: the data folder, the analyzer set, and a timed way to run it.
type Env struct {
	Data string
	Set  *analyzers.Set
	log  io.Writer
	// per analyzer (index in Set.Analyzers(), then decode last): wall and thread CPU time
	spent []time.Duration
	cpu   []time.Duration
	runs  []int
	notes []string
}

// Note adds a line under the table.
func (e *Env) Note(format string, args ...any) {
	e.notes = append(e.notes, fmt.Sprintf(format, args...))
}

// Logf reports progress.
func (e *Env) Logf(format string, args ...any) {
	if e.log != nil {
		fmt.Fprintf(e.log, format+"\n", args...)
	}
}

// Analyze decodes one JPEG and runs the set's analyzers on it one by one, timing each, then
// calls inspect (may be nil) while the frame (and its FaceCrops) is still alive.
func (e *Env) Analyze(ctx context.Context, jpeg []byte, meta analyzers.FrameMeta,
	inspect func(f *analyzers.Frame, obs *analyzers.Observation) error) (analyzers.Observation, error) {
	return e.AnalyzePadded(ctx, jpeg, 0, meta, inspect)
}

// AnalyzePadded is Analyze on the image surrounded by a border of pad × its size per side
// (analyzers.PadFrame), as the service does with registration photos.
func (e *Env) AnalyzePadded(ctx context.Context, jpeg []byte, pad float64, meta analyzers.FrameMeta,
	inspect func(f *analyzers.Frame, obs *analyzers.Observation) error) (analyzers.Observation, error) {
	as := e.Set.Analyzers()
	runtime.LockOSThread() // thread CPU time below is this goroutine's
	defer runtime.UnlockOSThread()
	t0, c0 := time.Now(), analyzers.ThreadCPU()
	f, err := analyzers.DecodeJPEG(jpeg, e.Set.DecodeSide())
	if err != nil {
		return analyzers.Observation{}, err
	}
	defer func() { f.Image.Close() }()
	if err := analyzers.PadFrame(&f, pad); err != nil {
		return analyzers.Observation{}, err
	}
	e.spent[len(as)] += time.Since(t0)
	e.cpu[len(as)] += analyzers.ThreadCPU() - c0
	e.runs[len(as)]++
	f.Camera, f.Session, f.Enrolled = meta.Camera, meta.Session, meta.Enrolled
	if f.Camera == "" {
		f.Camera = analyzers.CameraMain
	}
	obs := analyzers.Observation{Width: f.Width, Height: f.Height}
	for i, a := range as {
		t, c := time.Now(), analyzers.ThreadCPU()
		if err := a.Analyze(ctx, &f, &obs); err != nil {
			return obs, fmt.Errorf("analyzer %s: %w", a.Name(), err)
		}
		e.spent[i] += time.Since(t)
		e.cpu[i] += analyzers.ThreadCPU() - c
		e.runs[i]++
	}
	if inspect != nil {
		return obs, inspect(&f, &obs)
	}
	return obs, nil
}

// DefaultAnalyzers is the set evaluated when Options.Analyzers names none.
var DefaultAnalyzers = []string{"faces", "landmarks", "identity", "headpose", "attire", "persons"}

// Run evaluates every check (or Options.Only) and returns the table.
func Run(ctx context.Context, o Options) (*Report, error) {
	data := o.Data
	if st, err := os.Stat(filepath.Join(data, "faces")); err == nil && st.IsDir() {
		data = filepath.Join(data, "faces")
	}
	if st, err := os.Stat(data); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("data folder %q not found: give --data the labelled folder (e.g. ../shared/data/faces)", o.Data)
	}
	cfg := o.Analyzers
	if len(cfg.Analyzers) == 0 {
		cfg.Analyzers = DefaultAnalyzers
	}
	set, err := analyzers.NewSet(cfg)
	if err != nil {
		return nil, err
	}
	defer set.Close()
	n := len(set.Analyzers()) + 1
	env := &Env{Data: data, Set: set, log: o.Log, spent: make([]time.Duration, n), cpu: make([]time.Duration, n), runs: make([]int, n)}
	rep := &Report{}
	for _, c := range Checks {
		if len(o.Only) > 0 && !slices.Contains(o.Only, c.Name) {
			continue
		}
		env.Logf("eval: %s", c.Name)
		rows, err := c.Run(ctx, env)
		if err != nil {
			return nil, fmt.Errorf("check %s: %w", c.Name, err)
		}
		rep.Rows = append(rep.Rows, rows...)
	}
	for i, a := range set.Analyzers() {
		rep.Timing = append(rep.Timing, timing(a.Name()+" ("+a.Version()+")", env.spent[i], env.cpu[i], env.runs[i]))
	}
	rep.Timing = append(rep.Timing, timing("decode JPEG", env.spent[n-1], env.cpu[n-1], env.runs[n-1]))
	rep.Notes = env.notes
	return rep, nil
}

func timing(name string, d, cpu time.Duration, n int) Timing {
	t := Timing{Analyzer: name, Images: n}
	if n > 0 {
		t.MsPerImage = d.Seconds() * 1000 / float64(n)
		t.CPUMsPerImage = cpu.Seconds() * 1000 / float64(n)
	}
	return t
}

// Print writes the report as aligned tables.
func (r *Report) Print(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tSPLIT\tN\tPRECISION\tRECALL\tF1\tNOTES")
	num := func(x float64) string {
		if math.IsNaN(x) {
			return "-"
		}
		return fmt.Sprintf("%.3f", x)
	}
	for _, row := range r.Rows {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", row.Check, row.Split, row.N,
			num(row.Precision), num(row.Recall), num(row.F1), row.Note)
	}
	fmt.Fprintln(tw, "\t\t\t\t\t\t")
	fmt.Fprintln(tw, "ANALYZER\tIMAGES\tMS/IMAGE\tCPU MS/IMAGE\t\t\t")
	for _, t := range r.Timing {
		fmt.Fprintf(tw, "%s\t%d\t%.2f\t%.2f\t\t\t\n", t.Analyzer, t.Images, t.MsPerImage, t.CPUMsPerImage)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range r.Notes {
		if _, err := fmt.Fprintln(w, "note:", n); err != nil {
			return err
		}
	}
	return nil
}

// SplitOf assigns a person (folder name) of a split-by-person set to "dev" or "test" by a hash of
// the name: stable across runs and machines, independent of file order.
func SplitOf(person string) string {
	h := fnv.New32a()
	h.Write([]byte(strings.ToLower(person)))
	if h.Sum32()%2 == 0 {
		return "dev"
	}
	return "test"
}

// listImages returns the image files directly under dir, sorted (nil when dir is missing).
func listImages(dir string) []string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		ext := strings.ToLower(filepath.Ext(e.Name()))
		if !e.IsDir() && (ext == ".jpg" || ext == ".jpeg" || ext == ".png") {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return out
}

// listPeople returns the person folders under dir with their images, sorted by name.
func listPeople(dir string) (names []string, images map[string][]string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil
	}
	images = map[string][]string{}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if imgs := listImages(filepath.Join(dir, e.Name())); len(imgs) > 0 {
			names = append(names, e.Name())
			images[e.Name()] = imgs
		}
	}
	return names, images
}
