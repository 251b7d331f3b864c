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
