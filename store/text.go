package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Text that reaches the database passes CheckText (or CheckJSONText) first, at the edge: the API
// for what clients send, the workers for what arrives on Kafka without passing the API.
// PostgreSQL refuses invalid UTF-8 and NUL bytes in text columns (SQLSTATE 22021); SQLite stores
// them and hands them back to readers that choke on them. Either way the client must hear what
// was wrong, never a database error.

// TextError says which field holds unacceptable text and why.
type TextError struct {
	Field   string
	Problem string
}

func (e *TextError) Error() string { return e.Field + ": " + e.Problem }

// Is makes a TextError match ErrInvalid.
func (e *TextError) Is(target error) bool { return target == ErrInvalid }

// ErrInvalid matches errors about what the caller asked for (a bad name, scope, email, text):
// their text is meant for the caller. Other errors from the store may come from the database
// and are logged, never shown to a client.
var ErrInvalid = errors.New("invalid input")

type invalidError struct{ msg string }

func (e *invalidError) Error() string        { return e.msg }
func (e *invalidError) Is(target error) bool { return target == ErrInvalid }

// invalidf is an error for the caller that matches ErrInvalid.
func invalidf(format string, args ...any) error {
	return &invalidError{fmt.Sprintf(format, args...)}
}

// IsTextError reports whether err (or an error it wraps) is a TextError.
func IsTextError(err error) bool {
	var te *TextError
	return errors.As(err, &te)
}

// CheckText accepts s if it is valid UTF-8, holds no NUL byte and is at most max characters long
// (max <= 0: no length limit). field names it in the error.
func CheckText(field, s string, max int) error {
	// Limits count characters, as PostgreSQL's varchar(n) and JSON Schema's maxLength do; the
	// byte length bounds the count, so short strings skip counting.
	if max > 0 && len(s) > max {
		if n := utf8.RuneCountInString(s); n > max {
			return &TextError{field, fmt.Sprintf("is %d characters long; at most %d allowed", n, max)}
		}
	}
	if i := strings.IndexByte(s, 0); i >= 0 {
		return &TextError{field, fmt.Sprintf("contains a NUL byte (at byte %d); remove it", i)}
	}
	if !utf8.ValidString(s) {
		return &TextError{field, fmt.Sprintf("is not valid UTF-8 (at byte %d); send UTF-8 text", invalidAt([]byte(s)))}
	}
	return nil
}

// CleanText makes s storable whatever it holds: invalid UTF-8 becomes U+FFFD, NUL bytes are
// dropped, and it is cut to at most max bytes (on a character boundary). For text we write
// ourselves from untrusted input (error messages that quote a payload), never for client data,
// which CheckText refuses instead.
func CleanText(s string, max int) string {
	s = strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
	if max > 0 && len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return s
}

// CheckJSONText checks every string of a JSON document, keys included, with CheckText (each at
// most maxString bytes; <= 0: no limit). The error names the string's path below field, such as
// "data.note" or "[2].data". Invalid JSON is not this function's concern: it reports nil, and
// the caller's parser says what is wrong.
func CheckJSONText(field string, raw []byte, maxString int) error {
	bad := -1 // offset of the first invalid UTF-8 byte, -1 if none
	if !utf8.Valid(raw) {
		bad = invalidAt(raw)
	}
	hasNUL := bytes.Contains(raw, []byte(`\u0000`)) || bytes.IndexByte(raw, 0) >= 0
	if bad < 0 && !hasNUL && (maxString <= 0 || len(raw) <= maxString) {
		return nil // the common case: nothing inside can fail
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	// stack of open containers: for objects, the last key and whether a key comes next; for
	// arrays, the index of the next element.
	type frame struct {
		object    bool
		key       string
		expectKey bool
		index     int
	}
	var stack []frame
	path := func(last string) string {
		var b strings.Builder
		b.WriteString(field)
		for i, f := range stack {
			switch {
			case f.object && i == len(stack)-1 && last != "":
				appendKey(&b, last)
			case f.object:
				appendKey(&b, f.key)
			default:
				b.WriteString("[" + strconv.Itoa(f.index) + "]")
			}
		}
		return b.String()
	}
	for {
		start := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			if bad >= 0 {
				return &TextError{field, fmt.Sprintf("is not valid UTF-8 (at byte %d); send UTF-8 text", bad)}
			}
			return nil // not JSON (or done): nothing more to check here
		}
		end := dec.InputOffset()
		var top *frame
		if len(stack) > 0 {
			top = &stack[len(stack)-1]
		}
		isKey := top != nil && top.object && top.expectKey
		if s, ok := tok.(string); ok {
			name := path("")
			if isKey {
				name = path(s)
			} else if top != nil && !top.object {
				name = path("") // the element's own index
			}
			if b := int64(bad); bad >= 0 && b >= start && b < end {
				return &TextError{name, "is not valid UTF-8; send UTF-8 text"}
			}
			if err := CheckText(name, s, maxString); err != nil {
				return err
			}
		}
		// Advance the container state past this token.
		switch tok {
		case json.Delim('{'), json.Delim('['):
			stack = append(stack, frame{object: tok == json.Delim('{'), expectKey: true})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		default:
			if isKey {
				top.key, top.expectKey = tok.(string), false
				continue
			}
		}
		// A value ended (scalar or closed container): the enclosing container moves on.
		if len(stack) > 0 {
			t := &stack[len(stack)-1]
			if t.object {
				t.expectKey = true
			} else {
				t.index++
			}
		}
	}
}

func appendKey(b *strings.Builder, key string) {
	if b.Len() > 0 {
		b.WriteByte('.')
	}
	b.WriteString(strings.ToValidUTF8(strings.ReplaceAll(key, "\x00", ""), "?"))
}

// invalidAt is the offset of the first byte that is not part of valid UTF-8, or -1.
func invalidAt(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return -1
}
