package models

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"os"
	"path"
	"strings"

	ort "github.com/yalue/onnxruntime_go"
)

// Audio model families: how the service feeds a model and reads its outputs.
const (
	// FamilySileroVAD is silero VAD v5/v6: input [1, context+frame] float32 in -1..1, state
	// [2,1,128], sr int64 scalar → output [1,1] speech probability, stateN.
	FamilySileroVAD = "silero-vad-v5"
	// FamilySileroVADSeq is the same network taking F consecutive frames of one stream per call
	// (training/voice/silero_seq.py): input [F, context+frame], state [2,1,128] → output [F],
	// stateN; the LSTM runs over the F frames in order.
	FamilySileroVADSeq = "silero-vad-v5-seq"
	// FamilyOWWMel is openWakeWord's melspectrogram: input [1, samples] at int16 scale (not
	// -1..1) → [1,1,frames,32]; frame i covers samples [160 i, 160 i + 512).
	FamilyOWWMel = "oww-melspectrogram"
	// FamilyOWWMelBatch is the melspectrogram taking a batch of blocks per call
	// (training/phrase/stream_oww.py --mel): [B, 1632] → [B,1,8,32], each block clipped by its own
	// maximum as when computed alone.
	FamilyOWWMelBatch = "oww-melspectrogram-batch"
	// FamilyOWWEmbedding is openWakeWord's speech embedding: [N,76,32,1] mel frames (x/10+2) →
	// [N,1,1,96].
	FamilyOWWEmbedding = "oww-embedding"
	// FamilyOWWEmbeddingStream is an openWakeWord embedding taking a run of consecutive windows
	// in one call (training/phrase/stream_oww.py): [1, 76+8(K−1), 32, 1] mel frames → [K,1,1,96],
	// output j the embedding of frames [8j, 8j+76).
	FamilyOWWEmbeddingStream = "oww-embedding-stream"
	// FamilyPhraseHead is a classifier trained by this project (training/phrase): [N,W,96]
	// embeddings → [N,1] phrase score.
	FamilyPhraseHead = "phrase-head"
	// FamilySpeakerEncoder is Resemblyzer's GE2E speaker encoder: [N,T,40] power mel frames (10
	// ms hop, speech at -30 dBFS) → [N,256] L2-normalised speaker embedding.
	FamilySpeakerEncoder = "ge2e-speaker"
	// FamilyEWNEmbedding is EfficientWord-Net's keyword embedding: [1,1,149,64] log mel
	// filterbank of 1.5 s at 16 kHz (analyzers/logfbank.go) → [1,2048] unit-length embedding.
	FamilyEWNEmbedding = "ewn-embedding"
	// FamilyPhraseEWNHead is a classifier trained by this project (training/phrase/ewn.py) on
	// EfficientWord-Net embeddings at the end of speech segments: [N,2048] → [N,1] phrase score.
	FamilyPhraseEWNHead = "phrase-ewn-head"
)

// RegistryProject marks a model trained in this project and committed under models/trained/:
// it is compiled into the binary, so no setup step or cache directory is needed for it.
const RegistryProject = "project"

// trainedFS holds the project's own small models (model cards in models/cards/).
//
//go:embed trained/*.onnx trained/*.f32
var trainedFS embed.FS

// AudioSpec is the audio part of a manifest: how a streaming audio model is fed.
type AudioSpec struct {
	// SampleRate of the audio the model expects (Hz).
	SampleRate int `json:"sample_rate"`
	// FrameSamples is the hop between two model steps in samples (silero: 512; melspectrogram:
	// 160 per frame; embedding: 8 mel frames; head: one embedding).
	FrameSamples int `json:"frame_samples"`
	// ContextSamples is how many samples of the previous frame are fed again (silero: 64).
	ContextSamples int `json:"context_samples,omitempty"`
	// Window is how many steps of the previous stage one inference looks at (embedding: 76 mel
	// frames; head: 16 embeddings).
	Window int `json:"window,omitempty"`
	// Inputs and Outputs are the graph's tensor names in the order the service binds them.
	Inputs  []string `json:"inputs"`
	Outputs []string `json:"outputs"`
	// PhraseMs is the typical duration of the spotted phrase (head only): a detection's start is
	// its end minus this.
	PhraseMs int `json:"phrase_ms,omitempty"`
	// MinRun is how many consecutive windows must score over the threshold before a detection
	// opens (head only; default 1). Chosen with the threshold in training.
	MinRun int `json:"min_run,omitempty"`
	// FuseOWW (EWN phrase heads only) is the weight of the built-in openWakeWord head's best
	// score around a speech end in the fused score w·oww + (1−w)·ewn; 0: EWN alone.
	FuseOWW float64 `json:"fuse_oww,omitempty"`
	// Embedding (phrase heads only) names the openWakeWord embedding model the head was trained
	// on, which the service must feed it: its scores and threshold hold only for those
	// embeddings. Empty: "oww-embedding" (fp32), which every head trained before it was on.
	Embedding string `json:"embedding,omitempty"`
}

// DefaultHeadEmbedding is the embedding of a phrase head whose manifest names none.
const DefaultHeadEmbedding = "oww-embedding"

// HeadEmbedding is the openWakeWord embedding model phrase head m was trained on.
func (m *Manifest) HeadEmbedding() string {
	if m.Audio == nil || m.Audio.Embedding == "" {
		return DefaultHeadEmbedding
	}
	return m.Audio.Embedding
}

func isAudioFamily(f string) bool {
	switch f {
	case FamilySileroVAD, FamilySileroVADSeq, FamilyOWWMel, FamilyOWWMelBatch, FamilyOWWEmbedding, FamilyOWWEmbeddingStream, FamilyPhraseHead, FamilySpeakerEncoder,
		FamilyEWNEmbedding, FamilyPhraseEWNHead:
		return true
	}
	return false
}

// validateAudio checks an audio manifest; image fields (input, decode outputs) must be absent.
func (m *Manifest) validateAudio() error {
	problems := m.identityProblems()
	a := m.Audio
	if a == nil {
		problems = append(problems, "audio section is required for family "+m.Decode.Family)
	} else {
		if a.SampleRate != 16000 {
			problems = append(problems, fmt.Sprintf("audio sample_rate %d unsupported (want 16000)", a.SampleRate))
		}
		if a.FrameSamples <= 0 || len(a.Inputs) == 0 || len(a.Outputs) == 0 {
			problems = append(problems, "audio frame_samples, inputs and outputs are required")
		}
		if m.Decode.Family == FamilyPhraseHead && (a.Window <= 0 || a.PhraseMs <= 0) {
			problems = append(problems, "phrase head needs audio window and phrase_ms")
		}
		if a.Embedding != "" && (m.Decode.Family != FamilyPhraseHead || !strings.HasPrefix(a.Embedding, "oww-embedding")) {
			problems = append(problems, fmt.Sprintf("audio embedding %q: only a phrase head names one, an openWakeWord embedding (oww-embedding…)", a.Embedding))
		}
		if m.Decode.Family == FamilyPhraseEWNHead && a.PhraseMs <= 0 {
			problems = append(problems, "phrase head needs audio phrase_ms")
		}
	}
	needsScore := m.Decode.Family == FamilySileroVAD || m.Decode.Family == FamilySileroVADSeq || m.Decode.Family == FamilyPhraseHead || m.Decode.Family == FamilyPhraseEWNHead
	if t := m.Thresholds.Score; (needsScore && (t <= 0 || t >= 1)) || (!needsScore && t != 0) {
		problems = append(problems, "thresholds.score must be in (0,1) for a VAD or phrase head and absent otherwise")
	}
	if m.Source.Registry == RegistryProject && !strings.HasPrefix(m.File, "trained/") {
		problems = append(problems, "a project model's file must be under trained/")
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w %s: %s", ErrBadManifest, m.Name, strings.Join(problems, "; "))
	}
	return nil
}

// verifyEmbedded checks a project model compiled into the binary against its manifest.
func (m *Manifest) verifyEmbedded() error {
	if _, err := embeddedFile(m.File, m.SHA256); err != nil {
		return fmt.Errorf("%w (train it, then update models/manifests/%s.json)", err, m.Name)
	}
	m.Path = "embedded:" + m.File
	return nil
}

// embeddedFile reads a file compiled into the binary (models/trained/) and checks its sha256.
func embeddedFile(file, wantSHA256 string) ([]byte, error) {
	data, err := trainedFS.ReadFile(path.Clean(file))
	if err != nil {
		return nil, fmt.Errorf("%w: %s is not compiled into this binary", ErrModelMissing, file)
	}
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); got != strings.ToLower(wantSHA256) {
		return nil, fmt.Errorf("%w: embedded %s has sha256 %s, the manifest wants %s", ErrChecksum, file, got, wantSHA256)
	}
	return data, nil
}

// ModelBytes returns the verified model file of a loaded manifest (from the cache directory, or
// from the binary for project models).
func ModelBytes(m *Manifest) ([]byte, error) {
	if m.data != nil {
		return m.data, nil
	}
	if m.Source.Registry == RegistryProject {
		if err := m.verifyEmbedded(); err != nil {
			return nil, err
		}
		return trainedFS.ReadFile(path.Clean(m.File))
	}
	if m.Path == "" {
		return nil, fmt.Errorf("model %s: not loaded (use models.Load)", m.ID())
	}
	return os.ReadFile(m.Path)
}

// NewAudioSession creates a session for an audio model with tensors bound once: the streaming
// analyzers then call Run on the same buffers for every frame (no allocation per frame).
func NewAudioSession(m *Manifest, inputs, outputs []ort.Value, o SessionOptions) (*ort.AdvancedSession, error) {
	if m.Audio == nil {
		return nil, fmt.Errorf("model %s is not an audio model", m.ID())
	}
	if err := InitRuntime(); err != nil {
		return nil, err
	}
	data, err := ModelBytes(m)
	if err != nil {
		return nil, err
	}
	s, err := openSession(o, func(opts *ort.SessionOptions) (*ort.AdvancedSession, error) {
		return ort.NewAdvancedSessionWithONNXData(data, m.Audio.Inputs, m.Audio.Outputs, inputs, outputs, opts)
	})
	if err != nil {
		return nil, fmt.Errorf("create session for %s: %w", m.ID(), err)
	}
	return s, nil
}

// NewDynamicAudioSession opens an audio model whose input shapes vary from call to call (the
// caller makes or keeps the tensors of each shape and passes them to Run).
func NewDynamicAudioSession(m *Manifest, o SessionOptions) (*ort.DynamicAdvancedSession, error) {
	if m.Audio == nil {
		return nil, fmt.Errorf("model %s is not an audio model", m.ID())
	}
	if err := InitRuntime(); err != nil {
		return nil, err
	}
	data, err := ModelBytes(m)
	if err != nil {
		return nil, err
	}
	s, err := openSession(o, func(opts *ort.SessionOptions) (*ort.DynamicAdvancedSession, error) {
		return ort.NewDynamicAdvancedSessionWithONNXData(data, m.Audio.Inputs, m.Audio.Outputs, opts)
	})
	if err != nil {
		return nil, fmt.Errorf("create session for %s: %w", m.ID(), err)
	}
	return s, nil
}

// NewSpeakerSession opens a speaker encoder (FamilySpeakerEncoder) whose input length varies
// from call to call (a window of speech, or the shorter rest of a segment): the caller makes the
// input tensor per call and reuses the returned [1,256] output tensor.
func NewSpeakerSession(m *Manifest, threads int) (*ort.DynamicAdvancedSession, *ort.Tensor[float32], error) {
	if m.Audio == nil || m.Decode.Family != FamilySpeakerEncoder {
		return nil, nil, fmt.Errorf("model %s is not a speaker encoder", m.ID())
	}
	s, err := NewDynamicAudioSession(m, SessionOptions{IntraOpThreads: threads})
	if err != nil {
		return nil, nil, err
	}
	out, err := ort.NewEmptyTensor[float32](ort.NewShape(1, 256))
	if err != nil {
		s.Destroy()
		return nil, nil, err
	}
	return s, out, nil
}
