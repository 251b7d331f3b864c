package models

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"proctor/internal/digest"

	ort "github.com/yalue/onnxruntime_go"
)

// RegistryRegistered marks a model version registered at run time (proctor models register, or
// POST /v1/models): its bytes live in the database, not in the binary or the cache directory.
const RegistryRegistered = "registered"

// MaxRegisteredBytes bounds a registered model file: registered versions are the small heads
// the project trains, kept in the database and loaded by every worker.
const MaxRegisteredBytes = 64 << 20

// Retrainable lists the models whose new versions can be registered: the ones this project
// trains, whose families load from bytes.
var Retrainable = []string{"attire-cnn", "phrase-gaiti"}

// FromBytes checks a registered version: the manifest must be valid, name a retrainable model,
// keep the built-in version's decoding contract (family, inputs, outputs, labels) and match
// the bytes' sha256. The returned manifest loads from data (ModelBytes).
func FromBytes(manifestJSON, data []byte) (*Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(manifestJSON))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadManifest, err)
	}
	if !IsRetrainable(m.Name) {
		return nil, fmt.Errorf("%w: model %q cannot be registered (retrainable: %s)", ErrBadManifest, m.Name, strings.Join(Retrainable, ", "))
	}
	if m.Version == "" || strings.ContainsAny(m.Version, "@ ,/") || len(m.Version) > 32 {
		return nil, fmt.Errorf("%w: version %q must be 1-32 characters without '@', ',', '/' or spaces", ErrBadManifest, m.Version)
	}
	if len(data) == 0 || len(data) > MaxRegisteredBytes {
		return nil, fmt.Errorf("%w: model file is %d bytes (1 to %d allowed)", ErrBadManifest, len(data), MaxRegisteredBytes)
	}
	if got := digest.Bytes(data); got != strings.ToLower(m.SHA256) {
		return nil, fmt.Errorf("%w: the file's sha256 is %s, the manifest says %s", ErrChecksum, got, m.SHA256)
	}
	builtin, err := Lookup(m.Name)
	if err != nil {
		return nil, err
	}
	if err := sameContract(builtin, &m); err != nil {
		return nil, err
	}
	// Validation rules that are about where a file lives do not apply to bytes from the database.
	m.Source.Registry = RegistryRegistered
	m.File = "trained/" + m.Name + "@" + m.Version + ".onnx"
	if err := m.validate(); err != nil {
		return nil, err
	}
	m.data = data
	m.Path = "registered:" + m.ID()
	return &m, nil
}

// ReadVersionDir reads a retraining run's version directory: manifest.json and the ONNX file its
// "file" names (relative to the directory).
func ReadVersionDir(dir string) (*Manifest, []byte, error) {
	mj, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return nil, nil, fmt.Errorf("version directory: %w", err)
	}
	var probe struct {
		File string `json:"file"`
	}
	if err := json.Unmarshal(mj, &probe); err != nil {
		return nil, nil, fmt.Errorf("%w: %s/manifest.json: %v", ErrBadManifest, dir, err)
	}
	data, err := os.ReadFile(filepath.Join(dir, filepath.Base(probe.File)))
	if err != nil {
		return nil, nil, fmt.Errorf("version directory: %w", err)
	}
	m, err := FromBytes(mj, data)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", dir, err)
	}
	return m, mj, nil
}

// IsRetrainable reports whether new versions of the model can be registered.
func IsRetrainable(name string) bool {
	for _, n := range Retrainable {
		if n == name {
			return true
		}
	}
	return false
}

// sameContract refuses a version the analyzers would feed or read differently from the built-in:
// a new version may change weights and thresholds, not the interface.
func sameContract(old, m *Manifest) error {
	var problems []string
	if m.Task != old.Task || m.Decode.Family != old.Decode.Family {
		problems = append(problems, fmt.Sprintf("task/family %s/%s, built-in has %s/%s", m.Task, m.Decode.Family, old.Task, old.Decode.Family))
	}
	if m.Input.Name != old.Input.Name || m.Input.Width != old.Input.Width || m.Input.Height != old.Input.Height {
		problems = append(problems, "input differs from the built-in version")
	}
	if strings.Join(m.Decode.Outputs, ",") != strings.Join(old.Decode.Outputs, ",") {
		problems = append(problems, "decode outputs differ from the built-in version")
	}
	if (m.Vision == nil) != (old.Vision == nil) || (m.Vision != nil && strings.Join(m.Vision.Labels, ",") != strings.Join(old.Vision.Labels, ",")) {
		problems = append(problems, "vision labels differ from the built-in version")
	}
	if (m.Audio == nil) != (old.Audio == nil) || (m.Audio != nil && (m.Audio.Window != old.Audio.Window ||
		strings.Join(m.Audio.Inputs, ",") != strings.Join(old.Audio.Inputs, ",") || m.Audio.SampleRate != old.Audio.SampleRate)) {
		problems = append(problems, "audio input differs from the built-in version")
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w %s@%s: %s", ErrBadManifest, m.Name, m.Version, strings.Join(problems, "; "))
	}
	return nil
}

// CheckLoads opens the version in onnxruntime and runs it once on zeros, as a worker will, so a
// file the runtime rejects fails at registration rather than on every worker.
func CheckLoads(m *Manifest) error {
	switch m.Decode.Family {
	case FamilyFaceAttributes, FamilyEarAttributes:
		c, err := NewAttributeClassifier(m, SessionOptions{IntraOpThreads: 1})
		if err != nil {
			return err
		}
		defer c.Close()
		return c.session.Run()
	case FamilyPhraseHead:
		return checkPhraseHead(m)
	}
	return fmt.Errorf("%w: family %s cannot be registered", ErrBadManifest, m.Decode.Family)
}

func checkPhraseHead(m *Manifest) error {
	if err := InitRuntime(); err != nil {
		return err
	}
	in, err := ort.NewEmptyTensor[float32](ort.NewShape(1, int64(m.Audio.Window), 96))
	if err != nil {
		return err
	}
	defer in.Destroy()
	out, err := ort.NewEmptyTensor[float32](ort.NewShape(1, 1))
	if err != nil {
		return err
	}
	defer out.Destroy()
	s, err := NewAudioSession(m, []ort.Value{in}, []ort.Value{out}, SessionOptions{IntraOpThreads: 1})
	if err != nil {
		return err
	}
	defer s.Destroy()
	return s.Run()
}
