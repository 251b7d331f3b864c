package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/logger"
)

// Config selects the database.
type Config struct {
	// DSN of a PostgreSQL database ("host=... dbname=..." or "postgres://..."). Empty means the
	// embedded SQLite file in DataDir.
	DSN string
	// DataDir holds the SQLite file (proctor.db). Default "data".
	DataDir string
	// Keys seal biometric data (crypto.go). Nil: loaded from KeyFile; with no KeyFile, the
	// embedded SQLite default uses DataDir/encryption.key (created on first use) and PostgreSQL
	// refuses to open (ErrNoKey): production names its key file, kept apart from the database.
	Keys    *Keyring
	KeyFile string
}

// Store is the database handle shared by the API and the workers.
type Store struct {
	DB       *gorm.DB
	Postgres bool
}

// ErrNotFound is returned when a row does not exist (or belongs to another organisation).
var ErrNotFound = errors.New("not found")

// Open connects and migrates the schema.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	gcfg := &gorm.Config{Logger: logger.Discard, TranslateError: true}
	var db *gorm.DB
	pg := cfg.DSN != ""
	keys, err := cfg.keyring()
	if err != nil {
		return nil, err
	}
	if pg {
		db, err = gorm.Open(postgres.Open(cfg.DSN), gcfg)
	} else {
		dir := cfg.DataDir
		if dir == "" {
			dir = "data"
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("create data dir: %w", err)
		}
		// WAL lets the reviewer API read while workers write; busy_timeout makes concurrent
		// writers wait instead of failing; immediate transactions avoid lock-upgrade deadlocks.
		dsn := "file:" + filepath.Join(dir, "proctor.db") +
			"?_journal_mode=WAL&_busy_timeout=10000&_txlock=immediate&_foreign_keys=on&_synchronous=NORMAL"
		db, err = gorm.Open(sqlite.Open(dsn), gcfg)
	}
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	if err := db.Use(&keyringPlugin{kr: keys}); err != nil {
		return nil, err
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, err
	}
	if pg {
		sqlDB.SetMaxOpenConns(20)
	} else {
		sqlDB.SetMaxOpenConns(4)
	}
	if err := sqlDB.PingContext(ctx); err != nil {
		return nil, fmt.Errorf("connect database: %w", err)
	}
	s := &Store{DB: db, Postgres: pg}
	if err := s.Migrate(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// keyring resolves the encryption keys (see Config.Keys).
func (cfg Config) keyring() (*Keyring, error) {
	switch {
	case cfg.Keys != nil:
		return cfg.Keys, nil
	case cfg.KeyFile != "":
		return LoadKeyFile(cfg.KeyFile)
	case cfg.DSN == "":
		dir := cfg.DataDir
		if dir == "" {
			dir = "data"
		}
		return loadOrCreateKeyFile(filepath.Join(dir, LocalKeyFile))
	default:
		return nil, ErrNoKey
	}
}

// SchemaVersion is bumped whenever a migration needs more than AutoMigrate's additive changes.
const SchemaVersion = 1

type schemaInfo struct {
	ID        int `gorm:"primaryKey"`
	Version   int
	UpdatedAt time.Time
}

// Migrate brings the schema to SchemaVersion. AutoMigrate only adds tables, columns and indexes,
// which is safe to run from several processes at start-up.
func (s *Store) Migrate(ctx context.Context) error {
	db := s.DB.WithContext(ctx)
	if err := db.AutoMigrate(append(allModels(), &schemaInfo{})...); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if err := s.auditAppendOnly(db); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	// Biometrics stored before encryption are sealed now (never read back in the clear).
	if n, err := s.Reseal(ctx, false); err != nil {
		return fmt.Errorf("migrate: seal stored biometrics: %w", err)
	} else if n > 0 {
		slog.Info("sealed stored biometric values that predate encryption", "values", n)
	}
	return db.Clauses(clause.OnConflict{UpdateAll: true}).
		Create(&schemaInfo{ID: 1, Version: SchemaVersion, UpdatedAt: time.Now()}).Error
}

// Close releases the connection pool.
func (s *Store) Close() error {
	sqlDB, err := s.DB.DB()
	if err != nil {
		return err
	}
	return sqlDB.Close()
}

// Ping checks the database answers (for /healthz).
func (s *Store) Ping(ctx context.Context) error {
	sqlDB, err := s.DB.DB()
	if err != nil {
		return err
	}
	return sqlDB.PingContext(ctx)
}

// EnsureOrganisation creates the organisation if it does not exist.
func (s *Store) EnsureOrganisation(ctx context.Context, id, name string) error {
	return s.DB.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).
		Create(&Organisation{ID: id, Name: name}).Error
}

// Scopes an API key can carry.
const (
	ScopeIngest = "ingest"
	ScopeReview = "review"
	ScopeAdmin  = "admin"
)

// ValidScope reports whether s is a known scope.
func ValidScope(s string) bool {
	return s == ScopeIngest || s == ScopeReview || s == ScopeData || s == ScopeAdmin
}

// CreateAPIKey stores a new key and returns the token to hand out once: "pk_<id>_<secret>".
func (s *Store) CreateAPIKey(ctx context.Context, orgID, name string, scopes []string) (string, *APIKey, error) {
	if err := CheckText("name", name, 200); err != nil {
		return "", nil, err
	}
	for _, sc := range scopes {
		if !ValidScope(sc) {
			return "", nil, invalidf("unknown scope %q (want ingest, review, data or admin)", CleanText(sc, 64))
		}
	}
	if len(scopes) == 0 {
		return "", nil, invalidf("a key needs at least one scope")
	}
	id, secret := randomHex(8), randomHex(32)
	k := &APIKey{ID: id, SecretHash: hashSecret(secret), Name: name, OrgID: orgID,
		Scopes: strings.Join(scopes, ",")}
	if err := s.DB.WithContext(ctx).Create(k).Error; err != nil {
		return "", nil, fmt.Errorf("create key: %w", err)
	}
	return "pk_" + id + "_" + secret, k, nil
}

// Authenticate returns the key a token belongs to, or ErrNotFound.
func (s *Store) Authenticate(ctx context.Context, token string) (*APIKey, error) {
	rest, ok := strings.CutPrefix(token, "pk_")
	if !ok {
		return nil, ErrNotFound
	}
	id, secret, ok := strings.Cut(rest, "_")
	if !ok || len(id) != 16 || len(secret) != 64 {
		return nil, ErrNotFound
	}
	var k APIKey
	if err := s.DB.WithContext(ctx).Where("id = ? AND revoked_at IS NULL", id).Take(&k).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil, ErrNotFound
		}
		return nil, err
	}
	if subtle.ConstantTimeCompare([]byte(k.SecretHash), []byte(hashSecret(secret))) != 1 {
		return nil, ErrNotFound
	}
	return &k, nil
}

// HasScope reports whether the key carries scope (admin implies every scope).
func (k *APIKey) HasScope(scope string) bool {
	for _, sc := range strings.Split(k.Scopes, ",") {
		if sc == scope || sc == ScopeAdmin {
			return true
		}
	}
	return false
}

func hashSecret(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return hex.EncodeToString(b)
}

// NewID returns a random identifier for sessions.
func NewID() string { return randomHex(12) }

// Audit appends one entry to the audit log.
func Audit(db *gorm.DB, e AuditEntry) error {
	if e.At.IsZero() {
		e.At = time.Now().UTC()
	}
	return db.Create(&e).Error
}

// ErrDuplicatedKey is returned when an insert hits a unique key.
var ErrDuplicatedKey = gorm.ErrDuplicatedKey

// OpenTemp opens a throwaway SQLite store in a new temporary directory (offline analysis and
// evaluation run the service's rules on it); close removes it.
func OpenTemp(ctx context.Context, prefix string) (st *Store, closeFn func(), err error) {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return nil, nil, err
	}
	st, err = Open(ctx, Config{DataDir: dir})
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return st, func() { st.Close(); os.RemoveAll(dir) }, nil
}
