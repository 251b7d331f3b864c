package analyzers

import (
	"fmt"

	ort "github.com/yalue/onnxruntime_go"

	"proctor/models"
)

// DefaultEWNModel is EfficientWord-Net's keyword embedding network (PyPI efficientword-net 1.0.5,
// trained on real human speech; models/cards/ewn-resnet50-arc.md).
const DefaultEWNModel = "ewn-resnet50-arc"

// EWNWindowSamples is how much 16 kHz audio one EWN embedding looks at (1.5 s).
const EWNWindowSamples = ewnWindow

// EWN embeds 1.5 s windows of 16 kHz audio with EfficientWord-Net: log mel filterbank
// (logfbank.go, a port of the package's Python features) → ResNet-50 → a unit-length 2048-d
// vector. Not safe for concurrent use; tensors are bound once.
type EWN struct {
	fb      *logFbank
	sess    *ort.AdvancedSession
	in, out *ort.Tensor[float32]
	model   *models.Manifest
}

// NewEWN loads (and checksums) the network from the model cache.
func NewEWN(threads int) (*EWN, error) {
	m, err := models.Load(DefaultEWNModel)
	if err != nil {
		return nil, fmt.Errorf("ewn: %w", err)
	}
	if m.Decode.Family != models.FamilyEWNEmbedding {
		return nil, fmt.Errorf("ewn: model %s is a %s", m.ID(), m.Decode.Family)
	}
	if err := models.InitRuntime(); err != nil {
		return nil, fmt.Errorf("ewn: %w", err)
	}
	e := &EWN{fb: newLogFbank(), model: m}
	if e.in, err = ort.NewEmptyTensor[float32](ort.NewShape(1, 1, ewnFrames, fbankBins)); err == nil {
		if e.out, err = ort.NewEmptyTensor[float32](ort.NewShape(1, 2048)); err == nil {
			e.sess, err = models.NewAudioSession(m, []ort.Value{e.in}, []ort.Value{e.out}, models.SessionOptions{IntraOpThreads: threads})
		}
	}
	if err != nil {
		e.Close()
		return nil, fmt.Errorf("ewn: %w", err)
	}
	return e, nil
}

// ID is the model's name@version.
func (e *EWN) ID() string { return e.model.ID() }

// Features writes the network input for pcm (EWNWindowSamples samples, -1..1): 149 × 64 log
// filterbank energies, frame-major.
func Features(pcm []float32, out []float32) {
	newLogFbank().window(pcm, out)
}

// Embed returns the embedding of pcm (EWNWindowSamples samples, -1..1). The slice is the output
// tensor's storage: valid until the next call.
func (e *EWN) Embed(pcm []float32) ([]float32, error) {
	if len(pcm) != ewnWindow {
		return nil, fmt.Errorf("ewn: window of %d samples, want %d", len(pcm), ewnWindow)
	}
	e.fb.window(pcm, e.in.GetData())
	if err := e.sess.Run(); err != nil {
		return nil, fmt.Errorf("ewn: %w", err)
	}
	return e.out.GetData(), nil
}

// Close releases the session and tensors.
func (e *EWN) Close() error {
	if e.sess != nil {
		e.sess.Destroy()
	}
	for _, t := range []*ort.Tensor[float32]{e.in, e.out} {
		if t != nil {
			t.Destroy()
		}
	}
	return nil
}
