package eval

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
)

// TestReportJSON: metrics that do not apply (NaN) become null, so the output is valid JSON.
func TestReportJSON(t *testing.T) {
	rep := &Report{
		Rows:   []Row{{Check: "attributes: earphones", Split: "-", Precision: math.NaN(), Recall: math.NaN(), F1: math.NaN()}, {Check: "x", N: 3, Precision: 1, Recall: 0.5, F1: 2.0 / 3}},
		Timing: []Timing{{Analyzer: "attire (attire-cnn@1)", Images: 3, MsPerImage: 0.4}},
	}
	var buf bytes.Buffer
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Rows []struct {
			Check     string
			Precision *float64
			Recall    *float64
		}
		Timing []struct {
			Analyzer   string  `json:"analyzer"`
			MsPerImage float64 `json:"ms_per_image"`
		}
		Notes []string
	}
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, buf.String())
	}
	if len(got.Rows) != 2 || got.Rows[0].Precision != nil || got.Rows[1].Recall == nil || *got.Rows[1].Recall != 0.5 {
		t.Errorf("rows %+v", got.Rows)
	}
	if len(got.Timing) != 1 || got.Timing[0].MsPerImage != 0.4 || got.Notes == nil {
		t.Errorf("timing %+v notes %v", got.Timing, got.Notes)
	}
}
