package app

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"log/slog"
	"net/http"
	"os"
	"testing"
	"time"

	"proctor/analyzers"
	"proctor/internal/platform"
	"proctor/internal/testaudio"
	"proctor/models"
	"proctor/rules"
	"proctor/store"
)

type answersBody struct {
	Answers []store.AnswerSegment   `json:"answers"`
	Phrases []store.PhraseDetection `json:"phrases"`
}

// TestAudioAnswersEndToEnd posts a session's audio in 1 s chunks over HTTP, with a chunk lost
// (a gap), a chunk sent late (after the ones that follow it, as after a reconnect) and one sent
// twice, plus the exam-flow events; answers and audio flags come back through the reviewer API.
//
// Timeline (s): answer 0.5–4.2, "该题回答完毕" 4.8–6.2, question 2 shown at 8, answer 8.5–12.2
// with no phrase, exam_ended at 18, someone talking 18.6–22.8.
func TestAudioAnswersEndToEnd(t *testing.T) {
	if _, err := analyzers.NewAudioSet(analyzers.AudioConfig{}); models.NotInstalled(err) {
		t.Skipf("audio models not installed (%v): run scripts/setup.sh", err)
	}
	samples, placed, err := testaudio.Build(24000,
		testaudio.Part{Clip: testaudio.Answer, AtMs: 500}, testaudio.Part{Clip: testaudio.Phrase, AtMs: 4800},
		testaudio.Part{Clip: testaudio.Answer, AtMs: 8500}, testaudio.Part{Clip: testaudio.Chatter, AtMs: 18600})
	if err != nil {
		t.Fatal(err)
	}
	phraseEnd := placed[1].EndMs
	var photo bytes.Buffer
	img := image.NewGray(image.Rect(0, 0, 64, 64))
	for i := range img.Pix {
		img.Pix[i] = uint8(i)
	}
	img.Set(0, 0, color.Gray{})
	if err := jpeg.Encode(&photo, img, nil); err != nil {
		t.Fatal(err)
	}
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			a := startApp(t, b, func(c *Config) {
				c.Audio.Answers.LongSilence = 4 * time.Second
				if os.Getenv("PROCTOR_TEST_AUDIO_LOG") != "" { // the workers' log, for debugging
					c.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
				}
			})
			ingestKey, reviewKey := keys(t, a, "org-audio")
			plat, rev := platform.New(a.URL, ingestKey), platform.New(a.URL, reviewKey)
			t0 := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
			ms := func(off int64) int64 { return t0.UnixMilli() + off }

			// Session 1: question_shown events; 16 kHz raw PCM chunks.
			s1, err := plat.CreateSession(ctx, platform.NewSession{ExamID: "oral", CandidateID: "c1",
				ScheduledStart: t0, DurationSec: 1800, Questions: 2, Photo: photo.Bytes()})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := plat.PostEvents(ctx, s1.ID,
				platform.Event{Seq: 1, Type: "answering_started", CapturedAt: ms(0)},
				platform.Event{Seq: 2, Type: "question_shown", CapturedAt: ms(0), Data: map[string]int{"question": 1}},
				platform.Event{Seq: 3, Type: "question_shown", CapturedAt: ms(8000), Data: map[string]int{"question": 2}},
				platform.Event{Seq: 4, Type: "exam_ended", CapturedAt: ms(18000)}); err != nil {
				t.Fatal(err)
			}
			pcm := analyzers.EncodePCM16(samples)
			chunk := func(seq int) []byte { return pcm[seq*32000 : min(len(pcm), (seq+1)*32000)] }
			order := []int{0, 1}
			for seq := 3; seq < 24; seq++ {
				if seq == 10 {
					continue // lost for good: a gap
				}
				order = append(order, seq)
				if seq == 5 {
					order = append(order, 5) // the platform retries a chunk whose answer it lost
				}
			}
			order = append(order, 2) // late, after a reconnect
			for _, seq := range order {
				code, err := plat.PostAudio(ctx, s1.ID, int64(seq), time.UnixMilli(ms(int64(seq)*1000)), "application/octet-stream", chunk(seq))
				if err != nil || code != http.StatusAccepted {
					t.Fatalf("chunk %d: %d %v", seq, code, err)
				}
			}

			// Session 2: no question_shown (answers from the phrases alone), 8 kHz WAV chunks.
			s2, err := plat.CreateSession(ctx, platform.NewSession{ExamID: "oral", CandidateID: "c2",
				ScheduledStart: t0, DurationSec: 1800, Questions: 2, Photo: photo.Bytes()})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := plat.PostEvents(ctx, s2.ID,
				platform.Event{Seq: 1, Type: "answering_started", CapturedAt: ms(0)},
				platform.Event{Seq: 2, Type: "exam_ended", CapturedAt: ms(18000)}); err != nil {
				t.Fatal(err)
			}
			low := analyzers.Resample(samples, analyzers.AudioRate, 8000)
			for seq := 0; seq*8000 < len(low); seq++ {
				wav := testaudio.WAV(low[seq*8000:min(len(low), (seq+1)*8000)], 8000)
				if code, err := plat.PostAudio(ctx, s2.ID, int64(seq), time.UnixMilli(ms(int64(seq)*1000)), "audio/wav", wav); err != nil || code != http.StatusAccepted {
					t.Fatalf("session 2 chunk %d: %d %v", seq, code, err)
				}
			}

			answers := func(id string) answersBody {
				var out answersBody
				if _, err := rev.Do(ctx, http.MethodGet, "/v1/sessions/"+id+"/answers", "", nil, &out); err != nil {
					t.Fatalf("answers of %s: %v", id, err)
				}
				return out
			}
			settled := func(id string, chunks int64) bool {
				var n int64
				a.Store.DB.Model(&store.AudioChunk{}).Where("session_id = ?", id).Count(&n)
				got := answers(id).Answers
				return n == chunks && len(got) == 2 && got[1].Status == store.AnswerNotClosed
			}
			waitFor(t, func() bool { return settled(s1.ID, 23) && settled(s2.ID, 24) }, "all chunks analysed and answers settled")

			for _, tc := range []struct {
				id     string
				source string
			}{{s1.ID, "question_shown"}, {s2.ID, "phrase"}} {
				got := answers(tc.id)
				t.Logf("%s answers %+v phrases %+v", tc.source, got.Answers, got.Phrases)
				a1, a2 := got.Answers[0], got.Answers[1]
				if !a1.ClosedByPhrase || a1.Status != store.AnswerClosed || a1.StartMs != ms(0) ||
					a1.EndMs < ms(phraseEnd-500) || a1.EndMs > ms(phraseEnd+1000) || a1.Source != tc.source {
					t.Errorf("%s: answer 1 %+v, want closed by the phrase ending at %d", tc.source, a1, ms(phraseEnd))
				}
				wantStart := ms(8000)
				if tc.source == "phrase" {
					wantStart = a1.EndMs // the next answer starts where the phrase ended
				}
				if a2.ClosedByPhrase || a2.StartMs != wantStart || a2.EndMs != ms(18000) || a2.SpeechMs < 2500 {
					t.Errorf("%s: answer 2 %+v, want not closed from %d to %d with ~3.7 s of speech", tc.source, a2, wantStart, ms(18000))
				}
				if len(got.Phrases) != 1 {
					t.Errorf("%s: phrases %+v, want the one", tc.source, got.Phrases)
				}
				detail, err := rev.Session(ctx, tc.id)
				if err != nil {
					t.Fatal(err)
				}
				flags := map[string][]store.Flag{}
				for _, f := range detail.Flags {
					flags[f.Type] = append(flags[f.Type], f)
				}
				for _, typ := range []string{rules.AnswerNotClosed, rules.SpeechOutsideAnswer, rules.LongSilence} { // one voice: no SECOND_VOICE asked
					if len(flags[typ]) != 1 {
						t.Errorf("%s: %d %s flags, want 1 (%+v)", tc.source, len(flags[typ]), typ, flags[typ])
					}
				}
				if f := flags[rules.AnswerNotClosed]; len(f) == 1 && (f[0].StartMs != wantStart || f[0].EndMs != ms(18000)) {
					t.Errorf("%s: ANSWER_NOT_CLOSED %d–%d, want %d–%d", tc.source, f[0].StartMs, f[0].EndMs, wantStart, ms(18000))
				}
				if f := flags[rules.SpeechOutsideAnswer]; len(f) == 1 && (f[0].StartMs < ms(18000) || f[0].EndMs < ms(22000)) {
					t.Errorf("%s: SPEECH_OUTSIDE_ANSWER %d–%d, want after the end (18 s) to ~22.8 s", tc.source, f[0].StartMs-ms(0), f[0].EndMs-ms(0))
				}
				if f := flags[rules.LongSilence]; len(f) == 1 && (f[0].StartMs > ms(13000) || f[0].EndMs != ms(18000)) {
					t.Errorf("%s: LONG_SILENCE %d–%d, want ~12.3–18 s", tc.source, f[0].StartMs-ms(0), f[0].EndMs-ms(0))
				}
				if detail.Session.RiskScore <= 0 {
					t.Errorf("%s: risk %.1f with open audio flags", tc.source, detail.Session.RiskScore)
				}
			}
			// Three stretches in session 1: 0–2 (+ the late chunk 2 joining it), 3–9, 11–23.
			var stretches []store.AudioStretch
			a.Store.DB.Where("session_id = ?", s1.ID).Order("start_seq").Find(&stretches)
			if len(stretches) != 3 || stretches[0].Chunks != 3 || stretches[1].StartSeq != 3 || stretches[2].StartSeq != 11 {
				t.Errorf("stretches %+v, want 0–2, 3–9, 11–23", summary(stretches))
			}

			// Organisation isolation.
			_, otherReview := keys(t, a, "org-audio-other")
			var out answersBody
			if _, err := platform.New(a.URL, otherReview).Do(ctx, http.MethodGet, "/v1/sessions/"+s1.ID+"/answers", "", nil, &out); !isStatus(err, 404) {
				t.Errorf("other organisation reading answers: %v, want 404", err)
			}
		})
	}
}

func summary(st []store.AudioStretch) []string {
	var out []string
	for _, s := range st {
		out = append(out, fmt.Sprintf("%d..%d (%d chunks)", s.StartSeq, s.NextSeq-1, s.Chunks))
	}
	return out
}
