package api

import (
	"github.com/gofiber/fiber/v2"

	"proctor/store"
)

// answersOut is GET /v1/sessions/{id}/answers.
type answersOut struct {
	SessionID string `json:"session_id"`
	Questions int    `json:"questions"`
	// Answers in question order: start, end, whether "该题回答完毕" closed it, speech inside it.
	Answers []store.AnswerSegment `json:"answers"`
	// Phrases are every spotted closing phrase with its score, including ones that closed no
	// answer (a false alarm, or a repeat), so a reviewer can judge them.
	Phrases []store.PhraseDetection `json:"phrases"`
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
	return c.JSON(answersOut{SessionID: sess.ID, Questions: sess.Questions, Answers: answers, Phrases: phrases})
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
