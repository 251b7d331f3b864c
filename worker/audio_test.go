package worker

import (
	"testing"
	"time"

	"proctor/analyzers"
	"proctor/internal/testaudio"
	"proctor/pipeline"
)

// An uploaded recording's audio track becomes chunks exactly like the live client's: valid
// messages, seq from the base, captured_at following the samples.
func TestRecordingMessages(t *testing.T) {
	samples, _, err := testaudio.Build(5500, testaudio.Part{Clip: testaudio.Phrase, AtMs: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, rate := range []int{16000, 44100, 96000} {
		wav := testaudio.WAV(analyzers.Resample(samples, analyzers.AudioRate, rate), rate)
		msgs, err := RecordingMessages("s1", wav, 1_000_000, 1<<40, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) != 3 {
			t.Fatalf("%d Hz: %d messages, want 3 (2 s + 2 s + 1.5 s)", rate, len(msgs))
		}
		var total int
		for i, m := range msgs {
			if err := m.Validate(); err != nil {
				t.Errorf("%d Hz message %d: %v", rate, i, err)
			}
			if m.Seq != 1<<40+int64(i) || m.CapturedAtMs != 1_000_000+int64(i)*2000 {
				t.Errorf("%d Hz message %d: seq %d captured_at %d", rate, i, m.Seq, m.CapturedAtMs)
			}
			if m.SampleRate > 48000 {
				t.Errorf("%d Hz: message at %d Hz, the API range is 8–48 kHz", rate, m.SampleRate)
			}
			total += len(m.PCM) / 2 * 1000 / m.SampleRate
			back, err := pipeline.DecodeAudio(pipeline.EncodeAudio(m))
			if err != nil || back.Seq != m.Seq {
				t.Errorf("%d Hz message %d does not survive the wire: %v", rate, i, err)
			}
		}
		if total < 5490 || total > 5510 {
			t.Errorf("%d Hz: %d ms in total, want 5500", rate, total)
		}
	}
	if _, err := RecordingMessages("s1", []byte("not a wav"), 0, 0, 0); err == nil {
		t.Error("garbage accepted as a recording")
	}
}

func TestLevelDBFS(t *testing.T) {
	if got := levelDBFS(make([]byte, 100)); got != -100 {
		t.Errorf("silence: %v dBFS", got)
	}
	full := analyzers.EncodePCM16([]float32{1, -1, 1, -1})
	if got := levelDBFS(full); got > 0.1 || got < -0.1 {
		t.Errorf("full-scale square: %v dBFS, want 0", got)
	}
}
