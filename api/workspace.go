package api

import (
	"github.com/gofiber/fiber/v2"

	"proctor/store"
)

// workspaceRoutes registers the reviewer workspace: sign-in, accounts, verdicts (bulk, undo),
// the live feed, reports and exports, per-exam settings and the web page itself. Every route's
// access rule is here, next to the route; app/authz_test.go checks each one for every role and
// organisation, and fails on a route it does not know.
func (s *Server) workspaceRoutes(app *fiber.App, v1 fiber.Router) {
	anyone := s.auth()
	review, admin := s.auth(store.ScopeReview), s.auth(store.ScopeAdmin)
	data := s.auth(store.ScopeData)
	reviewOrData := s.auth(store.ScopeReview, store.ScopeData)

	v1.Post("/auth/login", s.login) // public, rate limited
	v1.Post("/auth/logout", anyone, s.logout)
	v1.Get("/me", anyone, s.me)

	v1.Get("/exams", reviewOrData, s.listExams)
	v1.Get("/checks", reviewOrData, s.listChecks)
	v1.Get("/review/summary", review, maxParams(queueParams), s.reviewSummary)
	v1.Get("/sessions/:id/photo", review, s.getPhoto)
	v1.Get("/sessions/:id/gallery", review, s.getGallery)
	v1.Get("/sessions/:id/gallery/:gid/photo", review, s.getGalleryPhoto)
	v1.Get("/sessions/:id/report", review, s.getReport)
	v1.Post("/verdicts", review, s.postVerdicts)
	v1.Post("/verdicts/undo", review, s.undoVerdict)
	v1.Get("/live", review, s.liveFeed)

	v1.Get("/exports/verdicts.csv", data, maxParams(map[string]int{"exam_id": 128}), s.exportVerdicts)
	s.dataLoopRoutes(v1)

	v1.Get("/users", admin, s.listUsers)
	v1.Post("/users", admin, s.createUser)
	v1.Put("/users/:id", admin, maxParams(userID), s.updateUser)
	v1.Get("/keys", admin, s.listKeys)
	v1.Delete("/keys/:id", admin, maxParams(keyID), s.revokeKey)
	v1.Get("/admin/deadletter", admin, maxParams(map[string]int{"topic": 255, "session_id": 64}), s.listDeadLetters)
	v1.Get("/exams/:exam/settings", admin, s.getExamSettings)
	v1.Put("/exams/:exam/settings", admin, s.putExamSettings)

	s.live = newLiveHub(s.store, s.cfg.LivePoll, s.log)
	app.Hooks().OnShutdown(func() error { s.live.Close(); return nil })

	// The page: static files embedded in the binary; they hold no data, so no auth.
	app.Get("/", func(c *fiber.Ctx) error { return c.Redirect("/ui/", fiber.StatusFound) })
	app.Get("/ui/*", s.webAsset)
}
