package api

import (
	"github.com/gofiber/fiber/v2"

	"proctor/store"
)

// answersOut is GET /v1/sessions/{id}/answers.
type answersOut struct {
	SessionID string `json:"session_id"`
	Questions int    `json:"questions"`
	// Answers in question order: start, end, whether "该题回答完毕" closed it, speech inside it,
	// and the URL of its stored audio.
	Answers []answerOut `json:"answers"`
	// Phrases are every spotted closing phrase with its score, including ones that closed no
	// answer (a false alarm, or a repeat), so a reviewer can judge them; each with its audio.
	Phrases []phraseOut `json:"phrases"`
}

type answerOut struct {
	store.AnswerSegment
	AudioURL string `json:"audio_url,omitempty"`
}

type phraseOut struct {
	store.PhraseDetection
	AudioURL string `json:"audio_url"`
}

// getAnswers returns a session's answer segments (review scope, organisation-scoped like every
// reviewer route: another organisation's session answers 404).
func (s *Server) getAnswers(c *fiber.Ctx) error {
	sess, err := s.sessionOf(c)
	if err != nil {
		return err
	}
	answers, err := s.store.SessionAnswers(c.UserContext(), sess.ID)
	if err != nil {
		return err
	}
	phrases, err := s.store.SessionPhrases(c.UserContext(), sess.ID)
	if err != nil {
		return err
	}
	out := answersOut{SessionID: sess.ID, Questions: sess.Questions, Answers: make([]answerOut, len(answers)),
		Phrases: make([]phraseOut, len(phrases))}
	for i, a := range answers {
		out.Answers[i] = answerOut{AnswerSegment: a}
		if a.EndMs > a.StartMs {
			// The answer to just after its end: the closing phrase is the end of it.
			out.Answers[i].AudioURL = audioURL(sess, a.StartMs, a.EndMs+500)
		}
	}
	for i, p := range phrases {
		out.Phrases[i] = phraseOut{PhraseDetection: p, AudioURL: audioURL(sess, p.StartMs-1000, p.EndMs+1000)}
	}
	return c.JSON(out)
}

// answersTimeline adds the answers to GET /v1/sessions/{id}/timeline.
func (s *Server) answersTimeline(c *fiber.Ctx, sess *store.Session, body fiber.Map) error {
	answers, err := s.store.SessionAnswers(c.UserContext(), sess.ID)
	if err != nil {
		return err
	}
	body["answers"] = answers
	return nil
}
