package rules

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// Listing is one check as `proctor checks list` shows it: its declaration, whether the given
// analyzer set runs everything it needs, and the model versions of those analyzers.
type Listing struct {
	Check
	// OnByDefault: every analyzer the check needs is in the default set (event checks also
	// work from the platform's events alone).
	OnByDefault bool `json:"on_by_default"`
	// Missing are the analyzers the check needs that the set lacks.
	Missing []string `json:"missing_analyzers,omitempty"`
	// Models maps each analyzer the check needs to its model version ("" when unknown).
	Models map[string]string `json:"models,omitempty"`
}

// List describes every check against an analyzer set (names) and the versions of the
// analyzers built from it (analyzer name → version; may be nil when models are not installed).
func List(analyzers []string, versions map[string]string) []Listing {
	out := make([]Listing, 0, len(checks))
	for _, c := range checks {
		l := Listing{Check: c, Models: map[string]string{}}
		for _, a := range c.Analyzers {
			if !slices.Contains(analyzers, a) {
				l.Missing = append(l.Missing, a)
			}
			l.Models[a] = versions[a]
		}
		l.OnByDefault = len(l.Missing) == 0 || c.Input == InputEvents
		out = append(out, l)
	}
	return out
}

// WriteText prints the listing for people: one block per check.
func WriteText(w io.Writer, ls []Listing) {
	for _, l := range ls {
		on := "on"
		if !l.OnByDefault {
			on = "off (missing analyzers: " + strings.Join(l.Missing, ", ") + ")"
		}
		fmt.Fprintf(w, "%s (%s, %s): %s\n", l.Name, l.Input, on, l.Doc)
		for _, f := range l.Flags {
			fmt.Fprintf(w, "  flag %-22s %-9s weight %.2f  %s\n", f.Type, f.Severity, f.Weight, f.Doc)
		}
		for _, s := range l.Settings {
			fmt.Fprintf(w, "  setting %-28s %s\n", s.Key, settingRange(s))
		}
		for _, a := range l.Analyzers {
			v := l.Models[a]
			if v == "" {
				v = "(version unknown: models not loaded)"
			}
			fmt.Fprintf(w, "  analyzer %-13s %s\n", a, v)
		}
		if l.DecidedBy != "" {
			fmt.Fprintf(w, "  precision counted for the model of analyzer %s\n", l.DecidedBy)
		}
	}
	fmt.Fprintln(w, "engine settings (every frame check):")
	for _, s := range engineSettings {
		fmt.Fprintf(w, "  setting %-28s %s\n", s.Key, settingRange(s))
	}
}

// Markdown is the README's table of checks and flag types (a test keeps the README equal).
func Markdown() string {
	var b strings.Builder
	b.WriteString("| check | flag type | severity | weight | per-exam settings (default, range) | analyzers |\n")
	b.WriteString("|---|---|---|---|---|---|\n")
	for _, c := range checks {
		var sets []string
		for _, s := range c.Settings {
			sets = append(sets, "`"+s.Key+"` "+settingRange(s))
		}
		analyzers := strings.Join(c.Analyzers, ", ")
		if analyzers == "" {
			analyzers = "(events)"
		}
		for i, f := range c.Flags {
			name, settings, an := "`"+c.Name+"`", strings.Join(sets, "; "), analyzers
			if i > 0 {
				name, settings, an = "", "", ""
			}
			fmt.Fprintf(&b, "| %s | `%s` | %s | %.2f | %s | %s |\n", name, f.Type, f.Severity, f.Weight, settings, an)
		}
	}
	return b.String()
}

func settingRange(s Setting) string {
	def := fmt.Sprintf("%g %s", s.Default, s.Unit)
	if s.ZeroMeans != "" {
		def = s.ZeroMeans
	}
	return fmt.Sprintf("%s, %g–%g", def, s.Min, s.Max)
}

// OpenAPISettings is the exam-settings request schema's properties in api/openapi.yaml (between
// its "# checks:begin" and "# checks:end" comments; a test keeps the document equal to this):
// the flag types a check can switch off or re-weight, and every declared setting with its unit,
// range and default.
func OpenAPISettings() string {
	const ind = "                "
	var b strings.Builder
	types := FlagTypes()
	fmt.Fprintf(&b, "%sdisabled:\n%s  type: array\n%s  description: flag types whose check is off\n%s  items:\n%s    type: string\n%s    enum: [%s]\n",
		ind, ind, ind, ind, ind, ind, strings.Join(types, ", "))
	fmt.Fprintf(&b, "%sweights:\n%s  type: object\n%s  description: risk weight per flag type (0–1) instead of its default\n%s  additionalProperties: false\n%s  properties:\n",
		ind, ind, ind, ind, ind)
	for _, t := range types {
		fmt.Fprintf(&b, "%s    %s: {type: number, minimum: 0, maximum: 1}\n", ind, t)
	}
	for _, s := range Settings() {
		doc := s.Doc
		if s.ZeroMeans != "" {
			doc += " 0 = " + s.ZeroMeans + "."
		} else {
			doc += fmt.Sprintf(" Default %g; 0 = the default.", s.Default)
		}
		doc += fmt.Sprintf(" Allowed: 0 or %g–%g.", s.Min, s.Max)
		fmt.Fprintf(&b, "%s%s: {type: number, maximum: %g, anyOf: [{enum: [0]}, {minimum: %g}], x-unit: %s, description: %q}\n",
			ind, s.Key, s.Max, s.Min, s.Unit, doc)
	}
	return b.String()
}

// OpenAPIFlagTypes is the Flag schema's type enum in api/openapi.yaml.
func OpenAPIFlagTypes() string {
	return "          enum: [" + strings.Join(FlagTypes(), ", ") + "]\n"
}
