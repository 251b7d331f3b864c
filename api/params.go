package api

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
)

// Parameters as api/openapi.yaml declares them: a parameter that is sent must be valid, even
// when it is optional, so `to=` or `limit=abc` answer 400 instead of being read as absent.

// maxID is the largest database id (PostgreSQL bigint): ids in paths and queries are 1..maxID.
const maxID = 1<<63 - 1

// maxOffset bounds paging offsets (a queue is never near it).
const maxOffset = 1<<31 - 1

// parseID reads an id of a path or query; what names it in the error ("flag id").
func parseID(v, what string) (uint, error) {
	n, err := strconv.ParseUint(v, 10, 63)
	if err != nil || n == 0 {
		return 0, bad(fiber.StatusBadRequest, what+" must be a whole number from 1 to "+strconv.FormatUint(maxID, 10))
	}
	return uint(n), nil
}

// queryValue returns a query parameter and whether it was sent.
func queryValue(c *fiber.Ctx, name string) (string, bool) {
	args := c.Context().QueryArgs()
	if !args.Has(name) {
		return "", false
	}
	return string(args.Peek(name)), true
}

// queryInt reads an optional integer parameter within [lo, hi]; def when absent.
func queryInt(c *fiber.Ctx, name string, def, lo, hi int) (int, error) {
	v, ok := queryValue(c, name)
	if !ok {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, bad(fiber.StatusBadRequest, name+" must be a whole number from "+strconv.Itoa(lo)+" to "+strconv.Itoa(hi))
	}
	return n, nil
}

// queryID reads an optional id parameter (before=ID paging); 0 when absent.
func queryID(c *fiber.Ctx, name string) (uint, error) {
	v, ok := queryValue(c, name)
	if !ok {
		return 0, nil
	}
	return parseID(v, name)
}

// queryBool reads an optional boolean parameter: true or false.
func queryBool(c *fiber.Ctx, name string) (bool, error) {
	v, ok := queryValue(c, name)
	switch {
	case !ok || v == "false":
		return false, nil
	case v == "true":
		return true, nil
	}
	return false, bad(fiber.StatusBadRequest, name+" must be true or false")
}

// queryDay reads an optional date (YYYY-MM-DD, local time); zero when absent.
func queryDay(c *fiber.Ctx, name string) (time.Time, error) {
	v, ok := queryValue(c, name)
	if !ok {
		return time.Time{}, nil
	}
	t, err := time.ParseInLocation(time.DateOnly, v, time.Local)
	if err != nil {
		return t, bad(fiber.StatusBadRequest, name+" must be a date like 2026-06-01")
	}
	return t, nil
}

// queryTime reads an optional RFC 3339 time (as JSON Schema's date-time: 't' and 'z' may be
// lower case); def when absent.
func queryTime(c *fiber.Ctx, name string, def time.Time) (time.Time, error) {
	v, ok := queryValue(c, name)
	if !ok {
		return def, nil
	}
	t, err := time.Parse(time.RFC3339, strings.ToUpper(v))
	if err != nil {
		return t, bad(fiber.StatusBadRequest, name+" must be an RFC 3339 time like 2026-06-01T09:00:00Z")
	}
	return t, nil
}

// maxParams refuses path and query parameters longer (in characters) than the database column
// they are looked up in: PostgreSQL answers a longer value for a varchar(n) column with an error
// (SQLSTATE 22001), not with "no match". api/openapi.yaml documents each limit.
func maxParams(limits map[string]int) fiber.Handler {
	return func(c *fiber.Ctx) error {
		for name, n := range limits {
			v := c.Params(name)
			if v == "" {
				v, _ = queryValue(c, name)
			}
			if l := utf8.RuneCountInString(v); l > n {
				return bad(fiber.StatusBadRequest, fmt.Sprintf("%s: is %d characters long; at most %d allowed", name, l, n))
			}
		}
		return c.Next()
	}
}

// Limits of the filters that are compared with database columns (store/).
var (
	queueParams = map[string]int{"exam_id": 128, "flag_type": 48}
	userID      = map[string]int{"id": 32}
	keyID       = map[string]int{"id": 32}
	exportID    = map[string]int{"eid": 40}
	recordingID = map[string]int{"rid": 32}
	modelParams = map[string]int{"name": 64, "version": 32}
)

// blank reports whether a required text field is empty or only spaces, tabs and line breaks
// (api/openapi.yaml: pattern '[^ \t\r\n]').
func blank(s string) bool { return strings.Trim(s, " \t\r\n") == "" }
