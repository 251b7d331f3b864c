package eval

import (
	"encoding/json"
	"io"
	"math"
	"strings"
)

// reportJSON is `proctor eval vision --json`: the table's rows, timings and notes, for scripts
// (training/vision/finetune_attire.py compares a base and a new model with it).
type reportJSON struct {
	Rows   []rowJSON    `json:"rows"`
	Timing []timingJSON `json:"timing"`
	Notes  []string     `json:"notes"`
}

type timingJSON struct {
	Analyzer      string  `json:"analyzer"` // name (model@version thresholds)
	Images        int     `json:"images"`
	MsPerImage    float64 `json:"ms_per_image"`
	CPUMsPerImage float64 `json:"cpu_ms_per_image"`
}

type rowJSON struct {
	Check     string   `json:"check"`
	Split     string   `json:"split"`
	N         int      `json:"n"`
	Precision *float64 `json:"precision"`
	Recall    *float64 `json:"recall"`
	F1        *float64 `json:"f1"`
	Note      string   `json:"note,omitempty"`
}

// WriteJSON writes the report as one indented JSON object; metrics that do not apply are null.
func (r *Report) WriteJSON(w io.Writer) error {
	// JSON has no NaN: a metric that does not apply is null.
	num := func(x float64) *float64 {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil
		}
		return &x
	}
	out := reportJSON{Rows: []rowJSON{}, Timing: []timingJSON{}, Notes: r.Notes}
	for _, t := range r.Timing {
		out.Timing = append(out.Timing, timingJSON{t.Analyzer, t.Images, t.MsPerImage, t.CPUMsPerImage})
	}
	if out.Notes == nil {
		out.Notes = []string{}
	}
	for _, row := range r.Rows {
		out.Rows = append(out.Rows, rowJSON{Check: row.Check, Split: row.Split, N: row.N,
			Precision: num(row.Precision), Recall: num(row.Recall), F1: num(row.F1), Note: row.Note})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	return enc.Encode(out)
}

// CheckNames lists the names of Checks, comma-separated, in table order.
func CheckNames() string {
	var n []string
	for _, c := range Checks {
		n = append(n, c.Name)
	}
	return strings.Join(n, ",")
}
