package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"proctor/analyzers"
	"proctor/models"
)

// TestEvalVisionAttireModel: --attire-model loads a version directory (here the built-in weights
// registered as version 2) and evaluates with it; a broken directory is refused with a message.
func TestEvalVisionAttireModel(t *testing.T) {
	if set, err := analyzers.NewSet(analyzers.Config{Analyzers: []string{"faces", "landmarks", "attire"}}); err != nil {
		t.Skipf("models unavailable (%v): run scripts/setup.sh", err)
	} else {
		set.Close()
	}
	builtin, err := models.Load(analyzers.DefaultAttireModel)
	if err != nil {
		t.Fatal(err)
	}
	data, err := models.ModelBytes(builtin)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join("..", "..", "models", "manifests", "attire-cnn.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	m["version"], m["file"], m["sha256"] = "2", "attire-cnn.onnx", hex.EncodeToString(sum[:])
	m["source"] = map[string]string{"registry": "registered", "package": "test", "package_sha256": hex.EncodeToString(sum[:]), "member": "attire-cnn.onnx"}
	dir := t.TempDir()
	mj, _ := json.Marshal(m)
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), mj, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "attire-cnn.onnx"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir() // no labelled folders: every check is skipped, the set is still built
	run := func(args ...string) (string, error) {
		var stdout, stderr bytes.Buffer
		err := evalVision(context.Background(), append([]string{"--data", empty, "--checks", "attributes", "-q"}, args...), &stdout, &stderr)
		return stdout.String() + stderr.String(), err
	}
	out, err := run("--analyzers", "faces,landmarks,attire", "--json", "--attire-model", dir)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(out, `"attire (attire-cnn@2 mask=0.61 occluded=0.78)"`) {
		t.Errorf("the timing table does not name the version directory's model:\n%s", out)
	}

	// Wrong bytes: the checksum is refused. No attire analyzer: a usage error.
	if err := os.WriteFile(filepath.Join(dir, "attire-cnn.onnx"), append(data, 0), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := run("--attire-model", dir); err == nil || !strings.Contains(err.Error(), "sha256") {
		t.Errorf("tampered model: err = %v, want a checksum error", err)
	}
	if _, err := run("--analyzers", "faces", "--attire-model", dir); err == nil || !strings.Contains(err.Error(), "attire analyzer") {
		t.Errorf("no attire analyzer: err = %v", err)
	}
	if _, err := run("--attire-model", filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "manifest.json") {
		t.Errorf("missing directory: err = %v", err)
	}
}
