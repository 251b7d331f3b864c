// Package privacy is the personal-data lifecycle (docs/privacy.md): the retention policy per
// organisation and exam, the sweeper that deletes what has expired, and deletion on request of
// a session or a candidate. It sits beside store: store knows the tables, privacy decides what
// goes when, and removes the files and the items inside stored exports too.
package privacy

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Data classes: each has its own retention period (days since the session was created; exports
// since they were made; audit entries since they were written).
const (
	Frames     = "frames"     // frame results (analyzers' observations) and evidence JPEGs
	Audio      = "audio"      // stored PCM of analysed audio, and the audio analyzers' saved state
	Recordings = "recordings" // uploaded video files and the files derived from them
	Biometrics = "biometrics" // registration photo, its face embedding, gallery frames and embeddings (and voice enrolments)
	Flags      = "flags"      // flags, verdicts, labels: the session's record; when it ends the whole session goes
	Exports    = "exports"    // stored dataset exports
	AuditLog   = "audit"      // the audit log: kept longest
)

// Class is a declared retention setting, served to the settings page.
type Class struct {
	Key         string `json:"key"`
	Description string `json:"description"`
	Default     int    `json:"default"`
	Min         int    `json:"min"`
	Max         int    `json:"max"`
	Unit        string `json:"unit"`
}

// Classes are the retention settings with their ranges and defaults. The defaults keep what a
// reviewer needs for a typical appeal window (results published, then contested) and biometrics
// only as long as identity may still be disputed.
var classes = []Class{
	{Frames, "frame results and evidence frames (JPEG)", 90, 1, 3650, "days"},
	{Audio, "stored audio of analysed chunks (training snippets) and the audio analyzers' state", 30, 1, 3650, "days"},
	{Recordings, "uploaded recordings and the files derived from them (e.g. MP4s)", 90, 1, 3650, "days"},
	{Biometrics, "registration photo, face embeddings, gallery frames, speaker (voice) embeddings", 30, 1, 3650, "days"},
	{Flags, "flags, verdicts, labels and every other row of the session (the session itself)", 365, 1, 3650, "days"},
	{Exports, "stored dataset exports", 180, 1, 3650, "days"},
	{AuditLog, "audit log entries (kept longest)", 1095, 365, 3650, "days"},
}

// Classes returns the declarations, in order.
func Classes() []Class { return append([]Class(nil), classes...) }

// SessionClasses are the classes of a session's data, in the order the sweeper handles them
// (Flags last: it removes the rest).
var SessionClasses = []string{Frames, Audio, Recordings, Biometrics, Flags}

// Policy is retention days per class.
type Policy map[string]int

// Defaults is the declared policy.
func Defaults() Policy {
	p := Policy{}
	for _, c := range classes {
		p[c.Key] = c.Default
	}
	return p
}

// With returns p overlaid with o's classes.
func (p Policy) With(o Policy) Policy {
	out := Policy{}
	for k, v := range p {
		out[k] = v
	}
	for k, v := range o {
		out[k] = v
	}
	return out
}

// ParseOverride decodes and checks a stored or posted override: known classes, values in range.
func ParseOverride(js []byte) (Policy, error) {
	var p Policy
	if len(js) == 0 {
		return Policy{}, nil
	}
	if err := json.Unmarshal(js, &p); err != nil {
		return nil, fmt.Errorf("retention must be a JSON object of days per class (%s): %w", strings.Join(keys(), ", "), err)
	}
	if p == nil {
		p = Policy{}
	}
	for k, v := range p {
		c, ok := class(k)
		if !ok {
			return nil, fmt.Errorf("unknown retention class %q (want %s)", k, strings.Join(keys(), ", "))
		}
		if v < c.Min || v > c.Max {
			return nil, fmt.Errorf("%s: %d days is outside %d-%d", k, v, c.Min, c.Max)
		}
	}
	return p, nil
}

// Validate checks an effective policy: the audit log is kept longest, and a session's record
// (flags) at least as long as any of its parts, since removing it removes them.
func (p Policy) Validate() error {
	for _, c := range classes {
		if c.Key != AuditLog && p[c.Key] > p[AuditLog] {
			return fmt.Errorf("%s is kept %d days, longer than the audit log (%d): the audit log must be kept longest", c.Key, p[c.Key], p[AuditLog])
		}
	}
	for _, k := range []string{Frames, Audio, Recordings, Biometrics} {
		if p[k] > p[Flags] {
			return fmt.Errorf("%s is kept %d days, longer than flags (%d): when flags expire the whole session goes", k, p[k], p[Flags])
		}
	}
	return nil
}

func class(k string) (Class, bool) {
	for _, c := range classes {
		if c.Key == k {
			return c, true
		}
	}
	return Class{}, false
}

func keys() []string {
	var out []string
	for _, c := range classes {
		out = append(out, c.Key)
	}
	sort.Strings(out)
	return out
}
