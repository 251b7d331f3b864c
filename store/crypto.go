package store

import (
	"bufio"
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"gorm.io/gorm"
)

// Biometric data (registration photos, the photo's face embedding, gallery frames and their
// embeddings) is sealed with AES-256-GCM before it reaches the database, so a dump of the
// database alone shows no face. Each value carries the id of the key that sealed it: old keys
// stay in the key file for reading while new writes use the first (see docs/privacy.md,
// "Rotating the encryption key").

// sealMagic starts every sealed value: "pxe1" | key id length (1 byte) | key id | 12-byte nonce |
// ciphertext and GCM tag.
var sealMagic = []byte("pxe1")

// Keyring holds the data-encryption keys: Current seals, any key opens what it sealed.
type Keyring struct {
	current string
	keys    map[string]cipher.AEAD
}

// ErrNoKey means no encryption key is configured; the service refuses to start without one.
var ErrNoKey = errors.New("no encryption key configured for biometric data: set --encryption-key-file " +
	"(PROCTOR_ENCRYPTION_KEY_FILE) to a file of 'ID BASE64-32-BYTES' lines, first line = key for new data; " +
	"create one with 'proctor keys encryption-key --out FILE'")

// NewKeyring builds a keyring from id → 32-byte key; current names the key that seals.
func NewKeyring(current string, keys map[string][]byte) (*Keyring, error) {
	kr := &Keyring{current: current, keys: map[string]cipher.AEAD{}}
	for id, k := range keys {
		if id == "" || len(id) > 64 || strings.ContainsAny(id, " \t\r\n") {
			return nil, fmt.Errorf("encryption key id %q: want 1-64 characters without spaces", id)
		}
		if len(k) != 32 {
			return nil, fmt.Errorf("encryption key %q is %d bytes: want 32 (AES-256)", id, len(k))
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, err
		}
		if kr.keys[id], err = cipher.NewGCM(block); err != nil {
			return nil, err
		}
	}
	if kr.keys[current] == nil {
		return nil, fmt.Errorf("current encryption key %q is not in the keyring", current)
	}
	return kr, nil
}

// Current is the id of the key that seals new data.
func (k *Keyring) Current() string { return k.current }

// LoadKeyFile reads a key file: one "ID BASE64" pair per line, '#' comments; the first key
// seals new data, the others only open old data (rotation).
func LoadKeyFile(path string) (*Keyring, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read encryption key file: %w", err)
	}
	keys, current := map[string][]byte{}, ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			return nil, fmt.Errorf("encryption key file %s line %d: want 'ID BASE64-KEY'", path, n)
		}
		k, err := base64.StdEncoding.DecodeString(f[1])
		if err != nil {
			return nil, fmt.Errorf("encryption key file %s line %d: %w", path, n, err)
		}
		if _, dup := keys[f[0]]; dup {
			return nil, fmt.Errorf("encryption key file %s line %d: key id %q twice", path, n, f[0])
		}
		keys[f[0]] = k
		if current == "" {
			current = f[0]
		}
	}
	if current == "" {
		return nil, fmt.Errorf("encryption key file %s holds no key: %w", path, ErrNoKey)
	}
	return NewKeyring(current, keys)
}

// NewKeyLine returns a key-file line with a fresh random 32-byte key.
func NewKeyLine(id string) string {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return id + " " + base64.StdEncoding.EncodeToString(k) + "\n"
}

// LocalKeyFile is the key file of the embedded (SQLite) default, created on first use next to
// the database so the demo and a laptop run need no setup. Production (PostgreSQL) has no
// default: it must name a key file kept apart from the database and its backups.
const LocalKeyFile = "encryption.key"

// loadOrCreateKeyFile opens path, creating it with one fresh key (0600) if it does not exist.
func loadOrCreateKeyFile(path string) (*Keyring, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, err
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			_, err = f.WriteString("# proctor data-encryption keys: first line seals new data (see docs/privacy.md)\n" + NewKeyLine("local-1"))
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return nil, fmt.Errorf("create encryption key file: %w", err)
			}
		} else if !errors.Is(err, os.ErrExist) { // another process created it first: read theirs
			return nil, fmt.Errorf("create encryption key file: %w", err)
		}
	}
	return LoadKeyFile(path)
}

// keyringPlugin carries the keyring on the gorm handle: gorm shares its Config (plugins
// included) with every session and transaction derived from it, so functions that take a *gorm.DB
// (inside a worker's transaction) seal and open without a global.
type keyringPlugin struct{ kr *Keyring }

const keyringPluginName = "proctor-keyring"

func (p *keyringPlugin) Name() string                { return keyringPluginName }
func (p *keyringPlugin) Initialize(_ *gorm.DB) error { return nil }

func keyringOf(db *gorm.DB) (*Keyring, error) {
	if p, ok := db.Config.Plugins[keyringPluginName].(*keyringPlugin); ok {
		return p.kr, nil
	}
	return nil, ErrNoKey // never store biometrics in the clear
}

// Seal encrypts plain under the current key; aad binds it to its place (column and row), so a
// value copied to another row does not open. Empty stays empty ("tried, nothing found").
func (k *Keyring) Seal(plain []byte, aad string) []byte {
	if len(plain) == 0 {
		return plain
	}
	aead := k.keys[k.current]
	out := make([]byte, 0, len(sealMagic)+1+len(k.current)+aead.NonceSize()+len(plain)+aead.Overhead())
	out = append(out, sealMagic...)
	out = append(out, byte(len(k.current)))
	out = append(out, k.current...)
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		panic(err)
	}
	out = append(out, nonce...)
	return aead.Seal(out, nonce, plain, []byte(aad))
}

// Open decrypts a value Seal produced with any key of the ring.
func (k *Keyring) Open(sealed []byte, aad string) ([]byte, error) {
	if len(sealed) == 0 {
		return sealed, nil
	}
	id, ok := SealedKeyID(sealed)
	if !ok {
		return nil, errors.New("stored biometric value is not sealed (plaintext or corrupt): refusing it")
	}
	aead := k.keys[id]
	if aead == nil {
		return nil, fmt.Errorf("stored value was sealed with encryption key %q, which is not in the key file (rotation: keep old keys after the first line)", id)
	}
	rest := sealed[len(sealMagic)+1+len(id):]
	if len(rest) < aead.NonceSize()+aead.Overhead() {
		return nil, errors.New("sealed value too short")
	}
	plain, err := aead.Open(nil, rest[:aead.NonceSize()], rest[aead.NonceSize():], []byte(aad))
	if err != nil {
		return nil, fmt.Errorf("open sealed value with key %q: %w", id, err)
	}
	return plain, nil
}

// SealedKeyID returns the id of the key that sealed v, and whether v is sealed at all.
func SealedKeyID(v []byte) (string, bool) {
	if len(v) < len(sealMagic)+1 || !bytes.Equal(v[:len(sealMagic)], sealMagic) {
		return "", false
	}
	n := int(v[len(sealMagic)])
	if n == 0 || len(v) < len(sealMagic)+1+n {
		return "", false
	}
	return string(v[len(sealMagic)+1 : len(sealMagic)+1+n]), true
}

// seal and open use the keyring carried by db.
func seal(db *gorm.DB, plain []byte, aad string) ([]byte, error) {
	kr, err := keyringOf(db)
	if err != nil {
		return nil, err
	}
	return kr.Seal(plain, aad), nil
}

func open(db *gorm.DB, sealed []byte, aad string) ([]byte, error) {
	kr, err := keyringOf(db)
	if err != nil {
		return nil, err
	}
	return kr.Open(sealed, aad)
}

// Places of sealed values (the additional data of AES-GCM).
func aadPhoto(sessionID string) string     { return "sessions.registration_photo\x00" + sessionID }
func aadEmbedding(sessionID string) string { return "sessions.face_embedding\x00" + sessionID }
func aadVoice(sessionID string, startMs int64) string {
	return fmt.Sprintf("voice_windows.embedding\x00%s\x00%d", sessionID, startMs)
}
func aadGallery(column, sessionID string, seq int64) string {
	return fmt.Sprintf("gallery_faces.%s\x00%s\x00%d", column, sessionID, seq)
}

// InsecureTestKeys is a fixed, publicly known keyring for tests against a shared PostgreSQL
// (every test process must open what another sealed). Never configure it in a service.
func InsecureTestKeys() *Keyring {
	kr, err := NewKeyring("insecure-test", map[string][]byte{"insecure-test": insecureTestKey()})
	if err != nil {
		panic(err)
	}
	return kr
}

func insecureTestKey() []byte {
	k := sha256.Sum256([]byte("proctor insecure test key"))
	return k[:]
}

// InsecureTestKeyLine is InsecureTestKeys as a key-file line, for test subprocesses
// (--encryption-key-file).
func InsecureTestKeyLine() string {
	return "insecure-test " + base64.StdEncoding.EncodeToString(insecureTestKey()) + "\n"
}

// sealedColumn is a column of sealed values and how to name a row's place (the AES-GCM
// additional data).
type sealedColumn struct {
	table, column, key string // key: the columns selected to build the place
	aad                func(row map[string]any) string
}

func sealedColumns() []sealedColumn {
	str := func(v any) string {
		switch x := v.(type) {
		case []byte:
			return string(x)
		case string:
			return x
		}
		return fmt.Sprint(v)
	}
	i64 := func(v any) int64 {
		switch x := v.(type) {
		case int64:
			return x
		case int32:
			return int64(x)
		case int:
			return int64(x)
		}
		return 0
	}
	return []sealedColumn{
		{"sessions", "registration_photo", "id", func(r map[string]any) string { return aadPhoto(str(r["id"])) }},
		{"sessions", "face_embedding", "id", func(r map[string]any) string { return aadEmbedding(str(r["id"])) }},
		{"gallery_faces", "vector", "id, session_id, seq", func(r map[string]any) string {
			return aadGallery("vector", str(r["session_id"]), i64(r["seq"]))
		}},
		{"gallery_faces", "jpeg", "id, session_id, seq", func(r map[string]any) string {
			return aadGallery("jpeg", str(r["session_id"]), i64(r["seq"]))
		}},
		{"voice_windows", "embedding", "id, session_id, start_ms", func(r map[string]any) string {
			return aadVoice(str(r["session_id"]), i64(r["start_ms"]))
		}},
	}
}

// Reseal seals what is stored in the clear (data from before encryption) and, with rotate,
// re-encrypts values sealed with an older key under the current one, so the old key can leave
// the key file. It returns how many values it rewrote.
func (s *Store) Reseal(ctx context.Context, rotate bool) (int64, error) {
	kr, err := keyringOf(s.DB)
	if err != nil {
		return 0, err
	}
	db := s.DB.WithContext(ctx)
	var n int64
	for _, c := range sealedColumns() {
		q := db.Table(c.table).Select(c.key + ", " + c.column).Where(c.column + " IS NOT NULL")
		if !rotate {
			// Only values that are not sealed at all: a prefix test the database does.
			if s.Postgres {
				q = q.Where("substring(" + c.column + " from 1 for 4) <> '\\x70786531'::bytea AND length(" + c.column + ") > 0")
			} else {
				q = q.Where("substr(" + c.column + ", 1, 4) <> x'70786531' AND length(" + c.column + ") > 0")
			}
		}
		var rows []map[string]any
		if err := q.Find(&rows).Error; err != nil {
			return n, fmt.Errorf("reseal %s.%s: %w", c.table, c.column, err)
		}
		for _, r := range rows {
			var v []byte
			switch x := r[c.column].(type) { // drivers differ: SQLite may hand back a string
			case []byte:
				v = x
			case string:
				v = []byte(x)
			}
			if len(v) == 0 {
				continue
			}
			plain := v
			if id, ok := SealedKeyID(v); ok {
				if id == kr.current || !rotate {
					continue
				}
				if plain, err = kr.Open(v, c.aad(r)); err != nil {
					return n, fmt.Errorf("reseal %s.%s: %w", c.table, c.column, err)
				}
			}
			res := db.Table(c.table).Where("id = ?", r["id"]).Update(c.column, kr.Seal(plain, c.aad(r)))
			if res.Error != nil {
				return n, res.Error
			}
			n += res.RowsAffected
		}
	}
	return n, nil
}
