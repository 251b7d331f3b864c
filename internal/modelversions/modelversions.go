// Package modelversions holds what the API, the command line and the workers share about
// retrained model versions: which versions are in force, and the checks a version passes before
// it is stored. It sits above models (manifests, the ONNX runtime) and store (the rows), so the
// API needs no worker code to register a version.
package modelversions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"proctor/internal/digest"
	"proctor/models"
	"proctor/store"
)

// InForce maps each retrainable model to the version flags are raised with now
// ("name@version", the built-in one unless a registered version is active) and, under
// "name shadow", the version in shadow.
func InForce(ctx context.Context, st *store.Store) (map[string]string, error) {
	out := map[string]string{}
	for _, name := range models.Retrainable {
		if m, err := models.Lookup(name); err == nil {
			out[name] = m.ID() + " (built-in)"
		}
	}
	versions, err := st.ListModelVersions(ctx, "")
	if err != nil {
		return nil, err
	}
	for _, v := range versions {
		switch v.Status {
		case store.ModelActive:
			out[v.Name] = v.Ref()
		case store.ModelShadow:
			out[v.Name+" shadow"] = v.Ref()
		}
	}
	return out, nil
}

// ErrRefused wraps why a version cannot be registered (the caller's mistake, not ours).
var ErrRefused = errors.New("model version refused")

// Prepare checks a retrained version the way a worker will load it — valid manifest of a
// retrainable model, sha256 of the bytes, the built-in version's contract, not the built-in
// version number, onnxruntime loads and runs it — and returns the model version row to store.
func Prepare(manifestJSON, data, card, eval []byte, actor string) (*store.ModelVersion, error) {
	if len(eval) > 0 && !json.Valid(eval) {
		return nil, fmt.Errorf("%w: eval must be JSON", ErrRefused)
	}
	m, err := models.FromBytes(manifestJSON, data)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRefused, err)
	}
	if builtin, _ := models.Lookup(m.Name); builtin != nil && builtin.Version == m.Version {
		return nil, fmt.Errorf("%w: %s is the built-in version: give the new one another version", store.ErrConflict, m.ID())
	}
	if err := models.CheckLoads(m); err != nil {
		return nil, fmt.Errorf("%w: model does not load: %v", ErrRefused, err)
	}
	return &store.ModelVersion{Name: m.Name, Version: m.Version, SHA256: digest.Bytes(data), Manifest: string(manifestJSON),
		Data: data, Card: string(card), Eval: string(eval), RegisteredBy: actor}, nil
}

// PrepareDir is Prepare for a retraining run's version directory: manifest.json and the ONNX file
// it names, with card.md and eval.json when present.
func PrepareDir(dir, actor string) (*store.ModelVersion, error) {
	m, mj, err := models.ReadVersionDir(dir)
	if err != nil {
		return nil, err
	}
	data, err := models.ModelBytes(m)
	if err != nil {
		return nil, err
	}
	card, _ := os.ReadFile(filepath.Join(dir, "card.md"))
	eval, _ := os.ReadFile(filepath.Join(dir, "eval.json"))
	return Prepare(mj, data, card, eval, actor)
}
