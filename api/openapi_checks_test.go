package api

import (
	"strings"
	"testing"

	"proctor/rules"
)

// The OpenAPI document's flag types and exam-settings schema are the checks' declarations: a
// new check, flag type or setting that the document lacks fails here, printing what to paste.
func TestOpenAPIMatchesChecks(t *testing.T) {
	doc := string(openAPI)
	if want := rules.OpenAPIFlagTypes(); !strings.Contains(doc, want) {
		t.Errorf("the Flag schema's type enum in api/openapi.yaml must read:\n%s", want)
	}
	const begin, end = "# checks:begin (rules.OpenAPISettings)\n", "# checks:end\n"
	i, j := strings.Index(doc, begin), strings.Index(doc, end)
	if i < 0 || j < i {
		t.Fatalf("api/openapi.yaml lacks the %q … %q block in the exam settings schema", begin, end)
	}
	// The markers are comment lines indented like the properties; compare what lies between.
	got := doc[i+len(begin) : strings.LastIndex(doc[:j], "\n")+1]
	if want := rules.OpenAPISettings(); got != want {
		t.Errorf("the exam settings schema in api/openapi.yaml differs from the declarations; it must read:\n%s", want)
	}
}
