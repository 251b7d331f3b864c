package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"proctor/internal/testdb"
	"proctor/store"
)

// The audit log cannot be changed, only appended to: the database refuses UPDATE and DELETE.
func TestAuditAppendOnly(t *testing.T) {
	for _, b := range testdb.Open(t) {
		t.Run(b.Name, func(t *testing.T) {
			db := b.Store.DB
			org := "org-" + store.NewID()[:6]
			if err := store.Audit(db, store.AuditEntry{OrgID: org, Actor: "user:a@b.c", Action: "flag.verdict", Target: "flag:1"}); err != nil {
				t.Fatal(err)
			}
			if err := db.Model(&store.AuditEntry{}).Where("org_id = ?", org).Update("actor", "someone else").Error; err == nil ||
				!strings.Contains(err.Error(), "append-only") {
				t.Errorf("UPDATE of the audit log: %v, want refused as append-only", err)
			}
			if err := db.Where("org_id = ?", org).Delete(&store.AuditEntry{}).Error; err == nil || !strings.Contains(err.Error(), "append-only") {
				t.Errorf("DELETE from the audit log: %v, want refused as append-only", err)
			}
			if b.Store.Postgres {
				if err := db.Exec("TRUNCATE audit_entries").Error; err == nil {
					t.Error("TRUNCATE of the audit log succeeded")
				}
			}
			got, err := b.Store.QueryAudit(context.Background(), store.AuditFilter{OrgID: org, Action: "flag."})
			if err != nil || len(got) != 1 || got[0].Actor != "user:a@b.c" {
				t.Errorf("audit after refused changes: %v %v", got, err)
			}
			// Migrating again (another process starting) keeps the triggers and does not fail.
			if err := b.Store.Migrate(context.Background()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestUsersAndWebSessions(t *testing.T) {
	for _, b := range testdb.Open(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			st := b.Store
			org := "org-" + store.NewID()[:6]
			email := "Rev." + org + "@Example.com"
			u, err := st.CreateUser(ctx, org, email, store.RoleReviewer, "long enough password", false)
			if err != nil {
				t.Fatal(err)
			}
			if u.Email != strings.ToLower(email) || !strings.HasPrefix(u.PasswordHash, "$argon2id$v=19$") || strings.Contains(u.PasswordHash, "long enough") {
				t.Errorf("stored user %+v", u)
			}
			if _, err := st.CreateUser(ctx, org, email, store.RoleAdmin, "another long password", false); err == nil {
				t.Error("a second user with the same email was created")
			}
			for _, bad := range []struct{ email, role, pw string }{{"not-an-email", "reviewer", "long enough password"},
				{"x@" + org + ".com", "root", "long enough password"}, {"y@" + org + ".com", "reviewer", "short"}} {
				if _, err := st.CreateUser(ctx, org, bad.email, bad.role, bad.pw, false); err == nil {
					t.Errorf("user %+v accepted", bad)
				}
			}
			if _, err := st.CheckUser(ctx, email, "wrong password!"); err != store.ErrBadCredentials {
				t.Errorf("wrong password: %v", err)
			}
			if _, err := st.CheckUser(ctx, "nobody@"+org+".com", "whatever"); err != store.ErrBadCredentials {
				t.Errorf("unknown email: %v", err)
			}
			got, err := st.CheckUser(ctx, " "+strings.ToUpper(email)+" ", "long enough password")
			if err != nil || got.ID != u.ID {
				t.Fatalf("right password: %v %v", got, err)
			}
			token, ws, err := st.CreateWebSession(ctx, got, "127.0.0.1")
			if err != nil || len(token) != 64 || ws.TokenHash == token || len(ws.CSRFToken) != 64 {
				t.Fatalf("web session %q %+v %v", token, ws, err)
			}
			if _, who, err := st.WebSessionUser(ctx, token); err != nil || who.ID != u.ID {
				t.Errorf("session lookup: %v %v", who, err)
			}
			// Disabling the user ends their sessions and stops sign-in.
			if _, err := st.SetUserDisabled(ctx, org, u.ID, true); err != nil {
				t.Fatal(err)
			}
			if _, _, err := st.WebSessionUser(ctx, token); err != store.ErrNotFound {
				t.Errorf("session of a disabled user: %v", err)
			}
			if _, err := st.CheckUser(ctx, email, "long enough password"); err != store.ErrBadCredentials {
				t.Errorf("sign-in of a disabled user: %v", err)
			}
			if _, err := st.SetUserDisabled(ctx, "other-org", u.ID, false); err != store.ErrNotFound {
				t.Errorf("another organisation enabling the user: %v", err)
			}
			// Replace (the demo re-run) resets role and password and re-enables.
			if _, err := st.CreateUser(ctx, org, email, store.RoleAdmin, "a new long password", true); err != nil {
				t.Fatal(err)
			}
			if got, err := st.CheckUser(ctx, email, "a new long password"); err != nil || got.Role != store.RoleAdmin {
				t.Errorf("after replace: %+v %v", got, err)
			}
		})
	}
}

func TestPasswordHash(t *testing.T) {
	h := store.HashPassword("secret")
	if !store.CheckPassword(h, "secret") || store.CheckPassword(h, "Secret") || store.CheckPassword("", "secret") ||
		store.CheckPassword("$argon2id$v=19$m=1,t=1,p=1$$", "secret") {
		t.Error("CheckPassword")
	}
	if store.HashPassword("secret") == h {
		t.Error("no salt")
	}
	start := time.Now()
	store.CheckPassword(h, "secret")
	t.Logf("argon2id check: %s", time.Since(start))
	if p := store.NewPassword(); len(p) != 20 || p == store.NewPassword() {
		t.Errorf("NewPassword %q", p)
	}
}
