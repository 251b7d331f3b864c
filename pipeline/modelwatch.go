package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"proctor/models"
	"proctor/store"
)

// ModelWatcher keeps a worker's analyzers on the model registry's active and shadow versions:
// it polls a cheap fingerprint of the running versions and, when it changes, loads the new
// versions' bytes (sha256-checked again) and reloads the frame and audio analyzer pools. A
// version that fails to load is logged and the worker keeps what it runs.
type ModelWatcher struct {
	Store  *store.Store
	Frames *FrameHandlers // may be nil
	Audio  *AudioHandlers // may be nil
	Log    *slog.Logger

	fingerprint string
}

// Apply loads the running versions once if they changed since the last call.
func (w *ModelWatcher) Apply(ctx context.Context) error {
	fp, err := w.Store.RunningFingerprint(ctx)
	if err != nil || fp == w.fingerprint {
		return err
	}
	rows, err := w.Store.RunningModels(ctx)
	if err != nil {
		return err
	}
	running := map[string]*models.Manifest{} // "name/status" → manifest
	for _, r := range rows {
		if !models.IsRetrainable(r.Name) {
			continue // another service version's model: not ours to load
		}
		m, err := models.FromBytes([]byte(r.Manifest), r.Data)
		if err != nil {
			return fmt.Errorf("model registry: %s: %w", r.Ref(), err)
		}
		running[r.Name+"/"+r.Status] = m
	}
	if w.Frames != nil {
		cfg := w.Frames.Config()
		cfg.Attire.Active = running["attire-cnn/"+store.ModelActive]
		cfg.Attire.Shadow = running["attire-cnn/"+store.ModelShadow]
		if err := w.Frames.Reload(cfg); err != nil {
			return err
		}
	}
	if w.Audio != nil {
		cfg := w.Audio.AnalyzerConfig()
		cfg.Phrase.Active = running["phrase-gaiti/"+store.ModelActive]
		cfg.Phrase.Shadow = running["phrase-gaiti/"+store.ModelShadow]
		if err := w.Audio.Reload(cfg); err != nil {
			return err
		}
	}
	w.fingerprint = fp
	w.log().Info("model versions reloaded", "running", fp)
	return nil
}

// Run polls every interval until ctx ends.
func (w *ModelWatcher) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := w.Apply(ctx); err != nil && ctx.Err() == nil {
				w.log().Error("model registry poll", "err", err)
			}
		}
	}
}

func (w *ModelWatcher) log() *slog.Logger {
	if w.Log == nil {
		return slog.Default()
	}
	return w.Log
}
