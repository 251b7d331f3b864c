package models

import (
	"errors"
	"testing"
)

// A phrase head names the embedding it was trained on and the service feeds it that one: the
// built-in phrase-gaiti@2 was trained on the int8 embedding, phrase-gaiti-fp32 (version 1) and
// heads whose manifest names none on the fp32 one. Only a phrase head may name one, and only an
// openWakeWord embedding.
func TestHeadEmbedding(t *testing.T) {
	for _, c := range []struct{ name, id, want string }{
		{"phrase-gaiti", "phrase-gaiti@2", "oww-embedding-int8"},
		{"phrase-gaiti-fp32", "phrase-gaiti-fp32@1", "oww-embedding"},
	} {
		m, err := Lookup(c.name)
		if err != nil {
			t.Fatal(err)
		}
		if m.ID() != c.id || m.HeadEmbedding() != c.want {
			t.Errorf("%s: %s on %q, want %s on %q", c.name, m.ID(), m.HeadEmbedding(), c.id, c.want)
		}
		if _, err := Lookup(m.HeadEmbedding()); err != nil {
			t.Errorf("%s names embedding %s: %v", c.id, m.HeadEmbedding(), err)
		}
	}
	head, err := Lookup("phrase-gaiti")
	if err != nil {
		t.Fatal(err)
	}
	vad, err := Lookup("silero-vad-v5")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		what string
		m    Manifest
		emb  string
	}{{"a VAD naming an embedding", *vad, "oww-embedding"}, {"a phrase head naming a VAD", *head, "silero-vad-v5"}} {
		a := *c.m.Audio
		a.Embedding = c.emb
		m := c.m
		m.Audio = &a
		if err := m.validate(); !errors.Is(err, ErrBadManifest) {
			t.Errorf("%s: validate() = %v, want ErrBadManifest", c.what, err)
		}
	}
}
