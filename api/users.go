package api

import (
	"encoding/json"
	"errors"
	"strings"

	"github.com/gofiber/fiber/v2"

	"proctor/store"
)

// listUsers returns the admin's organisation's users.
func (s *Server) listUsers(c *fiber.Ctx) error {
	users, err := s.store.ListUsers(c.UserContext(), principal(c).OrgID)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"users": users, "roles": []string{store.RoleReviewer, store.RoleData, store.RoleAdmin}})
}

type userIn struct {
	Email    string `json:"email"`
	Role     string `json:"role"`
	Password string `json:"password"`
}

// createUser adds a user to the admin's organisation. Without a password one is generated and
// returned once.
func (s *Server) createUser(c *fiber.Ctx) error {
	var in userIn
	if err := json.Unmarshal(c.Body(), &in); err != nil {
		return bad(fiber.StatusBadRequest, "body must be JSON {\"email\": \"...\", \"role\": \"reviewer\"|\"data\"|\"admin\", \"password\": optional}")
	}
	if err := refuseNull(c.Body(), &in); err != nil {
		return err
	}
	generated := in.Password == ""
	if generated {
		in.Password = store.NewPassword()
	}
	if err := checkFields(field{"email", in.Email, 254}, field{"role", in.Role, 32}, field{"password", in.Password, 1024}); err != nil {
		return err
	}
	p := principal(c)
	u, err := s.store.CreateUser(c.UserContext(), p.OrgID, in.Email, in.Role, in.Password, false)
	if errors.Is(err, store.ErrInvalid) {
		return bad(fiber.StatusBadRequest, err.Error())
	}
	if errors.Is(err, store.ErrConflict) {
		return bad(fiber.StatusConflict, strings.TrimPrefix(err.Error(), store.ErrConflict.Error()+": "))
	}
	if err != nil {
		return err // a database error: logged, never echoed
	}
	if err := s.audit(c, "user.create", "user:"+u.ID, fiber.Map{"email": u.Email, "role": u.Role}); err != nil {
		return err
	}
	out := fiber.Map{"user": u}
	if generated {
		out["password"] = in.Password
	}
	return c.Status(fiber.StatusCreated).JSON(out)
}

// updateUser disables or re-enables a user: {"disabled": true|false}.
func (s *Server) updateUser(c *fiber.Ctx) error {
	var in struct {
		Disabled *bool `json:"disabled"`
	}
	if err := json.Unmarshal(c.Body(), &in); err != nil || in.Disabled == nil {
		return bad(fiber.StatusBadRequest, "body must be JSON {\"disabled\": true|false}")
	}
	if err := refuseNull(c.Body(), &in); err != nil {
		return err
	}
	p := principal(c)
	if p.User != nil && p.User.ID == c.Params("id") && *in.Disabled {
		return bad(fiber.StatusBadRequest, "you cannot disable yourself")
	}
	u, err := s.store.SetUserDisabled(c.UserContext(), p.OrgID, c.Params("id"), *in.Disabled)
	if errors.Is(err, store.ErrNotFound) {
		return bad(fiber.StatusNotFound, "no user "+c.Params("id"))
	}
	if err != nil {
		return err
	}
	action := map[bool]string{true: "user.disable", false: "user.enable"}[*in.Disabled]
	if err := s.audit(c, action, "user:"+u.ID, fiber.Map{"email": u.Email}); err != nil {
		return err
	}
	return c.JSON(fiber.Map{"user": u})
}

// listKeys returns the organisation's API keys (never their secrets).
func (s *Server) listKeys(c *fiber.Ctx) error {
	keys, err := s.store.ListAPIKeys(c.UserContext(), principal(c).OrgID)
	if err != nil {
		return err
	}
	out := make([]fiber.Map, len(keys))
	for i, k := range keys {
		out[i] = fiber.Map{"id": k.ID, "name": k.Name, "scopes": k.Scopes, "created_at": k.CreatedAt, "revoked_at": k.RevokedAt}
	}
	return c.JSON(fiber.Map{"keys": out})
}

// revokeKey revokes one of the organisation's API keys.
func (s *Server) revokeKey(c *fiber.Ctx) error {
	p := principal(c)
	if p.Key != nil && p.Key.ID == c.Params("id") {
		return bad(fiber.StatusBadRequest, "a key cannot revoke itself: use another admin key or the page")
	}
	err := s.store.RevokeAPIKey(c.UserContext(), p.OrgID, c.Params("id"))
	if errors.Is(err, store.ErrNotFound) {
		return bad(fiber.StatusNotFound, "no key "+c.Params("id"))
	}
	if err != nil {
		return err
	}
	if err := s.audit(c, "key.revoke", "key:"+c.Params("id"), nil); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}
