package digest

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestDigest(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
		{"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
	} {
		if got := Bytes([]byte(tc.in)); got != tc.want {
			t.Errorf("Bytes(%q) = %s, want %s", tc.in, got, tc.want)
		}
		p := filepath.Join(t.TempDir(), "f")
		if err := os.WriteFile(p, []byte(tc.in), 0o600); err != nil {
			t.Fatal(err)
		}
		if got, err := File(p); err != nil || got != tc.want {
			t.Errorf("File(%q) = %s, %v, want %s", tc.in, got, err, tc.want)
		}
	}
	if _, err := File(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("File(missing): %v, want os.ErrNotExist", err)
	}
}
