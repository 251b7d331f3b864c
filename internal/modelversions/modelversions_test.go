package modelversions

import (
	"context"
	"errors"
	"testing"

	"proctor/models"
	"proctor/store"
)

// A version that cannot be registered is refused as the caller's mistake (ErrRefused), before
// anything loads.
func TestPrepareRefuses(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		manifest, data, eval []byte
	}{
		{"eval not JSON", []byte(`{}`), []byte("x"), []byte("{not json")},
		{"manifest not JSON", []byte(`not json`), []byte("x"), nil},
		{"unknown field", []byte(`{"name":"attire-cnn","surprise":1}`), []byte("x"), nil},
		{"not retrainable", []byte(`{"name":"ultraface-rfb-320","version":"9"}`), []byte("x"), nil},
	} {
		if _, err := Prepare(tc.manifest, tc.data, nil, tc.eval, "test"); !errors.Is(err, ErrRefused) {
			t.Errorf("%s: %v, want ErrRefused", tc.name, err)
		}
	}
	if _, err := PrepareDir(t.TempDir(), "test"); err == nil {
		t.Error("an empty directory was prepared")
	}
}

// With nothing registered, every retrainable model is in force in its built-in version.
func TestInForceBuiltIn(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, store.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	got, err := InForce(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range models.Retrainable {
		m, err := models.Lookup(name)
		if err != nil {
			continue
		}
		if want := m.ID() + " (built-in)"; got[name] != want {
			t.Errorf("%s: %q, want %q", name, got[name], want)
		}
		if sh, ok := got[name+" shadow"]; ok {
			t.Errorf("%s: shadow %q with nothing registered", name, sh)
		}
	}
}
