package rules

import (
	"testing"
	"time"

	"proctor/store"
)

func TestSegmentAnswers(t *testing.T) {
	cover := []Span{{0, 100_000}}
	type want struct {
		answers []Answer // Question, StartMs, EndMs, ClosedByPhrase, Status compared
		flags   map[string]int
	}
	cases := []struct {
		name string
		in   AnswerInput
		want want
	}{
		{"question_shown: closed, then not closed at the next question",
			AnswerInput{Questions: 3, AnsweringStartMs: 1000, ExamEndMs: 90_000, Coverage: cover,
				Shown:   []QuestionShown{{1, 1000}, {2, 30_000}, {3, 60_000}},
				Speech:  []Span{{2000, 25_000}, {31_000, 55_000}, {61_000, 85_000}},
				Phrases: []Phrase{{23_500, 25_000, 0.97}, {84_000, 85_500, 0.95}}},
			want{[]Answer{{Question: 1, StartMs: 1000, EndMs: 25_000, ClosedByPhrase: true, Status: store.AnswerClosed},
				{Question: 2, StartMs: 30_000, EndMs: 60_000, Status: store.AnswerNotClosed},
				{Question: 3, StartMs: 60_000, EndMs: 85_500, ClosedByPhrase: true, Status: store.AnswerClosed}},
				map[string]int{AnswerNotClosed: 1}}},
		{"phrase a moment after the next question still closes the previous answer",
			AnswerInput{Questions: 2, Coverage: cover, Shown: []QuestionShown{{1, 0}, {2, 20_000}},
				Speech: []Span{{1000, 21_000}}, Phrases: []Phrase{{19_800, 21_000, 0.9}}},
			want{[]Answer{{Question: 1, StartMs: 0, EndMs: 21_000, ClosedByPhrase: true, Status: store.AnswerClosed},
				// 79 s with no speech in the open answer 2.
				{Question: 2, StartMs: 20_000, EndMs: 100_000, Status: store.AnswerAnswering}}, map[string]int{LongSilence: 1}}},
		{"boundary passed but its audio not analysed yet: no flag yet",
			AnswerInput{Questions: 2, Coverage: []Span{{0, 15_000}}, Shown: []QuestionShown{{1, 0}, {2, 20_000}},
				Speech: []Span{{1000, 14_000}}},
			want{[]Answer{{Question: 1, StartMs: 0, EndMs: 20_000, Status: store.AnswerAwaitingAudio},
				{Question: 2, StartMs: 20_000, EndMs: 20_000, Status: store.AnswerAnswering}}, map[string]int{}}},
		{"no question_shown: phrases delimit answers, fewer phrases than questions at the end",
			AnswerInput{Questions: 3, AnsweringStartMs: 1000, ExamEndMs: 80_000, Coverage: cover,
				Speech:  []Span{{2000, 20_000}, {22_000, 40_000}, {42_000, 70_000}},
				Phrases: []Phrase{{18_500, 20_000, 0.99}, {38_500, 40_000, 0.93}, {38_900, 40_400, 0.5}}},
			want{[]Answer{{Question: 1, StartMs: 1000, EndMs: 20_000, ClosedByPhrase: true, Status: store.AnswerClosed},
				{Question: 2, StartMs: 20_000, EndMs: 40_000, ClosedByPhrase: true, Status: store.AnswerClosed},
				{Question: 3, StartMs: 40_000, EndMs: 80_000, Status: store.AnswerNotClosed}},
				map[string]int{AnswerNotClosed: 1}}},
		{"no question_shown, exam still running: the next answer is open",
			AnswerInput{Questions: 3, AnsweringStartMs: 1000, Coverage: []Span{{0, 50_000}},
				Speech: []Span{{2000, 20_000}, {22_000, 48_000}}, Phrases: []Phrase{{18_500, 20_000, 0.99}}},
			want{[]Answer{{Question: 1, StartMs: 1000, EndMs: 20_000, ClosedByPhrase: true, Status: store.AnswerClosed},
				{Question: 2, StartMs: 20_000, EndMs: 50_000, Status: store.AnswerAnswering}}, map[string]int{}}},
		{"speech before answering and after the end; a long silence inside an answer",
			AnswerInput{Questions: 1, AnsweringStartMs: 10_000, ExamEndMs: 90_000, Coverage: cover,
				Shown:   []QuestionShown{{1, 10_000}},
				Speech:  []Span{{2000, 6000}, {6500, 8000}, {11_000, 12_000}, {80_000, 89_000}, {92_000, 96_000}},
				Phrases: []Phrase{{87_500, 89_000, 0.9}}},
			want{[]Answer{{Question: 1, StartMs: 10_000, EndMs: 89_000, ClosedByPhrase: true, Status: store.AnswerClosed}},
				map[string]int{SpeechOutsideAnswer: 2, LongSilence: 1}}},
		{"an outage is not silence",
			AnswerInput{Questions: 1, Coverage: []Span{{0, 20_000}, {85_000, 100_000}}, Shown: []QuestionShown{{1, 0}},
				Speech: []Span{{1000, 19_000}, {86_000, 99_000}}},
			want{[]Answer{{Question: 1, StartMs: 0, EndMs: 100_000, Status: store.AnswerAnswering}}, map[string]int{}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := SegmentAnswers(tc.in, AnswerConfig{LongSilence: 60 * time.Second})
			if len(res.Answers) != len(tc.want.answers) {
				t.Fatalf("answers %+v, want %+v", res.Answers, tc.want.answers)
			}
			for i, w := range tc.want.answers {
				g := res.Answers[i]
				if g.Question != w.Question || g.StartMs != w.StartMs || g.EndMs != w.EndMs ||
					g.ClosedByPhrase != w.ClosedByPhrase || g.Status != w.Status {
					t.Errorf("answer %d = %+v, want %+v", i+1, g, w)
				}
			}
			got := map[string]int{}
			for _, f := range res.Flags {
				got[f.Type]++
			}
			for _, typ := range AudioFlagTypes {
				if got[typ] != tc.want.flags[typ] {
					t.Errorf("%s flags: %d, want %d (%+v)", typ, got[typ], tc.want.flags[typ], res.Flags)
				}
			}
		})
	}
}

// Recomputing from any arrival order gives the same answers: SegmentAnswers only sees sets.
func TestSegmentAnswersOrderFree(t *testing.T) {
	in := AnswerInput{Questions: 2, Coverage: []Span{{5000, 10_000}, {0, 5000}}, Shown: []QuestionShown{{2, 6000}, {1, 0}, {1, 500}},
		Speech: []Span{{6500, 9000}, {500, 4000}}, Phrases: []Phrase{{3000, 4500, 0.9}}}
	res := SegmentAnswers(in, AnswerConfig{})
	if len(res.Answers) != 2 || res.Answers[0].StartMs != 0 || !res.Answers[0].ClosedByPhrase || res.Answers[1].StartMs != 6000 {
		t.Errorf("answers %+v", res.Answers)
	}
	if res.Answers[0].SpeechMs != 3500 {
		t.Errorf("speech in answer 1: %d ms, want 3500", res.Answers[0].SpeechMs)
	}
}
