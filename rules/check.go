package rules

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"proctor/analyzers"
)

// A Check is the unit reviewers and exam admins think in ("mask", "phone visible", "room scan").
// Everything about it is declared in one file that registers it from init(): the analyzers it
// needs, what it keeps of each frame, its rules over time, its flag types with their severity
// and risk weight, its per-exam settings, and which model decides its flags. The engine, the
// settings API and page, `proctor checks list`, precision per model version and the reviewer
// page's labels all read these declarations; none of them names a check.
type Check struct {
	// Name identifies the check ("mask").
	Name string `json:"name"`
	// Doc says in a sentence what the check enforces (from the exam rules, DESIGN.md §1).
	Doc string `json:"doc"`
	// Input is what the check's rules read: frames, exam-flow events, or audio.
	Input Input `json:"input"`
	// Analyzers are the frame analyzers whose observations the check reads (analyzers package,
	// each configured by its own section of analyzers.Config). Without them it raises nothing.
	Analyzers []string `json:"analyzers,omitempty"`
	// DecidedBy is the analyzer whose model version decides the check's flags: a flag's
	// precision counts for that model version (the first model the analyzer names in a flag's
	// model_version). Empty: the flags come from rules alone ("rules").
	DecidedBy string `json:"decided_by,omitempty"`
	// Flags are the flag types the check raises.
	Flags []FlagType `json:"flags"`
	// Settings are the check's per-exam settings.
	Settings []Setting `json:"settings,omitempty"`
	// Labels are the attributes a reviewer can correct on the check's flags (store.Label
	// "attribute" kinds: mask, occluded, earphones, persons); they become training data.
	Labels []string `json:"labels,omitempty"`

	// Observe keeps what the check's frame rules need of one frame's observation: a few named
	// numbers, stored with the frame. nil (or an empty Signal) when the frame says nothing for
	// this check (its analyzer did not run, no face). Frame checks only.
	Observe func(obs *analyzers.Observation, camera string, p Params) Signal `json:"-"`
	// Rules are the check's rules over runs of frames, with the settings in force. Frame checks.
	Rules func(p Params) []FrameRule `json:"-"`
	// Timing evaluates the check's exam-flow rules over a session's events and evidence frames;
	// it calls raise for each flag that should exist now. Event checks.
	Timing func(v *TimingView, p Params, raise func(FlagSpec)) `json:"-"`
	// Deadlines are the moments (ms) after which Timing may change its mind without new input
	// (the start, the end of an upload window): the scheduler wakes the session then.
	Deadlines func(v *TimingView, p Params) []int64 `json:"-"`
}

// Input is what a check's rules read.
type Input string

// Inputs of checks.
const (
	InputFrames Input = "frames" // analysed camera frames (runs over time)
	InputEvents Input = "events" // exam-flow events from the platform, plus evidence frames
	InputAudio  Input = "audio"  // speech, the closing phrase and answer segmentation
)

// FlagType is one kind of flag a check raises.
type FlagType struct {
	Type     string  `json:"type"`
	Severity string  `json:"severity"` // store.SeverityAlert or store.SeverityDetection
	Weight   float64 `json:"weight"`   // default risk weight: how likely an unreviewed flag means a breach
	Doc      string  `json:"doc"`
}

// Unit of a setting's value.
type Unit string

// Units of settings. Durations are declared in the unit an admin thinks in; Params.Duration
// converts.
const (
	Seconds Unit = "s"
	Minutes Unit = "min"
	Degrees Unit = "deg"
	Score   Unit = "score" // a model score or similarity (0..1), or a measure of the image
	Pixels  Unit = "px"
	Count   Unit = "count"
)

// Setting is one per-exam setting: the settings API validates against it, the settings page
// builds its form from it, and the check's rules read its value from Params.
type Setting struct {
	Key     string  `json:"key"` // JSON key in the exam's settings, e.g. "face_absent_after_sec"
	Unit    Unit    `json:"unit"`
	Default float64 `json:"default"`
	Min     float64 `json:"min"`
	Max     float64 `json:"max"`
	Doc     string  `json:"doc"`
	// ZeroMeans, when set, makes 0 the default and says what it stands for (e.g. "the model's
	// calibrated threshold"); the rules then decide per frame.
	ZeroMeans string `json:"zero_means,omitempty"`
}

// valid says what is wrong with v for this setting; 0 always means "the default".
func (s Setting) valid(v float64) error {
	if v != 0 && (math.IsNaN(v) || v < s.Min || v > s.Max) {
		return fmt.Errorf("%s must be between %v and %v (or 0 for the default), got %v", s.Key, s.Min, s.Max, v)
	}
	return nil
}

// Params are the values in force of every declared setting, by key, in the setting's unit.
type Params map[string]float64

// Value is the setting's value. Reading a key no check declares is a programming error and
// panics (TestChecksReadOnlyDeclaredSettings runs every rule to catch it).
func (p Params) Value(key string) float64 {
	if _, ok := settingByKey[key]; !ok {
		panic("rules: setting " + key + " is not declared by any check")
	}
	return p[key]
}

// Duration is a Seconds or Minutes setting as a time.Duration.
func (p Params) Duration(key string) time.Duration {
	unit := time.Second
	if settingByKey[key].Unit == Minutes {
		unit = time.Minute
	}
	return time.Duration(p.Value(key) * float64(unit))
}

// Signal is what one check keeps of one frame: named numbers, stored with the frame
// (store.FrameResult.Signals) and read back by its rules over time. A key that is absent was
// not measured on that frame, which is not the same as 0.
type Signal map[string]float32

// Get returns the value under key and whether it was measured.
func (s Signal) Get(key string) (float32, bool) {
	v, ok := s[key]
	return v, ok
}

// The registry. It is filled by the checks' init functions and read-only afterwards.
var (
	checks       []Check
	checkOfFlag  = map[string]*Check{}
	settingByKey = map[string]Setting{}
)

// Register adds a check. It is called from init() of the check's file; a duplicate name, flag
// type or setting key is a programming error and panics at start-up.
func Register(c Check) {
	if c.Name == "" || len(c.Flags) == 0 {
		panic("rules.Register: a check needs a name and at least one flag type")
	}
	for _, o := range checks {
		if o.Name == c.Name {
			panic("rules.Register: check " + c.Name + " registered twice")
		}
	}
	switch c.Input {
	case InputFrames:
		if c.Observe == nil || c.Rules == nil {
			panic("rules.Register: frame check " + c.Name + " needs Observe and Rules")
		}
	case InputEvents:
		if c.Timing == nil {
			panic("rules.Register: event check " + c.Name + " needs Timing")
		}
	case InputAudio:
	default:
		panic("rules.Register: check " + c.Name + " has no valid Input")
	}
	checks = append(checks, c)
	sort.Slice(checks, func(i, j int) bool { return checks[i].Name < checks[j].Name })
	clear(checkOfFlag)
	for i := range checks {
		for _, f := range checks[i].Flags {
			if o, dup := checkOfFlag[f.Type]; dup {
				panic("rules.Register: flag type " + f.Type + " raised by both " + o.Name + " and " + checks[i].Name)
			}
			checkOfFlag[f.Type] = &checks[i]
		}
	}
	for _, s := range c.Settings {
		declare(s)
	}
}

func declare(s Setting) {
	if _, dup := settingByKey[s.Key]; dup {
		panic("rules: setting " + s.Key + " declared twice")
	}
	if s.ZeroMeans == "" && (s.Default < s.Min || s.Default > s.Max) {
		panic("rules: setting " + s.Key + " has its default outside its range")
	}
	settingByKey[s.Key] = s
}

// SettingMaxFrameGap: frames further apart than this do not continue a run of any frame check,
// because a network outage is not evidence of absence.
const SettingMaxFrameGap = "max_frame_gap_sec"

// engineSettings belong to the engine, not to one check: they apply to every frame check.
var engineSettings = []Setting{{Key: SettingMaxFrameGap, Unit: Seconds, Default: 10, Min: 1, Max: 600,
	Doc: "Frames further apart than this do not continue a run (an outage is not evidence)."}}

func init() {
	for _, s := range engineSettings {
		declare(s)
	}
}

// EngineSettings are the settings every frame check shares.
func EngineSettings() []Setting { return slices.Clone(engineSettings) }

// Checks returns every registered check, sorted by name.
func Checks() []Check { return slices.Clone(checks) }

// CheckOf returns the check that raises flagType.
func CheckOf(flagType string) (Check, bool) {
	c, ok := checkOfFlag[flagType]
	if !ok {
		return Check{}, false
	}
	return *c, true
}

// FlagTypes lists every flag type the checks raise, sorted: the settings page offers a switch
// and a weight for each.
func FlagTypes() []string { return slices.Sorted(maps.Keys(checkOfFlag)) }

// Settings lists every declared per-exam setting, sorted by key.
func Settings() []Setting {
	out := slices.Collect(maps.Values(settingByKey))
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// DefaultParams are the declared defaults of every setting.
func DefaultParams() Params {
	p := make(Params, len(settingByKey))
	for k, s := range settingByKey {
		p[k] = s.Default
	}
	return p
}

// DefaultWeights are the declared default risk weights of every flag type.
func DefaultWeights() map[string]float64 {
	w := make(map[string]float64, len(checkOfFlag))
	for t, c := range checkOfFlag {
		for _, f := range c.Flags {
			if f.Type == t {
				w[t] = f.Weight
			}
		}
	}
	return w
}

// Severity is the declared severity of a flag type (detection for an unknown one).
func Severity(flagType string) string {
	if c, ok := checkOfFlag[flagType]; ok {
		for _, f := range c.Flags {
			if f.Type == flagType && f.Severity != "" {
				return f.Severity
			}
		}
	}
	return "detection"
}

// flagTypesOf lists the flag types of the checks with the given input.
func flagTypesOf(in Input) []string {
	var out []string
	for _, c := range checks {
		if c.Input == in {
			for _, f := range c.Flags {
				out = append(out, f.Type)
			}
		}
	}
	return out
}

// ModelOfFlag extracts the model version (name@version) that decided a flag, from the flag's
// model_version string ("analyzer=name@version thresholds,analyzer=…"): the first model of the
// check's DecidedBy analyzer ("phrase=phrase-gaiti@1+oww-melspectrogram@1+…" names the retrained
// head first). "rules" when no model decides the type or the string does not mention it.
func ModelOfFlag(flagType, modelVersion string) string {
	c, ok := checkOfFlag[flagType]
	if !ok || c.DecidedBy == "" {
		return "rules"
	}
	return modelOfAnalyzer(c.DecidedBy, modelVersion)
}

// modelOfAnalyzer finds analyzer's first model in a model_version string.
func modelOfAnalyzer(analyzer, modelVersion string) string {
	for part := range strings.SplitSeq(modelVersion, ",") {
		name, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if ok && name == analyzer {
			id, _, _ := strings.Cut(v, " ")
			id, _, _ = strings.Cut(id, "+") // "phrase-gaiti@1+oww-…": the head decides
			return id
		}
	}
	return "rules"
}
