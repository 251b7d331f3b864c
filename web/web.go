// Package web holds the reviewer page: static files (HTML, CSS, plain JavaScript, no build
// step) embedded in the binary, its UI strings in both languages (static/i18n.json, the one
// place every string lives, for the page and the server-rendered report alike) and the report
// template.
package web

import (
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"strings"
)

//go:embed static
var static embed.FS

//go:embed report.html
var reportHTML string

// Static is the page's files, rooted at static/.
func Static() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return sub
}

// Languages the page and the report are written in; the first is the default.
var Languages = []string{"en", "zh"}

var strings_ = func() map[string]map[string]string {
	data, err := static.ReadFile("static/i18n.json")
	if err != nil {
		panic(err)
	}
	var m map[string]map[string]string
	if err := json.Unmarshal(data, &m); err != nil {
		panic(fmt.Sprintf("web/static/i18n.json: %v", err))
	}
	return m
}()

// T returns the UI string key in lang, falling back to English and then to the key itself.
func T(lang, key string) string {
	if s, ok := strings_[lang][key]; ok {
		return s
	}
	if s, ok := strings_["en"][key]; ok {
		return s
	}
	return key
}

// Strings returns every UI string of lang (for tests: both languages must have the same keys).
func Strings(lang string) map[string]string { return strings_[lang] }

// Lang picks a supported language: the explicit choice if valid, else the first supported one in
// an Accept-Language header, else English.
func Lang(choice, acceptLanguage string) string {
	for _, l := range Languages {
		if choice == l {
			return l
		}
	}
	for _, part := range strings.Split(acceptLanguage, ",") {
		tag := strings.ToLower(strings.TrimSpace(strings.SplitN(part, ";", 2)[0]))
		for _, l := range Languages {
			if tag == l || strings.HasPrefix(tag, l+"-") {
				return l
			}
		}
	}
	return Languages[0]
}

// ReportTemplate parses the printable session report with the given template functions (the
// report's data and helpers come from the api package; "t" is added here).
func ReportTemplate(lang string, funcs template.FuncMap) (*template.Template, error) {
	f := template.FuncMap{"t": func(key string) string { return T(lang, key) }}
	for k, v := range funcs {
		f[k] = v
	}
	return template.New("report").Funcs(f).Parse(reportHTML)
}
