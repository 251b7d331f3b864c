// Package testdb opens the databases tests run against: a fresh SQLite file always, and the real
// PostgreSQL named by PROCTOR_TEST_POSTGRES_DSN when set (scripts/test.sh starts one).
package testdb

import (
	"context"
	"os"
	"testing"

	"proctor/store"
)

// Backend is one database a test runs against.
type Backend struct {
	Name  string
	Store *store.Store
}

// Open returns a fresh SQLite store and, when configured, the shared PostgreSQL one; tests there
// use random session ids so parallel packages do not see each other's rows.
func Open(t testing.TB) []Backend {
	t.Helper()
	ctx := context.Background()
	lite, err := store.Open(ctx, store.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { lite.Close() })
	out := []Backend{{"sqlite", lite}}
	if dsn := PostgresDSN(); dsn != "" {
		pg, err := store.Open(ctx, store.Config{DSN: dsn})
		if err != nil {
			t.Fatalf("open postgres: %v", err)
		}
		t.Cleanup(func() { pg.Close() })
		out = append(out, Backend{"postgres", pg})
	} else {
		t.Log("PROCTOR_TEST_POSTGRES_DSN not set: PostgreSQL part skipped (scripts/test.sh sets it)")
	}
	return out
}

// PostgresDSN is the test PostgreSQL, or "".
func PostgresDSN() string { return os.Getenv("PROCTOR_TEST_POSTGRES_DSN") }
