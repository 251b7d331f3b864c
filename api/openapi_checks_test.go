package api

import (
	"flag"
	"os"
	"regexp"
	"strings"
	"testing"

	"proctor/rules"
)

// -update rewrites the generated parts of api/openapi.yaml from the declarations
// (go test ./api -run TestOpenAPIMatchesChecks -args -update).
var update = flag.Bool("update", false, "rewrite api/openapi.yaml's generated parts from the checks' declarations")

// flagTypeEnum is the Flag schema's type enum line (10 spaces of indentation, A4_… first).
var flagTypeEnum = regexp.MustCompile(`(?m)^          enum: \[A4_[^\]]*\]\n`)

// The OpenAPI document's flag types and exam-settings schema are the checks' declarations: a
// new check, flag type or setting that the document lacks fails here, printing what to paste.
func TestOpenAPIMatchesChecks(t *testing.T) {
	doc := string(openAPI)
	if *update {
		doc = updateOpenAPI(t, doc)
	}
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

// updateOpenAPI writes the declarations into api/openapi.yaml and returns the new document.
func updateOpenAPI(t *testing.T, doc string) string {
	if n := len(flagTypeEnum.FindAllStringIndex(doc, -1)); n != 1 {
		t.Fatalf("-update: found %d Flag type enum lines, want 1", n)
	}
	doc = flagTypeEnum.ReplaceAllLiteralString(doc, rules.OpenAPIFlagTypes())
	const begin, end = "# checks:begin (rules.OpenAPISettings)\n", "# checks:end\n"
	i, j := strings.Index(doc, begin), strings.Index(doc, end)
	if i < 0 || j < i {
		t.Fatalf("api/openapi.yaml lacks the %q … %q block", begin, end)
	}
	k := strings.LastIndex(doc[:j], "\n") + 1
	doc = doc[:i+len(begin)] + rules.OpenAPISettings() + doc[k:]
	if err := os.WriteFile("openapi.yaml", []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	return doc
}
