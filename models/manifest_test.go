package models

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestIsProctorModule(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, content string
		want          bool
	}{
		{"plain", "module proctor\n\ngo 1.26.8\n", true},
		{"quoted", "// comment\nmodule \"proctor\"\n", true},
		{"other module", "module example.com/proctor\n", false},
		{"prefix only", "module proctorx\n", false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, tt.name+".mod")
			if err := os.WriteFile(p, []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			if got := isProctorModule(p); got != tt.want {
				t.Errorf("isProctorModule(%q) = %v, want %v", tt.content, got, tt.want)
			}
		})
	}
	if isProctorModule(filepath.Join(dir, "missing.mod")) {
		t.Error("missing go.mod counted as proctor")
	}
}

func TestCacheDirWalksUpToProctorModule(t *testing.T) {
	root := t.TempDir()
	mustWrite(t, filepath.Join(root, "go.mod"), "module proctor\n")
	mustMkdir(t, filepath.Join(root, ".cache"))
	// A nested module with another name must be walked past, like a vendored tool would be.
	inner := filepath.Join(root, "tools", "x")
	mustMkdir(t, filepath.Join(inner, "deep"))
	mustWrite(t, filepath.Join(inner, "go.mod"), "module example.com/x\n")
	t.Setenv(EnvCacheDir, "")
	t.Chdir(filepath.Join(inner, "deep"))

	got, err := CacheDir()
	if err != nil {
		t.Fatal(err)
	}
	want, _ := filepath.EvalSymlinks(filepath.Join(root, ".cache"))
	if g, _ := filepath.EvalSymlinks(got); g != want {
		t.Errorf("CacheDir() = %s, want %s", got, want)
	}
}

func TestCacheDirEnv(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(EnvCacheDir, dir)
	got, err := CacheDir()
	if err != nil || got != dir {
		t.Errorf("CacheDir() = %q, %v; want %q", got, err, dir)
	}
	t.Setenv(EnvCacheDir, filepath.Join(dir, "nope"))
	if _, err := CacheDir(); !errors.Is(err, ErrNoCache) {
		t.Errorf("CacheDir() with missing env dir: err = %v, want ErrNoCache", err)
	}
}

func TestORTLibraryPathMissing(t *testing.T) {
	t.Setenv(EnvORTLibrary, "")
	t.Setenv(EnvCacheDir, t.TempDir())
	_, err := ORTLibraryPath()
	if !errors.Is(err, ErrRuntimeMissing) || !strings.Contains(err.Error(), "scripts/setup.sh") {
		t.Errorf("err = %v, want ErrRuntimeMissing mentioning scripts/setup.sh", err)
	}
}

func TestLookupEmbeddedManifests(t *testing.T) {
	names := Names()
	if len(names) == 0 {
		t.Fatal("no embedded manifests")
	}
	for _, n := range names {
		m, err := Lookup(n)
		if err != nil {
			t.Errorf("Lookup(%s): %v", n, err)
			continue
		}
		if m.Path != "" {
			t.Errorf("Lookup(%s) set Path %q; only Load may", n, m.Path)
		}
	}
	m, err := Lookup("ultraface-rfb-320")
	if err != nil {
		t.Fatal(err)
	}
	// The values the detector relies on; a change here is a model change and must be deliberate.
	checks := []struct {
		what      string
		got, want any
	}{
		{"input", [2]int{m.Input.Width, m.Input.Height}, [2]int{320, 240}},
		{"colour", m.Input.Colour, "RGB"},
		{"mean", m.Input.Mean, [3]float32{127, 127, 127}},
		{"scale", m.Input.Scale, [3]float32{1.0 / 128, 1.0 / 128, 1.0 / 128}},
		{"family", m.Decode.Family, "ultraface"},
		{"anchors", m.Decode.Anchors, 4420},
		{"sha256", m.SHA256, "6c0256ccd3164f844736a401faf936ec2930764a87ae39442180887d0c5c8854"},
		{"id", m.ID(), "ultraface-rfb-320@1"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
}

func TestLookupUnknown(t *testing.T) {
	for _, name := range []string{"", "nope", "../manifests/ultraface-rfb-320", "ultraface-rfb-320.json"} {
		if _, err := Lookup(name); !errors.Is(err, ErrUnknownModel) {
			t.Errorf("Lookup(%q): err = %v, want ErrUnknownModel", name, err)
		}
	}
}

func TestManifestValidate(t *testing.T) {
	good, err := Lookup("ultraface-rfb-320")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		mutate func(m *Manifest)
	}{
		{"short sha", func(m *Manifest) { m.SHA256 = "abc" }},
		{"no file", func(m *Manifest) { m.File = "" }},
		{"zero width", func(m *Manifest) { m.Input.Width = 0 }},
		{"NHWC", func(m *Manifest) { m.Input.Layout = "NHWC" }},
		{"colour", func(m *Manifest) { m.Input.Colour = "YUV" }},
		{"resize", func(m *Manifest) { m.Input.Resize = "crop" }},
		{"family", func(m *Manifest) { m.Decode.Family = "yolo" }},
		{"no anchors", func(m *Manifest) { m.Decode.Anchors = 0 }},
		{"score 1", func(m *Manifest) { m.Thresholds.Score = 1 }},
		{"nms 0", func(m *Manifest) { m.Thresholds.NMSIoU = 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := *good
			tt.mutate(&m)
			if err := m.validate(); !errors.Is(err, ErrBadManifest) {
				t.Errorf("validate() = %v, want ErrBadManifest", err)
			}
		})
	}
}

func TestVerifyFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "m.onnx")
	mustWrite(t, p, "model bytes")
	sum := sha256.Sum256([]byte("model bytes"))
	good := hex.EncodeToString(sum[:])

	if err := VerifyFile(p, good); err != nil {
		t.Fatalf("VerifyFile(good) = %v", err)
	}
	if err := VerifyFile(p, strings.ToUpper(good)); err != nil {
		t.Errorf("VerifyFile(upper-case hex) = %v", err)
	}
	if err := VerifyFile(p, strings.Repeat("0", 64)); !errors.Is(err, ErrChecksum) {
		t.Errorf("VerifyFile(wrong sum) = %v, want ErrChecksum", err)
	}
	if err := VerifyFile(filepath.Join(dir, "missing.onnx"), good); !errors.Is(err, ErrModelMissing) ||
		!strings.Contains(err.Error(), "scripts/setup.sh") {
		t.Errorf("VerifyFile(missing) = %v, want ErrModelMissing with a hint", err)
	}
	if err := VerifyFile(dir, good); !errors.Is(err, ErrModelMissing) {
		t.Errorf("VerifyFile(directory) = %v, want ErrModelMissing", err)
	}
	// A replaced file (new size and mtime) must be hashed again, not trusted from the cache.
	mustWrite(t, p, "tampered model bytes")
	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(p, later, later); err != nil {
		t.Fatal(err)
	}
	if err := VerifyFile(p, good); !errors.Is(err, ErrChecksum) {
		t.Errorf("VerifyFile(after replace) = %v, want ErrChecksum", err)
	}
}

func TestLoadFromReportsMissingAndMismatch(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadFrom(dir, "ultraface-rfb-320"); !errors.Is(err, ErrModelMissing) {
		t.Errorf("LoadFrom(empty cache) = %v, want ErrModelMissing", err)
	}
	mustMkdir(t, filepath.Join(dir, "models"))
	mustWrite(t, filepath.Join(dir, "models", "ultraface-rfb-320.onnx"), "not the model")
	_, err := LoadFrom(dir, "ultraface-rfb-320")
	if !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), "ultraface-rfb-320@1") {
		t.Errorf("LoadFrom(wrong file) = %v, want ErrChecksum naming the model", err)
	}
}

func TestListReportsStatus(t *testing.T) {
	t.Setenv(EnvCacheDir, t.TempDir())
	list, err := List()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != len(Names()) {
		t.Fatalf("List() has %d entries, want %d", len(list), len(Names()))
	}
	for _, s := range list {
		if s.Manifest.Source.Registry == RegistryProject {
			// Compiled into the binary: present whatever the cache holds.
			if !s.Installed || !s.Verified {
				t.Errorf("%s (embedded): installed=%v verified=%v problem=%q", s.Manifest.Name, s.Installed, s.Verified, s.Problem)
			}
			continue
		}
		if s.Installed || s.Verified || s.Problem == "" {
			t.Errorf("%s in empty cache: installed=%v verified=%v problem=%q", s.Manifest.Name, s.Installed, s.Verified, s.Problem)
		}
	}
}

func TestListWithRealCache(t *testing.T) {
	requireCache(t)
	list, err := List()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range list {
		if !s.Installed || !s.Verified || s.Problem != "" {
			t.Errorf("%s: installed=%v verified=%v problem=%q", s.Manifest.Name, s.Installed, s.Verified, s.Problem)
		}
	}
}

func mustWrite(t *testing.T, p, content string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustMkdir(t *testing.T, p string) {
	t.Helper()
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
}
