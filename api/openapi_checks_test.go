package api

import (
	"maps"
	"slices"
	"testing"

	"go.yaml.in/yaml/v3"

	"proctor/rules"
)

// The OpenAPI document's flag types and exam-settings schema are the checks' declarations: a
// new check, flag type or setting that the document lacks fails here.
func TestOpenAPIMatchesChecks(t *testing.T) {
	var doc struct {
		Paths      map[string]map[string]yaml.Node `yaml:"paths"`
		Components struct {
			Schemas map[string]struct {
				Properties map[string]struct {
					Enum []string `yaml:"enum"`
				} `yaml:"properties"`
			} `yaml:"schemas"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal(openAPI, &doc); err != nil {
		t.Fatal(err)
	}
	if got, want := slices.Sorted(slices.Values(doc.Components.Schemas["Flag"].Properties["type"].Enum)), rules.FlagTypes(); !slices.Equal(got, want) {
		t.Errorf("Flag.type enum %v, want the registered flag types %v", got, want)
	}

	var put struct {
		RequestBody struct {
			Content map[string]struct {
				Schema struct {
					Properties map[string]struct {
						Maximum    *float64                `yaml:"maximum"`
						Unit       string                  `yaml:"x-unit"`
						Items      struct{ Enum []string } `yaml:"items"`
						Properties map[string]any          `yaml:"properties"`
					} `yaml:"properties"`
				} `yaml:"schema"`
			} `yaml:"content"`
		} `yaml:"requestBody"`
	}
	node := doc.Paths["/v1/exams/{exam}/settings"]["put"]
	if err := node.Decode(&put); err != nil {
		t.Fatal(err)
	}
	props := put.RequestBody.Content["application/json"].Schema.Properties
	declared := map[string]rules.Setting{}
	for _, s := range rules.Settings() {
		declared[s.Key] = s
	}
	if got := slices.Sorted(slices.Values(props["disabled"].Items.Enum)); !slices.Equal(got, rules.FlagTypes()) {
		t.Errorf("settings disabled enum %v, want the registered flag types", got)
	}
	if got := slices.Sorted(maps.Keys(props["weights"].Properties)); !slices.Equal(got, rules.FlagTypes()) {
		t.Errorf("settings weights properties %v, want the registered flag types", got)
	}
	for k, p := range props {
		if k == "disabled" || k == "weights" {
			continue
		}
		s, ok := declared[k]
		switch {
		case !ok:
			t.Errorf("settings schema has %s, which no check declares", k)
		case p.Maximum == nil || *p.Maximum != s.Max || p.Unit != string(s.Unit):
			t.Errorf("settings schema %s: maximum %v unit %q, declared %v %q", k, p.Maximum, p.Unit, s.Max, s.Unit)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(declared)) {
		if _, ok := props[k]; !ok {
			t.Errorf("setting %s is declared but missing from the settings schema in api/openapi.yaml", k)
		}
	}
}
