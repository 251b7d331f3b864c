package api

import "testing"

// null is refused where a handler reads the field (Go would take it as absent or zero), anywhere
// below it, and as the whole body; fields the handler ignores may hold anything.
func TestRefuseNull(t *testing.T) {
	type in struct {
		Note    string `json:"note"`
		FlagIDs []uint `json:"flag_ids"`
		Skipped string `json:"-"`
		Plain   int
	}
	for _, c := range []struct{ doc, want string }{
		{`{"note":"x","flag_ids":[1,2]}`, ""},
		{`{"note":"null"}`, ""},
		{`{"note":null}`, "note: null is not allowed; leave the field out or send a value"},
		{`{"NOTE":null}`, "NOTE: null is not allowed; leave the field out or send a value"},
		{`{"flag_ids":[1,null]}`, "flag_ids[1]: null is not allowed; leave the field out or send a value"},
		{`{"plain":null}`, "plain: null is not allowed; leave the field out or send a value"},
		{`{"other":null,"more":{"x":[null]}}`, ""},
		{`{"-":null}`, ""},
		{`null`, "body: null is not allowed; leave the field out or send a value"},
	} {
		got := ""
		if err := refuseNull([]byte(c.doc), &in{}); err != nil {
			got = err.Error()
		}
		if got != c.want {
			t.Errorf("%s: %q, want %q", c.doc, got, c.want)
		}
	}
	if got := jsonNull([]byte(`{"a":{"b":[{"c":1},{"d":null}]}}`), nil); got != "a.b[1].d" {
		t.Errorf("jsonNull path %q, want a.b[1].d", got)
	}
}
