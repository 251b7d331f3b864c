// Package testaudio holds small espeak-ng Mandarin clips (make.sh regenerates them) and builds
// test recordings from them, so audio tests need neither ../shared/data nor espeak-ng at test
// time.
package testaudio

import (
	"embed"
	"fmt"

	"proctor/analyzers"
	"proctor/internal/wav"
)

//go:embed *.wav
var clips embed.FS

// Clip names.
const (
	Answer  = "answer"  // 我认为关键在于提高群众的积极性 (3.7 s)
	Phrase  = "phrase"  // 该题回答完毕 (1.4 s)
	Chatter = "chatter" // 喂你听得到吗，第二题的答案是什么，快告诉我 (4.2 s)
)

// Clip returns a clip's 16 kHz samples.
func Clip(name string) ([]float32, error) {
	b, err := clips.ReadFile(name + ".wav")
	if err != nil {
		return nil, fmt.Errorf("test clip %s: %w", name, err)
	}
	s, rate, err := wav.Decode(b)
	if err != nil || rate != analyzers.AudioRate {
		return nil, fmt.Errorf("test clip %s: rate %d: %v", name, rate, err)
	}
	return s, nil
}

// Part places a clip at AtMs in a recording.
type Part struct {
	Clip string
	AtMs int64
}

// Placed is where a part landed: [StartMs, EndMs).
type Placed struct {
	Clip           string
	StartMs, EndMs int64
}

// Build lays parts on a silent (faintly noisy, like a real room) 16 kHz recording of totalMs.
func Build(totalMs int64, parts ...Part) ([]float32, []Placed, error) {
	out := make([]float32, totalMs*analyzers.AudioRate/1000)
	// Deterministic low noise (-60 dBFS): digital silence is not what a microphone records.
	x := uint32(12345)
	for i := range out {
		x = x*1664525 + 1013904223
		out[i] = (float32(x>>8)/float32(1<<24) - 0.5) * 0.002
	}
	var placed []Placed
	for _, p := range parts {
		c, err := Clip(p.Clip)
		if err != nil {
			return nil, nil, err
		}
		at := int(p.AtMs * analyzers.AudioRate / 1000)
		if at+len(c) > len(out) {
			return nil, nil, fmt.Errorf("clip %s at %d ms overruns %d ms", p.Clip, p.AtMs, totalMs)
		}
		for i, v := range c {
			out[at+i] += v
		}
		placed = append(placed, Placed{p.Clip, p.AtMs, p.AtMs + int64(len(c))*1000/analyzers.AudioRate})
	}
	return out, placed, nil
}

// WAV encodes 16-bit mono samples as a WAV file.
func WAV(samples []float32, rate int) []byte {
	return wav.Encode(analyzers.EncodePCM16(samples), rate)
}
