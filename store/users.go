package store

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
	"gorm.io/gorm"
)

// Roles a user (a person signing in to the reviewer page) can have. The exam platform is not a
// person: it uses an API key with the ingest scope.
const (
	RoleReviewer = "reviewer" // triages sessions: scope review
	RoleData     = "data"     // exports reviewed data: scope data
	RoleAdmin    = "admin"    // keys, users, settings, audit: every scope
)

// ScopeData lets a key or user export reviewed data (CSV of verdicts).
const ScopeData = "data"

// ValidRole reports whether r is a role a user can have.
func ValidRole(r string) bool { return r == RoleReviewer || r == RoleData || r == RoleAdmin }

// RoleScopes maps a user's role to the API scopes it grants.
func RoleScopes(role string) string {
	switch role {
	case RoleReviewer:
		return ScopeReview
	case RoleData:
		return ScopeData
	case RoleAdmin:
		return ScopeAdmin
	}
	return ""
}

// User is a person who signs in to the reviewer page. One organisation each.
type User struct {
	ID           string    `gorm:"primaryKey;size:32" json:"id"`
	OrgID        string    `gorm:"size:64;index" json:"org_id"`
	Email        string    `gorm:"size:254;uniqueIndex" json:"email"`
	Role         string    `gorm:"size:16" json:"role"`
	PasswordHash string    `gorm:"size:200" json:"-"`
	CreatedAt    time.Time `json:"created_at"`
	// DisabledAt stops sign-in and ends the user's sessions (users are never deleted: the audit
	// log names them).
	DisabledAt *time.Time `json:"disabled_at,omitempty"`
}

// WebSession is a signed-in browser. Only the SHA-256 of the cookie's random token is stored,
// like API keys; CSRFToken is sent back in a header on every state-changing request.
type WebSession struct {
	TokenHash string    `gorm:"primaryKey;size:64"`
	UserID    string    `gorm:"size:32;index"`
	CSRFToken string    `gorm:"size:64"`
	CreatedAt time.Time `gorm:"index"`
	ExpiresAt time.Time `gorm:"index"`
	RemoteIP  string    `gorm:"size:64"`
}

// argon2id parameters: the OWASP minimum (19 MiB, 2 passes, 1 lane) costs ~30 ms on this
// machine kind — slow for a guesser, fast enough that a burst of sign-ins does not stall the API.
const (
	argonMemoryKiB = 19 * 1024
	argonTime      = 2
	argonThreads   = 1
	argonKeyLen    = 32
)

// HashPassword returns an argon2id hash in the PHC string format
// ($argon2id$v=19$m=…,t=…,p=…$salt$hash), so parameters can be raised later without a migration.
func HashPassword(password string) string {
	salt := randomBytes(16)
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemoryKiB, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemoryKiB, argonTime,
		argonThreads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// CheckPassword reports whether password matches a hash made by HashPassword.
func CheckPassword(hash, password string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m == 0 || t == 0 || p == 0 {
		return false
	}
	b64 := base64.RawStdEncoding
	salt, err1 := b64.DecodeString(parts[4])
	want, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 {
		return false
	}
	got := argon2.IDKey([]byte(password), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// dummyHash is checked against when the email is unknown, so a sign-in takes as long for an
// unknown address as for a wrong password (no user enumeration by timing).
var dummyHash = HashPassword("not a real password")

// ErrBadCredentials is returned for an unknown email, a wrong password or a disabled user.
var ErrBadCredentials = errors.New("wrong email or password")

// MinPasswordLen is the shortest password accepted.
const MinPasswordLen = 10

// NormalizeEmail lower-cases and validates an email address.
func NormalizeEmail(email string) (string, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	a, err := mail.ParseAddress(email)
	if err != nil || a.Address != email || len(email) > 254 {
		return "", invalidf("%q is not an email address", CleanText(email, 254))
	}
	return email, nil
}

// CreateUser adds a user to an organisation. With replace, an existing user of the same email in
// the same organisation gets the new role and password instead (the demo, re-run).
func (s *Store) CreateUser(ctx context.Context, orgID, email, role, password string, replace bool) (*User, error) {
	email, err := NormalizeEmail(email)
	if err != nil {
		return nil, err
	}
	if !ValidRole(role) {
		return nil, invalidf("unknown role %q (want reviewer, data or admin)", CleanText(role, 32))
	}
	if utf8.RuneCountInString(password) < MinPasswordLen {
		return nil, invalidf("password must be at least %d characters", MinPasswordLen)
	}
	u := &User{ID: randomHex(8), OrgID: orgID, Email: email, Role: role, PasswordHash: HashPassword(password)}
	err = s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var existing User
		err := tx.Where("email = ?", email).Take(&existing).Error
		if err == nil {
			if !replace || existing.OrgID != orgID {
				return fmt.Errorf("%w: a user with email %s already exists", ErrConflict, email)
			}
			u.ID, u.CreatedAt = existing.ID, existing.CreatedAt
			if err := tx.Model(&User{}).Where("id = ?", u.ID).Updates(map[string]any{
				"role": role, "password_hash": u.PasswordHash, "disabled_at": nil}).Error; err != nil {
				return err
			}
			return tx.Where("user_id = ?", u.ID).Delete(&WebSession{}).Error
		}
		if !errors.Is(err, gorm.ErrRecordNotFound) {
			return err
		}
		return tx.Create(u).Error
	})
	if err != nil {
		if errors.Is(err, gorm.ErrDuplicatedKey) {
			return nil, fmt.Errorf("a user with email %s already exists", email)
		}
		return nil, err
	}
	return u, nil
}

// ListUsers returns an organisation's users by email.
func (s *Store) ListUsers(ctx context.Context, orgID string) ([]User, error) {
	var out []User
	err := s.DB.WithContext(ctx).Where("org_id = ?", orgID).Order("email").Find(&out).Error
	return out, err
}

// SetUserDisabled disables (or re-enables) a user of the organisation; disabling ends their
// sessions.
func (s *Store) SetUserDisabled(ctx context.Context, orgID, id string, disabled bool) (*User, error) {
	var u User
	err := s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Where("id = ? AND org_id = ?", id, orgID).Take(&u).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return ErrNotFound
			}
			return err
		}
		var at *time.Time
		if disabled {
			now := time.Now().UTC()
			at = &now
			if err := tx.Where("user_id = ?", id).Delete(&WebSession{}).Error; err != nil {
				return err
			}
		}
		u.DisabledAt = at
		return tx.Model(&User{}).Where("id = ?", id).Update("disabled_at", at).Error
	})
	return &u, err
}

// CheckUser returns the user whose email and password match, or ErrBadCredentials.
func (s *Store) CheckUser(ctx context.Context, email, password string) (*User, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	var u User
	err := s.DB.WithContext(ctx).Where("email = ?", email).Take(&u).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		CheckPassword(dummyHash, password)
		return nil, ErrBadCredentials
	}
	if err != nil {
		return nil, err
	}
	if !CheckPassword(u.PasswordHash, password) || u.DisabledAt != nil {
		return nil, ErrBadCredentials
	}
	return &u, nil
}

// WebSessionTTL is how long a sign-in lasts: a reviewer's working day.
const WebSessionTTL = 12 * time.Hour

// CreateWebSession signs a user in and returns the cookie token and the session (with its CSRF
// token).
func (s *Store) CreateWebSession(ctx context.Context, u *User, remoteIP string) (string, *WebSession, error) {
	token := randomHex(32)
	now := time.Now().UTC()
	ws := &WebSession{TokenHash: hashSecret(token), UserID: u.ID, CSRFToken: randomHex(32),
		CreatedAt: now, ExpiresAt: now.Add(WebSessionTTL), RemoteIP: remoteIP}
	db := s.DB.WithContext(ctx)
	// Sign-in is a good moment to drop expired sessions: no background job needed.
	if err := db.Where("expires_at < ?", now).Delete(&WebSession{}).Error; err != nil {
		return "", nil, err
	}
	if err := db.Create(ws).Error; err != nil {
		return "", nil, fmt.Errorf("create web session: %w", err)
	}
	return token, ws, nil
}

// WebSessionUser returns the signed-in session and user of a cookie token, or ErrNotFound when
// the token is unknown, expired or its user disabled.
func (s *Store) WebSessionUser(ctx context.Context, token string) (*WebSession, *User, error) {
	if len(token) != 64 {
		return nil, nil, ErrNotFound
	}
	var ws WebSession
	db := s.DB.WithContext(ctx)
	if err := db.Where("token_hash = ? AND expires_at > ?", hashSecret(token), time.Now().UTC()).Take(&ws).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil, nil, ErrNotFound
		}
		return nil, nil, err
	}
	var u User
	if err := db.Where("id = ? AND disabled_at IS NULL", ws.UserID).Take(&u).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil, nil, ErrNotFound
		}
		return nil, nil, err
	}
	return &ws, &u, nil
}

// DeleteWebSession signs a cookie token out.
func (s *Store) DeleteWebSession(ctx context.Context, token string) error {
	return s.DB.WithContext(ctx).Where("token_hash = ?", hashSecret(token)).Delete(&WebSession{}).Error
}

// ListAPIKeys returns an organisation's keys (without secrets), newest first.
func (s *Store) ListAPIKeys(ctx context.Context, orgID string) ([]APIKey, error) {
	var out []APIKey
	err := s.DB.WithContext(ctx).Where("org_id = ?", orgID).Order("created_at DESC").Find(&out).Error
	return out, err
}

// RevokeAPIKey revokes a key of the organisation (ErrNotFound for another organisation's).
func (s *Store) RevokeAPIKey(ctx context.Context, orgID, id string) error {
	res := s.DB.WithContext(ctx).Model(&APIKey{}).Where("id = ? AND org_id = ? AND revoked_at IS NULL", id, orgID).
		Update("revoked_at", time.Now().UTC())
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 0 {
		var n int64
		s.DB.WithContext(ctx).Model(&APIKey{}).Where("id = ? AND org_id = ?", id, orgID).Count(&n)
		if n == 0 {
			return ErrNotFound
		}
	}
	return nil
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return b
}

// NewPassword returns a random 20-character password (about 100 bits) from an alphabet without
// look-alike characters, for generated accounts (the demo, `proctor users create`).
func NewPassword() string {
	const alphabet = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ23456789"
	b := randomBytes(20)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}
