package rules

import (
	"math"
	"testing"
	"time"
)

// unit embeddings at a chosen cosine to the axis voice a (a = e0, others mix in e1 or e2).
func voiceAt(sim float64, other int) []float32 {
	e := make([]float32, 8)
	e[0], e[other] = float32(sim), float32(math.Sqrt(1-sim*sim))
	return e
}

func TestTrackVoicesEnrolsAndNumbersByAppearance(t *testing.T) {
	win := func(start int64, e []float32) VoiceWindow {
		return VoiceWindow{StartMs: start, EndMs: start + 1600, Embedding: e}
	}
	ws := []VoiceWindow{
		win(0, voiceAt(1, 1)), win(2000, voiceAt(0.98, 1)), win(4000, voiceAt(0.99, 2)), win(6000, voiceAt(1, 1)), // enrolment (6.4 s)
		win(9000, voiceAt(0.9, 1)),   // the candidate
		win(12000, voiceAt(0.2, 1)),  // voice 1
		win(14000, voiceAt(0.1, 2)),  // voice 2: far from voice 1 too
		win(16000, voiceAt(0.25, 1)), // voice 1 again
	}
	// Any order in, the same turns out.
	shuffled := []VoiceWindow{ws[7], ws[2], ws[5], ws[0], ws[6], ws[1], ws[4], ws[3]}
	turns := TrackVoices(shuffled, VoiceConfig{Enrol: 6 * time.Second})
	want := []int{0, 0, 0, 0, 0, 1, 2, 1}
	for i, tr := range turns {
		if tr.StartMs != ws[i].StartMs || tr.Speaker != want[i] {
			t.Fatalf("turn %d: %+v, want speaker %d at %d", i, tr, want[i], ws[i].StartMs)
		}
	}
	if !turns[3].Enrol || turns[4].Enrol {
		t.Errorf("enrolment should end after 6 s of speech: %+v", turns)
	}
	if turns[5].Score > 0.4 || turns[4].Score < 0.85 {
		t.Errorf("scores are similarities to the enrolment: %+v", turns)
	}
}

func TestSecondVoiceFlagsSustainedRunsOnly(t *testing.T) {
	cfg := VoiceConfig{MinSpeech: 2 * time.Second}
	turns := []VoiceTurn{
		{StartMs: 0, EndMs: 1600, Speaker: 0},
		{StartMs: 2000, EndMs: 3600, Speaker: 1, Score: 0.3}, // alone: 1.6 s < 2 s
		{StartMs: 20000, EndMs: 21600, Speaker: 1, Score: 0.4},
		{StartMs: 22000, EndMs: 23000, Speaker: 0},
		{StartMs: 25000, EndMs: 26600, Speaker: 2, Score: 0.2}, // within 10 s: one run of 3.2 s
		{StartMs: 60000, EndMs: 61600, Speaker: 1, Score: 0.3},
		{StartMs: 62000, EndMs: 63600, Speaker: 1, Score: 0.3}, // outside the answer
	}
	answers := []Answer{{Question: 1, StartMs: 15000, EndMs: 40000}}
	flags := SecondVoiceFlags(turns, answers, cfg)
	if len(flags) != 2 {
		t.Fatalf("flags %+v, want the two sustained runs", flags)
	}
	if f := flags[0]; f.StartMs != 20000 || f.EndMs != 26600 || f.Details["when"] != "answer" || f.Details["voices"] != 2 {
		t.Errorf("first run %+v", f)
	}
	if f := flags[1]; f.StartMs != 60000 || f.EndMs != 63600 || f.Details["when"] != "outside_answers" {
		t.Errorf("second run %+v", f)
	}
	if TrackVoices(nil, VoiceConfig{}) == nil || len(SecondVoiceFlags(nil, nil, VoiceConfig{})) != 0 {
		t.Error("no windows: no turns, no flags")
	}
}
