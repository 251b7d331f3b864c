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

// Change applies a model action (shadow, unshadow, promote, rollback) after checking that the
// versions it leaves running can run together: a phrase head in shadow scores the active head's
// embeddings, so both must have been trained on the same openWakeWord embedding. Workers would
// refuse such a pair and keep their previous models; refusing it here says so to the person
// asking, as a conflict.
func Change(ctx context.Context, st *store.Store, action store.ModelAction, name, version, actor, orgID, remoteIP, reason string) (active, shadow string, err error) {
	if err := checkPair(ctx, st, action, name, version); err != nil {
		return "", "", err
	}
	return st.ChangeModel(ctx, action, name, version, actor, orgID, remoteIP, reason)
}

func checkPair(ctx context.Context, st *store.Store, action store.ModelAction, name, version string) error {
	builtin, err := models.Lookup(name)
	if err != nil || builtin.Decode.Family != models.FamilyPhraseHead {
		return nil
	}
	versions, err := st.ListModelVersions(ctx, name)
	if err != nil {
		return err
	}
	var active, shadow, target *store.ModelVersion
	for i := range versions {
		v := &versions[i]
		switch v.Status {
		case store.ModelActive:
			active = v
		case store.ModelShadow:
			shadow = v
		}
		if v.Version == version {
			target = v
		}
	}
	type head struct{ ref, embedding string }
	of := func(v *store.ModelVersion) head {
		if v == nil {
			return head{builtin.ID() + " (built-in)", builtin.HeadEmbedding()}
		}
		var m models.Manifest
		if json.Unmarshal([]byte(v.Manifest), &m) != nil {
			return head{v.Ref(), "unknown"}
		}
		return head{v.Ref(), m.HeadEmbedding()}
	}
	var a, s head
	switch {
	case target == nil: // ChangeModel says it is not registered
		return nil
	case action == store.ActionShadow:
		a, s = of(active), of(target)
	case action == store.ActionPromote && shadow != nil && shadow.ID != target.ID:
		a, s = of(target), of(shadow)
	default:
		return nil
	}
	if a.embedding != s.embedding {
		return fmt.Errorf("%w: %s was trained on %s embeddings and the active %s on %s: a shadow runs only beside an active version on the same embedding (unshadow it, or retrain it with training/phrase/retrain.sh)",
			store.ErrConflict, s.ref, s.embedding, a.ref, a.embedding)
	}
	return nil
}
