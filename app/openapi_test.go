package app

import (
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestOpenAPICoversRoutes keeps api/openapi.yaml complete: every route the app serves is in the
// document and every operation of the document is served, and each operation lists the status
// codes that every route of its kind can answer (the text checks' 400, 401/403 behind a key, 404
// with a path parameter, 413 with a body, 431, 503 when the database is down). Schemathesis
// (scripts/schemathesis.sh) then checks the rest against the running service.
func TestOpenAPICoversRoutes(t *testing.T) {
	a := startAPI(t, "", nil)
	resp, err := http.Get(a.URL + "/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	type operation struct {
		Security    *[]map[string][]string `yaml:"security"`
		RequestBody any                    `yaml:"requestBody"`
		Responses   map[string]any         `yaml:"responses"`
	}
	var doc struct {
		Paths map[string]map[string]yaml.Node `yaml:"paths"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	param := regexp.MustCompile(`\{[^}]*\}|:[A-Za-z]+`)
	norm := func(p string) string { return param.ReplaceAllString(p, "{}") }
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method, node := range ops {
			if method == "parameters" {
				continue
			}
			key := strings.ToUpper(method) + " " + norm(path)
			documented[key] = true
			var op operation
			if err := node.Decode(&op); err != nil {
				t.Fatalf("%s: %v", key, err)
			}
			want := []string{"431"}
			if strings.HasPrefix(path, "/v1/") {
				want = append(want, "400", "503")
				if op.Security == nil || len(*op.Security) > 0 {
					want = append(want, "401", "403")
				}
				if strings.Contains(path, "{") {
					want = append(want, "404")
				}
				if op.RequestBody != nil {
					want = append(want, "413")
				}
			}
			for _, code := range want {
				if _, ok := op.Responses[code]; !ok {
					t.Errorf("%s %s: responses lack %s", strings.ToUpper(method), path, code)
				}
			}
		}
	}
	served := map[string]bool{}
	for _, r := range a.http.GetRoutes(true) {
		if r.Method == http.MethodHead || r.Path == "/" {
			continue // HEAD comes with every GET; / only redirects to the page
		}
		path := strings.Replace(r.Path, "/ui/*", "/ui/", 1)
		key := r.Method + " " + norm(path)
		served[key] = true
		if !documented[key] {
			t.Errorf("route %s %s is not in api/openapi.yaml", r.Method, r.Path)
		}
	}
	for _, key := range slices.Sorted(func(yield func(string) bool) {
		for k := range documented {
			if !yield(k) {
				return
			}
		}
	}) {
		if !served[key] {
			t.Errorf("api/openapi.yaml documents %s, which no route serves", key)
		}
	}
}
