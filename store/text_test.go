package store

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/mattn/go-sqlite3"
)

func TestCheckText(t *testing.T) {
	for _, tc := range []struct {
		in, want string // want: part of the error, "" for none
	}{
		{"plain", ""},
		{"中文 ok", ""},
		{"a\x00b", "note: contains a NUL byte (at byte 1)"},
		{"a\xffb", "note: is not valid UTF-8 (at byte 1)"},
		{strings.Repeat("x", 11), "note: is 11 characters long; at most 10 allowed"},
	} {
		err := CheckText("note", tc.in, 10)
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("CheckText(%q) = %v, want %q", tc.in, err, tc.want)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("CheckText(%q): %v does not match ErrInvalid", tc.in, err)
		}
	}
}

func TestCheckJSONText(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{`{"a": "fine", "b": [1, "two", {"c": null}]}`, ""},
		{`{"note": "bad \u0000 nul"}`, "data.note: contains a NUL byte"},
		{"{\"x\": 1, \"note\": \"bad \xff byte\"}", "data.note: is not valid UTF-8"},
		{"[{\"seq\": 1}, {\"data\": {\"k\": [\"ok\", \"\xc3\"]}}]", "data[1].data.k[1]: is not valid UTF-8"},
		{"{\"ke\xffy\": 1}", "is not valid UTF-8"},
		{`{"long": "` + strings.Repeat("y", 40) + `"}`, "data.long: is 40 characters long"},
		{`not json`, ""}, // the parser's business
	} {
		err := CheckJSONText("data", []byte(tc.in), 32)
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("CheckJSONText(%q) = %v, want %q", tc.in, err, tc.want)
		}
	}
}

func TestCleanText(t *testing.T) {
	if got := CleanText("a\x00b\xffc", 0); got != "ab\uFFFDc" {
		t.Errorf("CleanText = %q", got)
	}
	if got := CleanText("héllo", 2); got != "h" {
		t.Errorf("CleanText cut = %q, want a whole character", got)
	}
}

// TestUnavailable: only failures of the database as a whole are Unavailable; a row the database
// refuses is not.
func TestUnavailable(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"connection refused", fmt.Errorf("store frame: %w", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}), true},
		{"reset", fmt.Errorf("x: %w", syscall.ECONNRESET), true},
		{"pg admin shutdown", &pgconn.PgError{Code: "57P01"}, true},
		{"pg cannot connect now", &pgconn.PgError{Code: "57P03"}, true},
		{"pg connection failure", &pgconn.PgError{Code: "08006"}, true},
		{"pg disk full", &pgconn.PgError{Code: "53100"}, true},
		{"pg deadlock", &pgconn.PgError{Code: "40P01"}, true},
		{"pg invalid UTF-8", fmt.Errorf("store event: %w", &pgconn.PgError{Code: "22021"}), false},
		{"pg unique", &pgconn.PgError{Code: "23505"}, false},
		{"pg value too long", &pgconn.PgError{Code: "22001"}, false},
		{"sqlite busy", sqlite3.Error{Code: sqlite3.ErrBusy}, true},
		{"sqlite I/O", sqlite3.Error{Code: sqlite3.ErrIoErr}, true},
		{"sqlite constraint", sqlite3.Error{Code: sqlite3.ErrConstraint}, false},
		{"sqlite too big", sqlite3.Error{Code: sqlite3.ErrTooBig}, false},
		{"closed", errors.New("sql: database is closed"), true},
		{"plain", errors.New("no such column"), false},
		{"nil", nil, false},
	} {
		if got := Unavailable(tc.err); got != tc.want {
			t.Errorf("%s: Unavailable(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}

// TestUnavailableRealDatabases: what the drivers really return. A value the database refuses is
// the row's fault; a closed or unreachable database is not.
func TestUnavailableRealDatabases(t *testing.T) {
	ctx := t.Context()
	lite, err := Open(ctx, Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	lite.Close()
	if err := lite.Ping(ctx); !Unavailable(err) {
		t.Errorf("closed SQLite: %v is not Unavailable", err)
	}
	if _, err := Open(ctx, Config{DSN: "host=127.0.0.1 port=1 user=x dbname=x sslmode=disable connect_timeout=2", Keys: InsecureTestKeys()}); !Unavailable(err) {
		t.Errorf("PostgreSQL refusing connections: %v is not Unavailable", err)
	}
	dsn := os.Getenv("PROCTOR_TEST_POSTGRES_DSN")
	if dsn == "" {
		t.Log("PROCTOR_TEST_POSTGRES_DSN not set: PostgreSQL row errors not checked")
		return
	}
	pg, err := Open(ctx, Config{DSN: dsn, Keys: InsecureTestKeys()})
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	id := "unavail-" + NewID()[:8]
	for name, payload := range map[string]string{"invalid UTF-8": "{\"a\":\"\xff\"}", "NUL": "\x00"} {
		err := pg.DB.WithContext(ctx).Create(&Event{SessionID: id, Seq: 1, Type: "t", Payload: payload}).Error
		if err == nil {
			t.Errorf("%s: PostgreSQL stored it", name)
		} else if Unavailable(err) {
			t.Errorf("%s: %v classified Unavailable: one bad row would pause every worker", name, err)
		}
	}
}
