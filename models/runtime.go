// Package models owns the model files: where they live (the cache directory), what they are
// (one manifest per model, embedded in the binary), whether the file on disk is the one the
// manifest names (sha256), and the ONNX runtime that runs them.
package models

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
	"golang.org/x/sys/cpu"
)

// Environment variables read by this package.
const (
	// EnvCacheDir overrides where model files and the ONNX runtime library are looked up.
	EnvCacheDir = "PROCTOR_CACHE_DIR"
	// EnvORTLibrary overrides the path of the onnxruntime shared library (default
	// <cache>/lib/libonnxruntime.so.1).
	EnvORTLibrary = "PROCTOR_ORT_LIB"
)

// ortLibraryFile is where scripts/fetch-artifacts.sh puts the library inside the cache. It is
// onnxruntime 1.25.1 from the npm package onnxruntime-node: onnxruntime_go v1.27.0 needs API
// version 24, older libraries fail to initialise. Not 1.24.x: its int8 convolutions are wrong on
// CPUs with AMX (onnxruntime PR 27671; analyzers.TestOWWEmbeddingInt8MatchesFloat).
const ortLibraryFile = "lib/libonnxruntime.so.1"

// ErrNoCache means no cache directory was found; the message says where we looked.
var ErrNoCache = errors.New("model cache directory not found")

// ErrRuntimeMissing means the onnxruntime shared library is not where we expect it.
var ErrRuntimeMissing = errors.New("onnxruntime library missing")

// NotInstalled reports whether err means that scripts/setup.sh has not installed a model or the
// runtime (tests skip then, rather than fail).
func NotInstalled(err error) bool {
	return errors.Is(err, ErrModelMissing) || errors.Is(err, ErrNoCache) || errors.Is(err, ErrRuntimeMissing)
}

// CacheDir returns the directory holding model files and the onnxruntime library, looked up in
// this order:
//  1. $PROCTOR_CACHE_DIR, if set (it must exist);
//  2. <root>/.cache where <root> is the nearest parent of the working directory holding a go.mod
//     whose module line is `module proctor` (go test, go run, a developer's shell);
//  3. <dir of the executable>/../.cache (an installed binary under bin/).
func CacheDir() (string, error) {
	if dir := os.Getenv(EnvCacheDir); dir != "" {
		if !isDir(dir) {
			return "", fmt.Errorf("%w: %s=%s is not a directory", ErrNoCache, EnvCacheDir, dir)
		}
		return filepath.Abs(dir)
	}
	var tried []string
	if wd, err := os.Getwd(); err == nil {
		if root, ok := findModuleRoot(wd); ok {
			dir := filepath.Join(root, ".cache")
			if isDir(dir) {
				return dir, nil
			}
			tried = append(tried, dir)
		}
	}
	if exe, err := os.Executable(); err == nil {
		if exe, err = filepath.EvalSymlinks(exe); err == nil {
			dir := filepath.Join(filepath.Dir(exe), "..", ".cache")
			if isDir(dir) {
				return filepath.Clean(dir), nil
			}
			tried = append(tried, filepath.Clean(dir))
		}
	}
	return "", fmt.Errorf("%w (tried %s=, %s): run scripts/setup.sh or set %s",
		ErrNoCache, EnvCacheDir, strings.Join(tried, ", "), EnvCacheDir)
}

// findModuleRoot walks up from dir to the folder whose go.mod declares `module proctor`.
func findModuleRoot(dir string) (string, bool) {
	for {
		if isProctorModule(filepath.Join(dir, "go.mod")) {
			return dir, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

func isProctorModule(gomod string) bool {
	f, err := os.Open(gomod)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if rest, ok := strings.CutPrefix(line, "module"); ok {
			return strings.Trim(strings.TrimSpace(rest), `"`) == "proctor"
		}
	}
	return false
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// ORTLibraryPath returns the onnxruntime shared library to load: $PROCTOR_ORT_LIB, or
// <cache>/lib/libonnxruntime.so.1. It fails with ErrRuntimeMissing when the file is absent.
func ORTLibraryPath() (string, error) {
	if p := os.Getenv(EnvORTLibrary); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%w: %s=%s: %v", ErrRuntimeMissing, EnvORTLibrary, p, err)
		}
		return p, nil
	}
	dir, err := CacheDir()
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrRuntimeMissing, err)
	}
	p := filepath.Join(dir, ortLibraryFile)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%w: %s not found: run scripts/setup.sh (it fetches onnxruntime 1.25.1 from npm)",
			ErrRuntimeMissing, p)
	}
	return p, nil
}

// The onnxruntime environment is process-wide (one OrtEnv per process, owned by
// onnxruntime_go), so its initialisation is guarded by a package-level Once.
var (
	ortOnce sync.Once
	ortErr  error
)

// InitRuntime loads the onnxruntime library and creates the process-wide environment. It is safe
// to call from many goroutines and many times; only the first call does the work, and every call
// returns that first call's result. It is never torn down: sessions may live as long as the
// process.
func InitRuntime() error {
	ortOnce.Do(func() {
		if ort.IsInitialized() {
			return // someone else in this process (a test helper, a tool) already did it
		}
		lib, err := ORTLibraryPath()
		if err != nil {
			ortErr = err
			return
		}
		ort.SetSharedLibraryPath(lib)
		// Warnings only: ORT's info level logs every graph optimisation per session.
		if err := ort.InitializeEnvironment(ort.WithLogLevelWarning()); err != nil {
			ortErr = fmt.Errorf("initialise onnxruntime from %s (need version >= 1.24; run scripts/setup.sh): %w", lib, err)
		}
	})
	return ortErr
}

// SessionOptions are the per-session runtime settings shared by every model this package runs.
type SessionOptions struct {
	// IntraOpThreads is how many threads one inference may use. Default 1: the pipeline runs one
	// detector per worker goroutine, so parallelism comes from workers; more threads per session
	// would oversubscribe the cores and add spin-wait overhead to every call.
	IntraOpThreads int
	// GraphOptimization is the manifest's graph_optimization ("" = all). The depthwise-heavy
	// face-embedding graph runs 3.4x slower with "all" than with "basic" here (NCHWc layout
	// transforms around every depthwise convolution: 70 vs 21 ms CPU), while the detector runs
	// 2.7x faster with "all".
	GraphOptimization string
	// QuietLoad logs only errors for this session: for graphs that make ONNX Runtime warn at
	// load about harmless leftovers of their conversion (BlazeFace's unused initializers, five
	// lines per session otherwise).
	QuietLoad bool
	// defaultInt8 leaves ONNX Runtime's precision mode off (openSession's fallback).
	defaultInt8 bool
}

// openSession builds the session's options and calls create with them. Where exact int8 kernels
// are on (exactInt8) and ONNX Runtime cannot rewrite a graph for them (its weight rewrite fails on
// the EWN ResNet: "Attempt to replace the existing tensor"), it opens the session again with the
// quantise/dequantise pairs left unfused (graph optimisation "basic"): the int8 graph computed in
// float, exact and slower, rather than on the saturating kernels (EWN: cosine 0.9985 to its
// Python embedding on those, 0.9993 unfused; the test wants 0.999).
func openSession[T any](o SessionOptions, create func(*ort.SessionOptions) (T, error)) (T, error) {
	open := func(o SessionOptions) (T, error) {
		opts, err := newSessionOptions(o)
		if err != nil {
			var zero T
			return zero, fmt.Errorf("session options: %w", err)
		}
		defer opts.Destroy()
		return create(opts)
	}
	s, err := open(o)
	if err != nil && exactInt8 && !o.defaultInt8 {
		o.defaultInt8, o.GraphOptimization = true, "basic"
		if s2, err2 := open(o); err2 == nil {
			return s2, nil
		}
	}
	return s, err
}

// newSessionOptions builds ORT options for one session. The caller destroys them after the session
// is created.
func newSessionOptions(o SessionOptions) (*ort.SessionOptions, error) {
	opts, err := ort.NewSessionOptions()
	if err != nil {
		return nil, err
	}
	threads := o.IntraOpThreads
	if threads <= 0 {
		threads = 1
	}
	for _, step := range []func() error{
		func() error { return opts.SetIntraOpNumThreads(threads) },
		// Inter-op threads only matter in parallel execution mode, which these small
		// sequential graphs never benefit from.
		func() error { return opts.SetInterOpNumThreads(1) },
		func() error { return opts.SetExecutionMode(ort.ExecutionModeSequential) },
		func() error { return opts.SetGraphOptimizationLevel(optimizationLevel(o.GraphOptimization)) },
	} {
		if err := step(); err != nil {
			opts.Destroy()
			return nil, err
		}
	}
	if o.QuietLoad {
		if err := opts.SetLogSeverityLevel(ort.LoggingLevelError); err != nil {
			opts.Destroy()
			return nil, err
		}
	}
	if exactInt8 && !o.defaultInt8 {
		if err := opts.AddSessionConfigEntry("session.x64quantprecision", "1"); err != nil {
			opts.Destroy()
			return nil, err
		}
	}
	if threads == 1 {
		// With a single thread there is nobody to spin for; spinning just burns the core a
		// neighbouring worker needs.
		if err := opts.AddSessionConfigEntry("session.intra_op.allow_spinning", "0"); err != nil {
			opts.Destroy()
			return nil, err
		}
	}
	return opts, nil
}

// exactInt8: the int8 models were quantised and validated (U8 activations, S8 weights) on a CPU
// with AVX-512 VNNI. Without VNNI, ONNX Runtime's U8S8 kernels saturate 16-bit pair sums: on an
// AVX2-only AMD EPYC the int8 face embedding strayed from the fp32 one by up to 0.425 cosine
// (0.213 with VNNI) and turned 4 of 1,703 genuine dev pairs into votes for "someone else" at the
// first look's stranger line (0 with VNNI). ONNX Runtime's precision mode rewrites such sessions
// to exact U8U8 kernels (20–27% more CPU per frame there); CPUs with VNNI keep the kernels the
// models were validated with.
var exactInt8 = runtime.GOARCH == "amd64" && !cpu.X86.HasAVX512VNNI && !cpu.X86.HasAVXVNNI

func optimizationLevel(s string) ort.GraphOptimizationLevel {
	switch s {
	case "none":
		return ort.GraphOptimizationLevelDisableAll
	case "basic":
		return ort.GraphOptimizationLevelEnableBasic
	case "extended":
		return ort.GraphOptimizationLevelEnableExtended
	}
	return ort.GraphOptimizationLevelEnableAll
}
