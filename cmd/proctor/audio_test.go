package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAudioConfigPhraseModel: --phrase-model loads a version directory as training/phrase/train.py
// --version-dir writes it (here: the built-in head's bytes under version "test") and refuses one whose
// checksum does not match.
func TestAudioConfigPhraseModel(t *testing.T) {
	raw, err := os.ReadFile("../../models/manifests/phrase-gaiti.json")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	onnx, err := os.ReadFile(filepath.Join("../../models", m["file"].(string)))
	if err != nil {
		t.Skipf("built-in phrase head unavailable: %v", err)
	}
	m["version"], m["file"] = "test", "phrase-gaiti.onnx"
	m["source"] = map[string]any{"registry": "registered", "package": "training/phrase/train.py",
		"package_sha256": m["sha256"], "member": "phrase-gaiti.onnx"}
	dir := t.TempDir()
	write := func(name string, data []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mj, _ := json.Marshal(m)
	write("manifest.json", mj)
	write("phrase-gaiti.onnx", onnx)

	cfg, err := audioConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Phrase.Active == nil || cfg.Phrase.Active.ID() != "phrase-gaiti@test" {
		t.Fatalf("Active = %v, want phrase-gaiti@test", cfg.Phrase.Active)
	}
	// The version keeps the embedding its head was trained on (the built-in's: int8).
	if got, want := cfg.Phrase.Active.HeadEmbedding(), m["audio"].(map[string]any)["embedding"]; got != want {
		t.Errorf("version's embedding %q, want the built-in's %v", got, want)
	}
	if cfg, err := audioConfig(""); err != nil || cfg.Phrase.Active != nil {
		t.Fatalf("no --phrase-model: %v, %v", cfg.Phrase.Active, err)
	}
	write("phrase-gaiti.onnx", append(onnx, 0))
	if _, err := audioConfig(dir); err == nil || !strings.Contains(err.Error(), "sha256") {
		t.Fatalf("changed file: err = %v, want a sha256 mismatch", err)
	}
}
