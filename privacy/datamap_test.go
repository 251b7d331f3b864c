package privacy_test

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"proctor/analyzers"
	"proctor/store"
)

// TestDataMapCoversEveryTable: docs/privacy.md's data map names every table of the schema, so a
// new table cannot ship without its data class, retention and deletion path written down.
func TestDataMapCoversEveryTable(t *testing.T) {
	doc, err := os.ReadFile("../docs/privacy.md")
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(doc), "## Data map")
	if i < 0 {
		t.Fatal("docs/privacy.md has no '## Data map' section")
	}
	dataMap := string(doc[i:])
	st, closeFn, err := store.OpenTemp(context.Background(), "datamap")
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	tables, err := st.DB.Migrator().GetTables()
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		if tb == "sqlite_sequence" {
			continue
		}
		if !strings.Contains(dataMap, "`"+tb+"`") {
			t.Errorf("table %s is not in the data map of docs/privacy.md", tb)
		}
	}
}

// TestFrameEmbeddingsNotStored: what is stored per frame (the observation's JSON) holds no face
// embedding, however many faces the frame had (minimal collection).
func TestFrameEmbeddingsNotStored(t *testing.T) {
	emb := make([]float32, 512)
	for i := range emb {
		emb[i] = 0.123456
	}
	obs := analyzers.Observation{Faces: []analyzers.Face{{Match: &analyzers.Match{Similarity: 0.9, Measured: true, Embedding: emb}},
		{Match: &analyzers.Match{Embedding: emb}}}}
	js, err := json.Marshal(obs)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(js), "0.123456") || strings.Contains(strings.ToLower(string(js)), "embedding") {
		t.Fatalf("stored observation holds the embedding: %.200s", js)
	}
}
