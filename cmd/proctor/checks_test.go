package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"proctor/rules"
)

// `proctor checks list --json` lists every flag type the checks declare (the README's table is
// generated from the same declarations, rules.TestReadmeChecksTable), each with its severity,
// weight, settings and the model versions of its analyzers.
func TestChecksListJSON(t *testing.T) {
	cmd := exec.Command(os.Args[0], "checks", "list", "--json")
	cmd.Env = append(os.Environ(), envRunCLI+"=1")
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	if err := cmd.Run(); err != nil {
		t.Fatalf("checks list --json: %v", err)
	}
	var out struct {
		Checks []struct {
			Name  string `json:"name"`
			Flags []struct {
				Type     string  `json:"type"`
				Severity string  `json:"severity"`
				Weight   float64 `json:"weight"`
			} `json:"flags"`
			Settings []struct {
				Key string `json:"key"`
			} `json:"settings"`
			Models map[string]string `json:"models"`
		} `json:"checks"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("%v\n%s", err, stdout.String())
	}
	var types []string
	for _, c := range out.Checks {
		for _, f := range c.Flags {
			types = append(types, f.Type)
			if f.Severity == "" || f.Weight <= 0 {
				t.Errorf("%s/%s: severity %q weight %v", c.Name, f.Type, f.Severity, f.Weight)
			}
		}
		if c.Name == "faces" && !strings.Contains(c.Models["faces"], "@") {
			t.Errorf("faces check: model versions %v, want the face detector's name@version", c.Models)
		}
	}
	slices.Sort(types)
	if want := rules.FlagTypes(); !slices.Equal(types, want) {
		t.Errorf("listed flag types %v, want %v", types, want)
	}
}
