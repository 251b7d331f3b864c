package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"regexp"

	"github.com/gofiber/fiber/v2"

	"proctor/store"
)

// Text checks at the edge (store.CheckText): every string a handler may store or query with is
// valid UTF-8 without NUL bytes and within a length limit, or the request gets a 400 naming the
// field. The middleware below covers the path, every query parameter and every string of a JSON
// body for all /v1 routes; handlers add each field's own length limit with the same function.

const (
	// maxQueryValue bounds one query parameter (ids, filters, dates): none is near it.
	maxQueryValue = 1024
	// maxJSONString bounds one string of a JSON body; fields have their own, smaller limits.
	maxJSONString = 16 << 10
)

// checkText is the /v1 middleware.
func (s *Server) checkText(c *fiber.Ctx) error {
	if err := store.CheckText("path", c.Path(), 2048); err != nil {
		return textError(err)
	}
	var err error
	c.Context().QueryArgs().VisitAll(func(k, v []byte) {
		if err == nil {
			if err = store.CheckText("query parameter name", string(k), 64); err == nil {
				err = store.CheckText(string(k), string(v), maxQueryValue)
			}
		}
	})
	if err != nil {
		return textError(err)
	}
	// Any body that is JSON, whatever its Content-Type says (handlers parse bodies without
	// looking at it). json.Valid fails at once on a JPEG, WAV or video chunk.
	if body := c.Body(); len(body) > 0 && looksLikeJSON(body) && json.Valid(body) {
		if err := store.CheckJSONText("", body, maxJSONString); err != nil {
			return textError(err)
		}
	}
	return c.Next()
}

func looksLikeJSON(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) > 0 && (b[0] == '{' || b[0] == '[')
}

// textError turns a store.TextError into a 400 that names the field; other errors pass through.
func textError(err error) error {
	var te *store.TextError
	if errors.As(err, &te) {
		field := te.Field
		if field == "" {
			field = "body"
		}
		return bad(fiber.StatusBadRequest, field+": "+te.Problem)
	}
	return err
}

// checkFields checks several fields with store.CheckText: name, value, limit, name, value, ...
func checkFields(fields ...field) error {
	for _, f := range fields {
		if err := store.CheckText(f.name, f.value, f.max); err != nil {
			return textError(err)
		}
	}
	return nil
}

type field struct {
	name, value string
	max         int
}

// sessionIDPattern is what a session id may look like (documented in api/openapi.yaml): it starts
// with a letter or digit, so "." and ".." (and hidden-file names) are impossible; it is used in
// URLs and in the recordings directory.
var sessionIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
