package eval_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"proctor/analyzers"
	"proctor/internal/eval"
	"proctor/internal/testaudio"
	"proctor/models"
)

// `proctor eval audio` scores a labelled folder, counts every detection in the real-negatives
// folder as a false alarm (per subfolder), and times each stage on the thread's CPU clock.
func TestRunAudioStagesAndNegatives(t *testing.T) {
	dir := t.TempDir()
	samples, placed, err := testaudio.Build(12000, testaudio.Part{Clip: testaudio.Answer, AtMs: 1000},
		testaudio.Part{Clip: testaudio.Phrase, AtMs: 5500})
	if err != nil {
		t.Fatal(err)
	}
	lab, _ := json.Marshal(map[string]any{
		"speech":  [][2]int64{{placed[0].StartMs, placed[0].EndMs}, {placed[1].StartMs, placed[1].EndMs}},
		"phrases": [][2]int64{{placed[1].StartMs, placed[1].EndMs}}, "voice": map[string]string{"variant": "test"}})
	write := func(path string, b []byte) {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(dir, "split", "a.wav"), testaudio.WAV(samples, analyzers.AudioRate))
	write(filepath.Join(dir, "split", "a.json"), lab)
	chatter, _, err := testaudio.Build(8000, testaudio.Part{Clip: testaudio.Chatter, AtMs: 500})
	if err != nil {
		t.Fatal(err)
	}
	write(filepath.Join(dir, "real", "room", "c.wav"), testaudio.WAV(chatter, 8000*analyzers.AudioRate/16000))
	rep, err := eval.RunAudio(context.Background(), eval.AudioOptions{Data: filepath.Join(dir, "split"),
		Negatives: filepath.Join(dir, "real")})
	if models.NotInstalled(err) {
		t.Skipf("audio models not installed (%v): run scripts/setup.sh", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	s := rep.Summary()
	if s.Phrases != 1 || s.Hits != 1 || s.FalseAlarms != 0 {
		t.Errorf("labelled split: %d/%d phrases, %d false alarms; want 1/1, 0", s.Hits, s.Phrases, s.FalseAlarms)
	}
	room, ok := s.Real["room"]
	if !ok || room.Files != 1 || room.FalseAlarms != 0 || room.SpeechHours <= 0 {
		t.Errorf("real negatives %+v: want folder room, 1 file, speech, no false alarm", s.Real)
	}
	for _, st := range []string{"resample", "vad", "phrase", "total"} {
		if s.Stages[st] <= 0 {
			t.Errorf("stage %q speed %v, want > 0 (stages %v)", st, s.Stages[st], s.Stages)
		}
	}
	var b strings.Builder
	if err := rep.Print(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| vad |", "| phrase |", "| **total** |", "| room | 1 |"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("printed report lacks %q:\n%s", want, b.String())
		}
	}
}
