package models

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"proctor/internal/digest"
)

// Manifests are data, not code: a newer model is a new JSON file here (and a line in
// scripts/artifacts.tsv), not a code change, as long as its decoding family is one we know.
//
//go:embed manifests/*.json
var manifestFS embed.FS

// Errors returned when loading a model. They wrap into messages that say what to do.
var (
	ErrUnknownModel = errors.New("unknown model")
	ErrModelMissing = errors.New("model file missing")
	ErrChecksum     = errors.New("model file checksum mismatch")
	ErrBadManifest  = errors.New("invalid model manifest")
)

// Manifest describes one model file: where it came from, how to feed it and how to read its
// outputs. Field names are the JSON keys in models/manifests/*.json.
type Manifest struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Task    string `json:"task"`
	// File is relative to the cache directory.
	File   string `json:"file"`
	SHA256 string `json:"sha256"`
	// Licence is the SPDX-ish licence of the weights; LicenceNote says how sure we are.
	Licence     string     `json:"licence"`
	LicenceNote string     `json:"licence_note,omitempty"`
	Source      Source     `json:"source"`
	Input       Input      `json:"input"`
	Decode      Decode     `json:"decode"`
	Thresholds  Thresholds `json:"thresholds"`
	// Audio describes how a streaming audio model is fed (audio families only; see audio.go).
	Audio *AudioSpec `json:"audio,omitempty"`
	// Vision describes the detector levels, classes or attribute labels (vision families; see
	// vision.go).
	Vision *VisionSpec `json:"vision,omitempty"`
	// GraphOptimization is the onnxruntime graph optimisation level for this model: "" or "all"
	// (default), "extended", "basic" or "none". Some graphs run slower fully optimised (see
	// SessionOptions).
	GraphOptimization string `json:"graph_optimization,omitempty"`
	// Notes record where the thresholds and preprocessing choices come from.
	Notes string `json:"notes,omitempty"`

	// Path is the absolute path of the verified file; set by Load, empty from Lookup.
	Path string `json:"-"`
	// data is the file of a registered version (versions.go), held in memory.
	data []byte
}

// Source is the registry package the file is extracted from (see scripts/artifacts.tsv).
type Source struct {
	Registry      string `json:"registry"`
	Package       string `json:"package"`
	PackageSHA256 string `json:"package_sha256"`
	Member        string `json:"member"`
}

// Input describes the model's single image input and its preprocessing.
type Input struct {
	Name   string `json:"name"`
	Width  int    `json:"width"`
	Height int    `json:"height"`
	// Layout is "NCHW" (the only one supported so far).
	Layout string `json:"layout"`
	// Colour is the channel order the model expects: "RGB" or "BGR".
	Colour string `json:"colour"`
	// Each channel value fed to the model is (pixel - Mean[c]) * Scale[c], c in Colour order.
	Mean  [3]float32 `json:"mean"`
	Scale [3]float32 `json:"scale"`
	// Resize is "stretch" (resize to Width×Height ignoring aspect ratio, what the model was
	// trained with), "letterbox" (keep aspect ratio, pad with the mean colour) or "align" (face
	// models: a similarity warp of five facial points onto the ArcFace template, see Zoom).
	Resize string `json:"resize"`
	// Zoom scales the ArcFace template of an "align" input about the crop's centre: 1 (or 0) is
	// the ArcFace 112×112 crop scaled to Width, above 1 a tighter crop (models.ArcFaceTemplate).
	Zoom float64 `json:"zoom,omitempty"`
	// Shift moves the face down in an "align" crop by this fraction of the side (negative: up).
	Shift float64 `json:"shift,omitempty"`
	// Mirror (face embeddings): embed the crop and its left-right mirror image and add the two
	// vectors (test-time flip); twice the cost, steadier on turned faces.
	Mirror bool `json:"mirror,omitempty"`
}

// Decode names how to turn the raw outputs into results.
type Decode struct {
	// Family selects the decoder: "ultraface" = scores [1,N,2] softmax (index 1 = face) and
	// boxes [1,N,4] corner form x1,y1,x2,y2 normalised to 0..1 (priors already applied in-graph).
	Family       string `json:"family"`
	ScoresOutput string `json:"scores_output"`
	BoxesOutput  string `json:"boxes_output"`
	// Anchors is N above.
	Anchors int `json:"anchors"`
	// Outputs are the output tensor names of the face-analysis families (face.go), in the order
	// the family reads them; Dim is the length of each output vector.
	Outputs []string `json:"outputs,omitempty"`
	Dim     int      `json:"dim,omitempty"`
	// Projection (face embeddings) is a whitening fitted on in-domain faces and compiled into the
	// binary: the unit embedding minus a mean, times a d×d matrix, normalised again (embedder.go).
	Projection *Projection `json:"projection,omitempty"`
}

// Projection names a whitening file under models/trained/: float32 little-endian, d+1 rows of d
// values, the mean first, then the matrix row-major (training/vision/fit_whitening.py).
type Projection struct {
	File   string `json:"file"`
	SHA256 string `json:"sha256"`
}

// Thresholds are the defaults; analyzers may override them from configuration.
type Thresholds struct {
	// Score is the minimum detector score for a result to count.
	Score float32 `json:"score"`
	// NMSIoU is the overlap above which the weaker of two boxes is dropped.
	NMSIoU float32 `json:"nms_iou"`
	// MinFace is the minimum box height as a fraction of the frame height (0 = no minimum).
	MinFace float32 `json:"min_face"`
	// Similarity is the cosine similarity at or above which two face embeddings are taken for
	// the same person (face-embedding family; calibrated per model, see its notes).
	Similarity float32 `json:"similarity,omitempty"`
}

// ID is name@version, stored with every result the model produces.
func (m *Manifest) ID() string { return m.Name + "@" + m.Version }

func (m *Manifest) validate() error {
	if isAudioFamily(m.Decode.Family) {
		return m.validateAudio()
	}
	if isFaceFamily(m.Decode.Family) {
		return m.validateFace()
	}
	if isVisionFamily(m.Decode.Family) {
		return m.validateVision()
	}
	if m.Decode.Family == FamilyBlazeFace {
		return m.validateBlazeFace()
	}
	problems := m.identityProblems()
	if m.Input.Width <= 0 || m.Input.Height <= 0 || m.Input.Name == "" {
		problems = append(problems, "input name, width and height are required")
	}
	if m.Input.Layout != "NCHW" {
		problems = append(problems, fmt.Sprintf("input layout %q unsupported (want NCHW)", m.Input.Layout))
	}
	if m.Input.Colour != "RGB" && m.Input.Colour != "BGR" {
		problems = append(problems, fmt.Sprintf("input colour %q unsupported (want RGB or BGR)", m.Input.Colour))
	}
	if m.Input.Resize != "stretch" && m.Input.Resize != "letterbox" {
		problems = append(problems, fmt.Sprintf("input resize %q unsupported (want stretch or letterbox)", m.Input.Resize))
	}
	switch m.Decode.Family {
	case "ultraface":
		if m.Decode.ScoresOutput == "" || m.Decode.BoxesOutput == "" || m.Decode.Anchors <= 0 {
			problems = append(problems, "ultraface decode needs scores_output, boxes_output and anchors")
		}
	default:
		problems = append(problems, fmt.Sprintf("decode family %q unknown", m.Decode.Family))
	}
	t := m.Thresholds
	if t.Score <= 0 || t.Score >= 1 || t.NMSIoU <= 0 || t.NMSIoU > 1 || t.MinFace < 0 || t.MinFace >= 1 {
		problems = append(problems, "thresholds out of range (score in (0,1), nms_iou in (0,1], min_face in [0,1))")
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w %s: %s", ErrBadManifest, m.Name, strings.Join(problems, "; "))
	}
	return nil
}

// identityProblems checks what every manifest needs whatever its family: a name, a version, a
// file and its sha256.
func (m *Manifest) identityProblems() []string {
	var problems []string
	if m.Name == "" || m.Version == "" || m.File == "" {
		problems = append(problems, "name, version and file are required")
	}
	if b, err := hex.DecodeString(m.SHA256); err != nil || len(b) != sha256.Size {
		problems = append(problems, "sha256 must be 64 hex digits")
	}
	return problems
}

// Names lists the embedded manifests, sorted.
func Names() []string {
	entries, _ := fs.ReadDir(manifestFS, "manifests")
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), ".json"); ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names
}

// Lookup returns the embedded manifest called name without touching the model file.
func Lookup(name string) (*Manifest, error) {
	if name == "" || strings.ContainsAny(name, `/\`) {
		return nil, fmt.Errorf("%w %q (known: %s)", ErrUnknownModel, name, strings.Join(Names(), ", "))
	}
	data, err := manifestFS.ReadFile(path.Join("manifests", name+".json"))
	if err != nil {
		return nil, fmt.Errorf("%w %q (known: %s)", ErrUnknownModel, name, strings.Join(Names(), ", "))
	}
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields() // a typo in a manifest must not silently become a default
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w %s: %v", ErrBadManifest, name, err)
	}
	if m.Name != name {
		return nil, fmt.Errorf("%w %s: file is named %s.json but says name %q", ErrBadManifest, name, name, m.Name)
	}
	if err := m.validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// Load returns the manifest called name with Path set to its model file in the cache directory,
// after checking the file's sha256 (once per process per file; see VerifyFile).
func Load(name string) (*Manifest, error) {
	dir, err := CacheDir()
	if err != nil {
		return nil, fmt.Errorf("load model %s: %w", name, err)
	}
	return LoadFrom(dir, name)
}

// LoadFrom is Load with an explicit cache directory.
func LoadFrom(cacheDir, name string) (*Manifest, error) {
	m, err := Lookup(name)
	if err != nil {
		return nil, err
	}
	if m.Source.Registry == RegistryProject { // compiled into the binary (audio.go)
		return m, m.verifyEmbedded()
	}
	p := filepath.Join(cacheDir, filepath.FromSlash(m.File))
	if err := VerifyFile(p, m.SHA256); err != nil {
		return nil, fmt.Errorf("load model %s: %w", m.ID(), err)
	}
	m.Path = p
	return m, nil
}

// verified remembers files whose checksum matched, keyed by what would change if the file were
// replaced, so a process that builds one detector per worker hashes each model once. It is
// package-level on purpose: the file system is process-wide too.
var verified struct {
	sync.Mutex
	ok map[verifyKey]bool
}

type verifyKey struct {
	path    string
	size    int64
	modTime int64
	sha     string
}

// VerifyFile checks that the file at p has the given sha256 (hex). A success is cached for the
// life of the process as long as the file's size and modification time do not change.
func VerifyFile(p, wantSHA256 string) error {
	st, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w: %s: run scripts/setup.sh to fetch it", ErrModelMissing, p)
		}
		return fmt.Errorf("%w: %s: %v", ErrModelMissing, p, err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%w: %s is not a regular file", ErrModelMissing, p)
	}
	want := strings.ToLower(wantSHA256)
	key := verifyKey{path: p, size: st.Size(), modTime: st.ModTime().UnixNano(), sha: want}
	verified.Lock()
	done := verified.ok[key]
	verified.Unlock()
	if done {
		return nil
	}
	got, err := digest.File(p)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrModelMissing, p, err)
	}
	if got != want {
		return fmt.Errorf("%w: %s has sha256 %s, manifest wants %s: delete it and run scripts/setup.sh",
			ErrChecksum, p, got, want)
	}
	verified.Lock()
	if verified.ok == nil {
		verified.ok = make(map[verifyKey]bool)
	}
	verified.ok[key] = true
	verified.Unlock()
	return nil
}

// Status is one line of `proctor models list`.
type Status struct {
	Manifest *Manifest `json:"manifest"`
	// Path is where the file is expected (empty if no cache directory was found).
	Path      string `json:"path"`
	Installed bool   `json:"installed"`   // the file exists
	Verified  bool   `json:"checksum_ok"` // its sha256 matches the manifest
	// Problem says what is wrong and what to do, empty when Verified.
	Problem string `json:"problem,omitempty"`
}

// List reports every embedded manifest with whether its file is installed and intact. A missing
// cache directory is reported per model, not as an error; the error is for broken manifests.
func List() ([]Status, error) {
	dir, dirErr := CacheDir()
	var out []Status
	for _, name := range Names() {
		m, err := Lookup(name)
		if err != nil {
			return nil, err
		}
		st := Status{Manifest: m}
		if m.Source.Registry == RegistryProject { // compiled into the binary (audio.go)
			st.Installed = true
			if err := m.verifyEmbedded(); err != nil {
				st.Problem = err.Error()
			} else {
				st.Verified, st.Path = true, m.Path
			}
			out = append(out, st)
			continue
		}
		if dirErr != nil {
			st.Problem = dirErr.Error()
			out = append(out, st)
			continue
		}
		st.Path = filepath.Join(dir, filepath.FromSlash(m.File))
		if _, err := os.Stat(st.Path); err == nil {
			st.Installed = true
		}
		if err := VerifyFile(st.Path, m.SHA256); err != nil {
			st.Problem = err.Error()
		} else {
			st.Verified = true
		}
		out = append(out, st)
	}
	return out, nil
}
