package export

import (
	"archive/zip"
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// Redact rebuilds a stored export without the items of the given session pseudonyms (a
// candidate or session was deleted): their manifest lines and their frames, crops and WAV
// snippets go, the counts and the manifest checksum are recomputed, and export.json keeps its
// id and gains a note saying when and how many items were removed. It returns nil when the
// export holds none of them (nothing to rebuild).
func Redact(archive []byte, sessions map[string]bool, now time.Time) (res *Result, removed int, err error) {
	zr, err := zip.NewReader(bytes.NewReader(archive), int64(len(archive)))
	if err != nil {
		return nil, 0, fmt.Errorf("read export archive: %w", err)
	}
	files := map[string][]byte{}
	var root string
	for _, f := range zr.File {
		top, name, _ := strings.Cut(f.Name, "/")
		root = top
		rc, err := f.Open()
		if err != nil {
			return nil, 0, err
		}
		data, err := io.ReadAll(io.LimitReader(rc, MaxArchiveBytes))
		rc.Close()
		if err != nil {
			return nil, 0, err
		}
		files[name] = data
	}
	var rec Record
	if err := json.Unmarshal(files["export.json"], &rec); err != nil {
		return nil, 0, fmt.Errorf("export %s: export.json: %w", root, err)
	}
	var kept []Item
	drop := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(files["manifest.jsonl"]))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var it Item
		if err := json.Unmarshal(sc.Bytes(), &it); err != nil {
			return nil, 0, fmt.Errorf("export %s: manifest: %w", root, err)
		}
		if sessions[it.Session] {
			removed++
			for _, f := range []string{it.Frame, it.Crop, it.Audio} {
				if f != "" {
					drop[f] = true
				}
			}
			continue
		}
		kept = append(kept, it)
	}
	if err := sc.Err(); err != nil {
		return nil, 0, err
	}
	if removed == 0 {
		return nil, 0, nil
	}
	rec.Counts = Counts{ByLabel: map[string]int{}, Skipped: rec.Counts.Skipped}
	rec.Notes = append(rec.Notes, fmt.Sprintf("rebuilt %s: %d item(s) removed after a deletion on request (candidate or session data erased)",
		now.UTC().Format(time.RFC3339), removed))
	w := &writer{rec: &rec, files: map[string][]byte{}}
	for _, it := range kept {
		if it.Kind == KindVision && it.Labels == nil {
			it.Labels = &Labels{}
		}
		if it.Kind != KindVision && it.Phrase == nil {
			return nil, 0, fmt.Errorf("export %s: audio item %s has no phrase label", root, it.ID)
		}
		w.add(it)
	}
	for name, data := range files {
		if name != "export.json" && name != "manifest.jsonl" && !drop[name] {
			w.files[name] = data
		}
	}
	res, err = w.finish()
	return res, removed, err
}
