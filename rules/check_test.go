package rules

import (
	"encoding/json"
	"flag"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"proctor/analyzers"
	"proctor/store"
)

var flagTypeLike = regexp.MustCompile(`^[A-Z][A-Z0-9_]{3,}$`)

// Every flag type the rules name is raised by a registered check: a string constant that looks
// like a flag type and is not declared by a check fails here.
func TestEveryFlagTypeHasACheck(t *testing.T) {
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, ".", func(fi os.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, 0)
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, pkg := range pkgs {
		ast.Inspect(pkg, func(n ast.Node) bool {
			vs, ok := n.(*ast.ValueSpec)
			if !ok {
				return true
			}
			for _, v := range vs.Values {
				lit, ok := v.(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					continue
				}
				s, _ := strconv.Unquote(lit.Value)
				if !flagTypeLike.MatchString(s) {
					continue
				}
				found++
				if _, ok := CheckOf(s); !ok {
					t.Errorf("flag type %s (%s) is raised by no registered check: declare it in its check's Flags", s, fset.Position(lit.Pos()))
				}
			}
			return true
		})
	}
	if found < len(FlagTypes()) {
		t.Errorf("found %d flag-type constants, fewer than the %d registered: the scan is broken", found, len(FlagTypes()))
	}
}

// Every check is complete: flag types with a severity and a weight in 0..1, settings with a
// unit, a doc and a sane range; frame checks have signals and rules that only name their own
// flag types; DecidedBy is one of the check's analyzers.
func TestCheckDeclarations(t *testing.T) {
	if len(Checks()) < 10 {
		t.Fatalf("only %d checks registered", len(Checks()))
	}
	for _, c := range Checks() {
		if c.Doc == "" {
			t.Errorf("%s: no doc", c.Name)
		}
		if c.DecidedBy != "" && !slices.Contains(c.Analyzers, c.DecidedBy) {
			t.Errorf("%s: decided by %s, which is not among its analyzers %v", c.Name, c.DecidedBy, c.Analyzers)
		}
		own := map[string]bool{}
		for _, f := range c.Flags {
			own[f.Type] = true
			if f.Severity != store.SeverityAlert && f.Severity != store.SeverityDetection {
				t.Errorf("%s: severity %q", f.Type, f.Severity)
			}
			if f.Weight <= 0 || f.Weight > 1 || f.Doc == "" {
				t.Errorf("%s: weight %v, doc %q", f.Type, f.Weight, f.Doc)
			}
		}
		for _, s := range c.Settings {
			if s.Unit == "" || s.Doc == "" || s.Min <= 0 || s.Max <= s.Min {
				t.Errorf("%s: setting %+v", c.Name, s)
			}
		}
		if c.Input == InputFrames {
			for _, r := range c.Rules(DefaultParams()) {
				if !own[r.Type] {
					t.Errorf("%s: rule raises %s, which the check does not declare", c.Name, r.Type)
				}
				if r.After <= 0 || r.Holds == nil || r.Confidence == nil {
					t.Errorf("%s: rule %s incomplete", c.Name, r.Type)
				}
			}
		}
	}
}

// Rules read only declared settings (Params panics otherwise): run every check's rules and
// timing on frames and a session where each of them has something to judge.
func TestChecksReadOnlyDeclaredSettings(t *testing.T) {
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("a check reads an undeclared setting: %v", r)
		}
	}()
	eng := New(Config{})
	yaw, pitch := float32(80), float32(0)
	obs := &analyzers.Observation{TopFaceScore: 0.9, Persons: ptr(2), Phones: ptr(1),
		Faces: []analyzers.Face{{Score: 0.9, Yaw: &yaw, Pitch: &pitch, Match: &analyzers.Match{Similarity: 0.1, Threshold: 0.5},
			Mask: &analyzers.Attribute{Score: 0.9}, Occluded: &analyzers.Attribute{Score: 0.9}}},
		Sheet: &analyzers.SheetObservation{Present: true, Writing: true, WritingScore: 0.9}}
	for _, cam := range []string{analyzers.CameraMain, analyzers.CameraEvidence} {
		js, err := eng.Observe(obs, cam)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parseFrame(store.FrameSignals{Signals: js})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range eng.frameRules() {
			if r.Holds(&f) {
				r.Confidence(&f)
				if r.Measure != nil {
					r.Measure.Value(&f)
				}
			}
		}
	}
	start := time.Now()
	sess := &store.Session{ScheduledStart: start, DurationSec: 600, Attachments: 2}
	events := []store.Event{{Type: "face_login", CapturedAtMs: start.Add(-2 * time.Hour).UnixMilli()},
		{Type: "exam_entered", CapturedAtMs: start.Add(time.Minute).UnixMilli()},
		{Type: "evidence_recording_stopped", CapturedAtMs: start.Add(2 * time.Minute).UnixMilli()}}
	v := newTimingView(sess, events, []Frame{{CapturedAtMs: start.UnixMilli()}, {CapturedAtMs: start.Add(5 * time.Minute).UnixMilli()}},
		start.Add(3*time.Hour).UnixMilli())
	if got := eng.Timing(v); len(got) < 5 {
		t.Errorf("timing raised %d flags on a session that breaks five rules", len(got))
	}
	eng.nextDeadline(v)
}

// An exam's settings accept declared keys only, and keep their JSON form.
func TestExamSettingsJSON(t *testing.T) {
	var s ExamSettings
	if err := json.Unmarshal([]byte(`{"face_absent_after_sec": 8, "disabled": ["MASK"], "weights": {"MASK": 0.5}}`), &s); err != nil {
		t.Fatal(err)
	}
	if s.Values[SettingFaceAbsentAfter] != 8 || s.Disabled[0] != Mask || s.Weights[Mask] != 0.5 {
		t.Errorf("decoded %+v", s)
	}
	b, _ := json.Marshal(s)
	if string(b) != `{"disabled":["MASK"],"face_absent_after_sec":8,"weights":{"MASK":0.5}}` {
		t.Errorf("encoded %s", b)
	}
	if err := json.Unmarshal([]byte(`{"face_absent_after_secs": 8}`), &s); err == nil || !strings.Contains(err.Error(), "unknown field") {
		t.Errorf("an undeclared key must be refused, got %v", err)
	}
}

// The README's table of checks is the one the declarations print (`proctor checks list
// --markdown`), so the two cannot drift.
// -update rewrites README.md's checks table (go test ./rules -run TestReadmeChecksTable -args -update).
var update = flag.Bool("update", false, "rewrite README.md's checks table from the declarations")

func TestReadmeChecksTable(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- checks:begin (proctor checks list --markdown) -->\n", "<!-- checks:end -->"
	s := string(b)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatalf("README.md lacks the %q … %q block", begin, end)
	}
	if *update {
		s = s[:i+len(begin)] + Markdown() + s[j:]
		if err := os.WriteFile("../README.md", []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		j = i + len(begin) + len(Markdown())
	}
	if got, want := s[i+len(begin):j], Markdown(); got != want {
		t.Errorf("README.md's checks table differs from the declarations; replace it with the output of `proctor checks list --markdown`:\n%s", want)
	}
}

func ptr[T any](v T) *T { return &v }
