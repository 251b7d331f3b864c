package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"

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
	if rest, ok := strings.CutPrefix(c.Path(), "/v1/sessions/"); ok {
		if id, _, _ := strings.Cut(rest, "/"); id != "" && !validID(id) {
			return bad(fiber.StatusBadRequest, "session id must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
		}
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

// refuseNull answers 400 when body is null or holds a null under one of the JSON fields of v (a
// pointer to a struct; nil: under any field): null is no value of any field the API reads, and
// Go would read it as absent or zero. Leave an optional field out instead. Fields the handler
// ignores may hold anything.
func refuseNull(body []byte, v any) error {
	var known map[string]bool
	if v != nil {
		known = map[string]bool{}
		jsonFields(reflect.TypeOf(v), known)
	}
	if where := jsonNull(body, known); where != "" {
		return bad(fiber.StatusBadRequest, where+": null is not allowed; leave the field out or send a value")
	}
	return nil
}

// jsonFields adds the lower-cased JSON names of t's fields (embedded structs' too) to known:
// encoding/json matches keys to them ignoring case.
func jsonFields(t reflect.Type, known map[string]bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return
	}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case name == "-":
		case f.Anonymous && name == "":
			jsonFields(f.Type, known)
		case name != "":
			known[strings.ToLower(name)] = true
		default:
			known[strings.ToLower(f.Name)] = true
		}
	}
}

// jsonNull names the first null in a valid JSON document ("to", "flag_ids[2]", "body") whose
// top-level field is in known (nil: any), or "".
func jsonNull(doc []byte, known map[string]bool) string {
	if !bytes.Contains(doc, []byte("null")) {
		return ""
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	type level struct {
		name  string
		array bool
		index int
		key   bool // in an object, the next string token is a key
	}
	var stack []level
	path := func() string {
		var b strings.Builder
		for _, l := range stack {
			if l.array {
				fmt.Fprintf(&b, "[%d]", l.index)
			} else if l.name != "" {
				if b.Len() > 0 {
					b.WriteByte('.')
				}
				b.WriteString(l.name)
			}
		}
		if b.Len() == 0 {
			return "body"
		}
		return b.String()
	}
	// value is called after each complete value: it advances the enclosing array's index or
	// makes the enclosing object expect a key.
	value := func() {
		if n := len(stack); n > 0 {
			if stack[n-1].array {
				stack[n-1].index++
			} else {
				stack[n-1].key = true
			}
		}
	}
	for {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		n := len(stack)
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{':
				stack = append(stack, level{key: true})
			case '[':
				stack = append(stack, level{array: true})
			default:
				stack = stack[:n-1]
				value()
			}
			continue
		}
		if n > 0 && !stack[n-1].array && stack[n-1].key {
			stack[n-1].name, stack[n-1].key = tok.(string), false
			continue
		}
		if tok == nil && (n == 0 || known == nil || stack[0].array || known[strings.ToLower(stack[0].name)]) {
			return path()
		}
		value()
	}
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
