package analyze

import (
	"context"
	"math"

	"proctor/analyzers"
	"proctor/rules"
)

// AudioResult is the one JSON object `proctor analyze audio` prints. Field names are stable.
type AudioResult struct {
	File       string        `json:"file"`
	DurationMs int64         `json:"duration_ms"`
	Speech     [][2]int64    `json:"speech"`
	Phrases    []AudioPhrase `json:"phrases"`
	Answers    []AudioAnswer `json:"answers,omitempty"`
	// Voices: who spoke when. Speaker 0 is the first voice heard (enrolled from the first
	// rules.DefaultVoiceEnrol s of speech), others are numbered in order of appearance; score is
	// the cosine similarity to speaker 0. Consecutive windows of one speaker are merged.
	Voices []rules.VoiceTurn `json:"voices"`
	// SecondVoice: the SECOND_VOICE runs the rules would flag (start_ms, end_ms).
	SecondVoice [][2]int64 `json:"second_voice"`
}

// AudioPhrase is one spotted closing phrase.
type AudioPhrase struct {
	StartMs int64   `json:"start_ms"`
	EndMs   int64   `json:"end_ms"`
	Score   float32 `json:"score"`
}

// AudioAnswer is one answer segment (with questions shown).
type AudioAnswer struct {
	Question       int   `json:"question"`
	StartMs        int64 `json:"start_ms"`
	EndMs          int64 `json:"end_ms"`
	ClosedByPhrase bool  `json:"closed_by_phrase"`
}

// Audio feeds samples to a fresh audio analyzer set of cfg in chunks of chunkMs, as the live
// stream arrives, and returns speech and phrases; with questions shown (ms offsets of questions
// 1, 2, …) also the answer segments the rules would store.
func Audio(ctx context.Context, cfg analyzers.AudioConfig, file string, samples []float32, rate, chunkMs int, questionsMs []int64) (AudioResult, error) {
	set, err := analyzers.NewAudioSet(cfg)
	if err != nil {
		return AudioResult{}, err
	}
	defer set.Close()
	res, err := set.AnalyzeSamples(ctx, samples, rate, chunkMs)
	if err != nil {
		return AudioResult{}, err
	}
	out := AudioResult{File: file, DurationMs: res.DurationMs, Speech: res.Speech, Phrases: []AudioPhrase{}}
	if out.Speech == nil {
		out.Speech = [][2]int64{}
	}
	var phrases []rules.Phrase
	for _, p := range res.Phrases {
		out.Phrases = append(out.Phrases, AudioPhrase{p.StartMs, p.EndMs, float32(math.Round(float64(p.Score)*1000) / 1000)})
		phrases = append(phrases, rules.Phrase{StartMs: p.StartMs, EndMs: p.EndMs, Score: p.Score})
	}
	out.Voices, out.SecondVoice = voices(res.VoiceWindows)
	if len(questionsMs) > 0 {
		shown := make([]rules.QuestionShown, len(questionsMs))
		for i, ms := range questionsMs {
			shown[i] = rules.QuestionShown{Question: i + 1, AtMs: ms}
		}
		in := rules.AnswerInput{Questions: len(shown), Shown: shown, ExamEndMs: res.DurationMs, Phrases: phrases,
			Coverage: []rules.Span{{Start: 0, End: res.DurationMs}}}
		for _, s := range res.Speech {
			in.Speech = append(in.Speech, rules.Span{Start: s[0], End: s[1]})
		}
		out.Answers = []AudioAnswer{}
		for _, a := range rules.SegmentAnswers(in, rules.AnswerConfig{}).Answers {
			out.Answers = append(out.Answers, AudioAnswer{a.Question, a.StartMs, a.EndMs, a.ClosedByPhrase})
		}
	}
	return out, nil
}

// voices labels the speaker windows and merges consecutive windows of one speaker (gaps under
// 1 s), averaging their scores.
func voices(ws []analyzers.VoiceWindow) ([]rules.VoiceTurn, [][2]int64) {
	in := make([]rules.VoiceWindow, len(ws))
	for i, w := range ws {
		in[i] = rules.VoiceWindow{StartMs: w.StartMs, EndMs: w.EndMs, Embedding: w.Embedding}
	}
	turns := rules.TrackVoices(in, rules.VoiceConfig{})
	second := [][2]int64{}
	for _, f := range rules.SecondVoiceFlags(turns, nil, rules.VoiceConfig{}) {
		second = append(second, [2]int64{f.StartMs, f.EndMs})
	}
	out := []rules.VoiceTurn{}
	n := 0 // windows merged into the last turn
	for _, t := range turns {
		if k := len(out) - 1; k >= 0 && out[k].Speaker == t.Speaker && t.StartMs-out[k].EndMs < 1000 {
			out[k].EndMs = max(out[k].EndMs, t.EndMs)
			out[k].Score = (out[k].Score*float64(n) + t.Score) / float64(n+1)
			n++
			continue
		}
		out, n = append(out, t), 1
	}
	for i := range out {
		out[i].Score = math.Round(out[i].Score*1000) / 1000
	}
	return out, second
}
