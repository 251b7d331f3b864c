// Package testdb opens the databases tests run against: a fresh SQLite file always, and the real
// PostgreSQL named by PROCTOR_TEST_POSTGRES_DSN when set (scripts/test.sh starts one).
package testdb

import (
	"context"
	"database/sql"
	"os"
	"regexp"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver for CREATE DATABASE

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
		pg, err := store.Open(ctx, store.Config{DSN: dsn, Keys: store.InsecureTestKeys()})
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

// FreshPostgresDSN creates an empty database on the test PostgreSQL and returns its DSN; it is
// dropped when the test ends. For tests that change service-wide state (the model registry)
// which other tests sharing the database must not see.
func FreshPostgresDSN(t testing.TB) string {
	t.Helper()
	base := PostgresDSN()
	if base == "" {
		t.Fatal("FreshPostgresDSN without PROCTOR_TEST_POSTGRES_DSN")
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	name := "t_" + store.NewID()
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		if db, err := sql.Open("pgx", base); err == nil {
			db.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
			db.Close()
		}
	})
	re := regexp.MustCompile(`dbname=\S+`)
	if re.MatchString(base) {
		return re.ReplaceAllString(base, "dbname="+name)
	}
	return base + " dbname=" + name
}
