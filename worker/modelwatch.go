package worker

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"proctor/models"
	"proctor/store"
)

// ModelWatcher keeps a worker's analyzers on the active and shadow model versions:
// it polls a cheap fingerprint of the running versions and, when it changes, loads the new
// versions' bytes (sha256-checked again) and reloads the frame and audio analyzer pools. A
// version that fails to load is logged and the worker keeps what it runs.
type ModelWatcher struct {
	Store  *store.Store
	Frames *FrameHandlers // may be nil
	Audio  *AudioHandlers // may be nil
	Log    *slog.Logger
	// Metrics, when set, exports proctor_model_loaded{model,version,role}: what this worker
	// actually runs (the database says what it should).
	Metrics prometheus.Registerer

	fingerprint string
	applied     bool
	loaded      *prometheus.GaugeVec
}

// Apply loads the running versions once if they changed since the last call.
func (w *ModelWatcher) Apply(ctx context.Context) error {
	fp, err := w.Store.RunningFingerprint(ctx)
	if err != nil || (w.applied && fp == w.fingerprint) {
		return err
	}
	if !w.applied && fp == "" { // nothing registered runs: the handlers already have the built-ins
		w.applied = true
		w.export(nil)
		return nil
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
			return fmt.Errorf("model version %s: %w", r.Ref(), err)
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
	w.fingerprint, w.applied = fp, true
	w.export(running)
	w.log().Info("model versions reloaded", "running", fp)
	return nil
}

// export publishes the versions this worker loaded: the registered ones, else the built-in one.
func (w *ModelWatcher) export(running map[string]*models.Manifest) {
	if w.Metrics == nil {
		return
	}
	if w.loaded == nil {
		w.loaded = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "proctor_model_loaded",
			Help: "Model versions this worker runs (role active or shadow)."}, []string{"model", "version", "role"})
		w.Metrics.MustRegister(w.loaded)
	}
	w.loaded.Reset()
	for _, name := range models.Retrainable {
		active := running[name+"/"+store.ModelActive]
		if active == nil {
			active, _ = models.Lookup(name)
		}
		if active != nil {
			w.loaded.WithLabelValues(name, active.Version, store.ModelActive).Set(1)
		}
		if sh := running[name+"/"+store.ModelShadow]; sh != nil {
			w.loaded.WithLabelValues(name, sh.Version, store.ModelShadow).Set(1)
		}
	}
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
				w.log().Error("model versions poll", "err", err)
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
