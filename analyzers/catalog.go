package analyzers

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Config selects and configures the analyzers of a Set. It is plain data (JSON-friendly) so the
// set per exam is chosen by configuration, not by wiring code.
type Config struct {
	// Analyzers names the analyzers to run, in this order. Default ["faces", "sheet"] ("sheet"
	// only looks at evidence-camera frames).
	Analyzers []string `json:"analyzers,omitempty"`
	// Faces configures the "faces" analyzer.
	Faces FacesConfig `json:"faces"`
	// Landmarks, Identity and HeadPose configure the analyzers of those names (landmarks.go,
	// identity.go, headpose.go).
	Landmarks LandmarksConfig `json:"landmarks"`
	Identity  IdentityConfig  `json:"identity"`
	HeadPose  HeadPoseConfig  `json:"headpose"`
	// Persons and Attire configure the "persons" (COCO people and phones) and "attire" (mask,
	// occlusion) analyzers (persons.go, attire.go).
	Persons PersonsConfig `json:"persons"`
	Attire  AttireConfig  `json:"attire"`
	// Ears configures the "ears" analyzer (ears.go: ears visible, covered or not in view; earphones).
	Ears EarsConfig `json:"ears"`
	// Sheet configures the "sheet" analyzer (sheet.go: the A4 sheet shown to the evidence camera).
	Sheet SheetConfig `json:"sheet"`
	// CameraMotion configures the "cameramotion" analyzer (cameramotion.go: evidence-camera turn
	// between frames, for the room scan).
	CameraMotion CameraMotionConfig `json:"camera_motion"`
	// Catalog builds the set instead of the built-in analyzers (tests put fakes in one).
	Catalog *Catalog `json:"-"`
	// Schedule decides per session and camera which expensive analyzers run on a frame in the
	// pipeline (schedule.go); `proctor analyze` and eval run every analyzer on every frame.
	Schedule ScheduleConfig `json:"schedule"`
	// DecodeSide overrides the longest side frames are decoded at. Default: the largest that any
	// analyzer in the set asks for (see SideNeeder); 0 there too means full size.
	DecodeSide int `json:"decode_side,omitempty"`
}

// Constructor builds one analyzer from the whole configuration (each reads its own section).
type Constructor func(cfg *Config) (Analyzer, error)

// SideNeeder is implemented by analyzers that can work on a reduced decode: DecodeSide is the
// longest side they need. A Set decodes once at the largest size any of its analyzers needs;
// an analyzer that does not implement it gets full-size frames.
type SideNeeder interface {
	DecodeSide() int
}

// MainCameraOnly is implemented by analyzers whose results only the main camera's checks read
// (landmarks, head pose, identity, mask and occlusion, ears): a Set skips them on the evidence
// camera's frames, where the phone behind the candidate mostly sees faces on the laptop screen.
type MainCameraOnly interface {
	MainCameraOnly()
}

// Catalog maps analyzer names to constructors, Benthos-style: each analyzer's file registers
// itself from init() (Register), and configurations refer to it by name.
type Catalog struct {
	ctors map[string]Constructor
}

// builtin holds the analyzers of this package, filled by their init functions.
var builtin = &Catalog{ctors: map[string]Constructor{}}

// Register adds a built-in analyzer; called from init() of the analyzer's file. A duplicate
// name is a programming error and panics.
func Register(name string, c Constructor) {
	if err := builtin.Add(name, c); err != nil {
		panic(err)
	}
}

// NewCatalog returns a catalog holding the built-in analyzers, to which more can be added.
func NewCatalog() *Catalog { return &Catalog{ctors: maps.Clone(builtin.ctors)} }

// Add adds a constructor under name. Names are unique.
func (r *Catalog) Add(name string, c Constructor) error {
	if name == "" || c == nil {
		return errors.New("register analyzer: name and constructor are required")
	}
	if _, dup := r.ctors[name]; dup {
		return fmt.Errorf("register analyzer: %q is already registered", name)
	}
	r.ctors[name] = c
	return nil
}

// Replace registers c under name whether or not the name is taken (tests swap in fakes).
func (r *Catalog) Replace(name string, c Constructor) { r.ctors[name] = c }

// Names lists the analyzers in the catalog, sorted.
func (r *Catalog) Names() []string { return slices.Sorted(maps.Keys(r.ctors)) }

// Build constructs the analyzers cfg names. On error, whatever was built is closed.
func (r *Catalog) Build(cfg Config) (*Set, error) {
	names := cfg.Analyzers
	if len(names) == 0 {
		names = []string{"faces", "sheet"}
	}
	s := &Set{decodeSide: cfg.DecodeSide}
	for i, name := range names {
		if slices.Contains(names[:i], name) {
			s.Close()
			return nil, fmt.Errorf("analyzer %q is listed twice", name)
		}
		ctor, ok := r.ctors[name]
		if !ok {
			s.Close()
			return nil, fmt.Errorf("unknown analyzer %q (known: %s)", name, strings.Join(r.Names(), ", "))
		}
		a, err := ctor(&cfg)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("build analyzer %q: %w", name, err)
		}
		if a.Name() != name {
			a.Close()
			s.Close()
			return nil, fmt.Errorf("analyzer registered as %q calls itself %q", name, a.Name())
		}
		if err := checkRequires(a, names[:i]); err != nil {
			a.Close()
			s.Close()
			return nil, err
		}
		s.analyzers = append(s.analyzers, a)
	}
	if s.decodeSide == 0 {
		for _, a := range s.analyzers {
			sn, ok := a.(SideNeeder)
			if !ok || sn.DecodeSide() <= 0 {
				s.decodeSide = 0 // someone needs full size
				break
			}
			s.decodeSide = max(s.decodeSide, sn.DecodeSide())
		}
	}
	return s, nil
}

// NewSet builds a Set from the built-in analyzers.
func NewSet(cfg Config) (*Set, error) {
	if cfg.Catalog != nil {
		return cfg.Catalog.Build(cfg)
	}
	return builtin.Build(cfg)
}

// Set is the analyzers one worker runs on every frame. It owns model sessions and scratch
// buffers, so it is NOT safe for concurrent use: build one Set per worker goroutine.
type Set struct {
	analyzers  []Analyzer
	decodeSide int
	observe    func(analyzer string, ran bool, cpu time.Duration)
}

// ObserveAnalyzers makes the set call fn after each analyzer of each frame: whether it ran (or
// the schedule skipped it) and the CPU time it took on its thread (Linux; metrics, `proctor
// bench`). Call before use.
func (s *Set) ObserveAnalyzers(fn func(analyzer string, ran bool, cpu time.Duration)) { s.observe = fn }

// Analyzers returns the analyzers in run order.
func (s *Set) Analyzers() []Analyzer { return s.analyzers }

// DecodeSide is the longest side frames are decoded at (0 = full size).
func (s *Set) DecodeSide() int { return s.decodeSide }

// Versions maps analyzer name to Version(), for storing with results.
func (s *Set) Versions() map[string]string {
	v := make(map[string]string, len(s.analyzers))
	for _, a := range s.analyzers {
		v[a.Name()] = a.Version()
	}
	return v
}

// AnalyzeJPEG decodes one posted JPEG once and runs every analyzer on it. Errors from a bad JPEG
// wrap the sentinel errors of decode.go (client errors); others are server-side.
func (s *Set) AnalyzeJPEG(ctx context.Context, data []byte, camera string) (Observation, error) {
	return s.AnalyzeFrameJPEG(ctx, data, FrameMeta{Camera: camera})
}

// Analyze runs every analyzer on an already decoded frame; the frame stays the caller's.
func (s *Set) Analyze(ctx context.Context, f *Frame) (Observation, error) {
	obs := Observation{Width: f.Width, Height: f.Height}
	if s.observe != nil {
		runtime.LockOSThread() // thread CPU time is this goroutine's
		defer runtime.UnlockOSThread()
	}
	for _, a := range s.analyzers {
		if err := ctx.Err(); err != nil {
			return obs, err
		}
		_, mainOnly := a.(MainCameraOnly)
		if (mainOnly && f.Camera == CameraEvidence) || (f.Plan != nil && f.Plan.Skip(a.Name(), f, &obs)) {
			if s.observe != nil {
				s.observe(a.Name(), false, 0)
			}
			continue
		}
		var start time.Duration
		if s.observe != nil {
			start = ThreadCPU()
		}
		if err := a.Analyze(ctx, f, &obs); err != nil {
			return obs, fmt.Errorf("analyzer %s: %w", a.Name(), err)
		}
		if f.Plan != nil {
			f.Plan.Ran(a.Name(), f, &obs)
		}
		if s.observe != nil {
			s.observe(a.Name(), true, ThreadCPU()-start)
		}
	}
	if p, ok := f.Plan.(*framePlan); ok {
		p.analysed(f, &obs)
	}
	return obs, nil
}

// Close closes every analyzer.
func (s *Set) Close() error {
	var errs []error
	for _, a := range s.analyzers {
		errs = append(errs, a.Close())
	}
	s.analyzers = nil
	return errors.Join(errs...)
}
