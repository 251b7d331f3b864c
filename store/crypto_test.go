package store_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"proctor/internal/testdb"
	"proctor/store"
)

func keyring(t *testing.T, current string, ids ...string) *store.Keyring {
	t.Helper()
	keys := map[string][]byte{}
	for _, id := range ids {
		k := sha256.Sum256([]byte("crypto test " + id))
		keys[id] = k[:]
	}
	kr, err := store.NewKeyring(current, keys)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// TestBiometricsSealed reads the photo, embedding and gallery columns raw, as a database dump
// would: each is AES-GCM ciphertext carrying its key id, none holds the plaintext, and the store
// still reads them back. A value moved to another row, or read with the wrong key, does not open.
func TestBiometricsSealed(t *testing.T) {
	for _, b := range testdb.Open(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			st := b.Store
			photo := append([]byte{0xFF, 0xD8, 0xFF, 0xE0}, bytes.Repeat([]byte("face pixels "), 50)...)
			emb := bytes.Repeat([]byte{0x3d, 0xcc, 0xcc, 0xcd}, 128) // 128 float32 0.1
			org := "org-crypto-" + store.NewID()[:8]
			sess := &store.Session{OrgID: org, ExamID: "e", CandidateID: "c", ScheduledStart: time.Now(), RegistrationPhoto: photo}
			other := &store.Session{OrgID: org, ExamID: "e", CandidateID: "d", ScheduledStart: time.Now()}
			for _, s := range []*store.Session{sess, other} {
				if err := st.CreateSession(ctx, s); err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(sess.RegistrationPhoto, photo) {
				t.Fatal("CreateSession changed the caller's photo")
			}
			if err := st.SetFaceEmbedding(ctx, sess.ID, "facenet@1", emb); err != nil {
				t.Fatal(err)
			}
			if err := store.AddGalleryFace(st.DB, &store.GalleryFace{SessionID: sess.ID, Seq: 7, Model: "facenet@1", Vector: emb,
				Source: store.GalleryFromPhoto, JPEG: photo}); err != nil {
				t.Fatal(err)
			}

			voice := []byte{10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120, 130, 140, 150, 160}
			if err := store.InsertVoiceWindows(st.DB, []store.VoiceWindow{{SessionID: sess.ID, StartMs: 5, EndMs: 1005, Embedding: voice}}); err != nil {
				t.Fatal(err)
			}
			var rawVoice []byte
			st.DB.Raw("SELECT embedding FROM voice_windows WHERE session_id = ?", sess.ID).Row().Scan(&rawVoice)
			if _, ok := store.SealedKeyID(rawVoice); !ok || bytes.Contains(rawVoice, voice[:8]) {
				t.Errorf("voice embedding stored in the clear: %x", rawVoice)
			}
			if ws, err := store.SessionVoiceWindows(st.DB, sess.ID); err != nil || len(ws) != 1 || !bytes.Equal(ws[0].Embedding, voice) {
				t.Errorf("voice embedding read back: %v", err)
			}
			var raw struct {
				RegistrationPhoto, FaceEmbedding []byte
			}
			if err := st.DB.Raw("SELECT registration_photo, face_embedding FROM sessions WHERE id = ?", sess.ID).Scan(&raw).Error; err != nil {
				t.Fatal(err)
			}
			var g struct{ Vector, JPEG []byte }
			if err := st.DB.Raw("SELECT vector, jpeg FROM gallery_faces WHERE session_id = ?", sess.ID).Scan(&g).Error; err != nil {
				t.Fatal(err)
			}
			for name, c := range map[string]struct{ raw, plain []byte }{
				"registration_photo": {raw.RegistrationPhoto, photo}, "face_embedding": {raw.FaceEmbedding, emb},
				"gallery vector": {g.Vector, emb}, "gallery jpeg": {g.JPEG, photo},
			} {
				id, ok := store.SealedKeyID(c.raw)
				if !ok || id != "insecure-test" && id != "local-1" {
					t.Errorf("%s: raw value is not sealed (key id %q)", name, id)
				}
				if bytes.Contains(c.raw, c.plain[:16]) || bytes.HasPrefix(c.raw, []byte{0xFF, 0xD8}) || len(c.raw) < len(c.plain)+28 {
					t.Errorf("%s: raw value (%d bytes) shows plaintext or is not ciphertext + nonce + tag", name, len(c.raw))
				}
			}
			if got, err := st.GetRegistrationPhoto(ctx, org, sess.ID); err != nil || !bytes.Equal(got, photo) {
				t.Errorf("photo read back: %d bytes, %v", len(got), err)
			}
			if s, err := st.GetSession(ctx, "", sess.ID); err != nil || !bytes.Equal(s.FaceEmbedding, emb) {
				t.Errorf("embedding read back: %v", err)
			}
			if vs, err := store.GalleryVectors(st.DB, sess.ID, "facenet@1"); err != nil || len(vs) != 1 || !bytes.Equal(vs[0].Vector, emb) {
				t.Errorf("gallery vectors read back: %v", err)
			}
			// A sealed photo copied into another session's row does not open there.
			st.DB.Exec("UPDATE sessions SET registration_photo = ? WHERE id = ?", raw.RegistrationPhoto, other.ID)
			if _, err := st.GetRegistrationPhoto(ctx, org, other.ID); err == nil {
				t.Error("a photo moved to another row opened")
			}
			// Plaintext put straight into the column is refused on read (no plaintext path)...
			st.DB.Exec("UPDATE sessions SET registration_photo = ? WHERE id = ?", photo, other.ID)
			if _, err := st.GetRegistrationPhoto(ctx, org, other.ID); err == nil {
				t.Error("a plaintext photo was served")
			}
			// ...and sealed by Reseal (what Migrate runs for data from before encryption).
			if n, err := st.Reseal(ctx, false); err != nil || n < 1 {
				t.Errorf("reseal of plaintext: %d, %v", n, err)
			}
			if got, err := st.GetRegistrationPhoto(ctx, org, other.ID); err != nil || !bytes.Equal(got, photo) {
				t.Errorf("photo after reseal: %v", err)
			}
		})
	}
}

// TestKeyRotation: after a new key goes first in the key file, old values still open; reseal
// moves them to the new key, after which the old key can leave the file. A store with the wrong
// key cannot read them, and PostgreSQL without a key does not start.
func TestKeyRotation(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.Open(ctx, store.Config{DataDir: dir, Keys: keyring(t, "k1", "k1")})
	if err != nil {
		t.Fatal(err)
	}
	photo := []byte("\xFF\xD8 a face")
	sess := &store.Session{OrgID: "o", ExamID: "e", CandidateID: "c", ScheduledStart: time.Now(), RegistrationPhoto: photo}
	if err := st.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	st.Close()

	wrong, err := store.Open(ctx, store.Config{DataDir: dir, Keys: keyring(t, "k9", "k9")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wrong.GetRegistrationPhoto(ctx, "o", sess.ID); err == nil {
		t.Error("a store without the sealing key read the photo")
	}
	wrong.Close()

	both, err := store.Open(ctx, store.Config{DataDir: dir, Keys: keyring(t, "k2", "k1", "k2")})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := both.GetRegistrationPhoto(ctx, "o", sess.ID); err != nil || !bytes.Equal(got, photo) {
		t.Fatalf("old value with the rotated key file: %v", err)
	}
	if n, err := both.Reseal(ctx, true); err != nil || n != 1 {
		t.Fatalf("reseal after rotation: %d, %v", n, err)
	}
	both.Close()
	k2, err := store.Open(ctx, store.Config{DataDir: dir, Keys: keyring(t, "k2", "k2")})
	if err != nil {
		t.Fatal(err)
	}
	defer k2.Close()
	if got, err := k2.GetRegistrationPhoto(ctx, "o", sess.ID); err != nil || !bytes.Equal(got, photo) {
		t.Fatalf("after reseal, the new key alone: %v", err)
	}

	if _, err := store.Open(ctx, store.Config{DSN: "host=127.0.0.1 port=1 dbname=x"}); !errors.Is(err, store.ErrNoKey) {
		t.Errorf("PostgreSQL without a key: %v, want ErrNoKey", err)
	}
	// The embedded default creates its key file, private to the owner.
	local := t.TempDir()
	s3, err := store.Open(ctx, store.Config{DataDir: local})
	if err != nil {
		t.Fatal(err)
	}
	s3.Close()
	fi, err := os.Stat(filepath.Join(local, store.LocalKeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("local key file: %v %v", fi, err)
	}
}

// BenchmarkSealPhoto is the cost of sealing and opening a 60 KB registration photo (once per
// session) — go test -bench SealPhoto -run ^$ ./store/
func BenchmarkSealPhoto(b *testing.B) {
	kr := store.InsecureTestKeys()
	photo := bytes.Repeat([]byte{0xFF, 0xD8, 1, 2, 3}, 12_000)
	b.SetBytes(int64(len(photo)))
	for b.Loop() {
		sealed := kr.Seal(photo, "sessions.registration_photo\x00s1")
		if _, err := kr.Open(sealed, "sessions.registration_photo\x00s1"); err != nil {
			b.Fatal(err)
		}
	}
}
