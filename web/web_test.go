package web

import (
	"html/template"
	"strings"
	"testing"

	"proctor/rules"
)

// Both languages carry every string, and every flag type the rules raise has a name in each.
func TestStringsComplete(t *testing.T) {
	en, zh := Strings("en"), Strings("zh")
	if len(en) < 100 {
		t.Fatalf("only %d English strings", len(en))
	}
	for k := range en {
		if zh[k] == "" {
			t.Errorf("zh lacks %q", k)
		}
	}
	for k := range zh {
		if en[k] == "" {
			t.Errorf("en lacks %q", k)
		}
	}
	for _, typ := range rules.FlagTypes() {
		if en["flag."+typ] == "" || zh["flag."+typ] == "" {
			t.Errorf("flag type %s has no name in web/static/i18n.json (add flag.%s in en and zh)", typ, typ)
		}
	}
	for _, set := range rules.Settings() {
		if en["settings."+set.Key] == "" || zh["settings."+set.Key] == "" {
			t.Errorf("setting %s has no label in web/static/i18n.json (add settings.%s in en and zh)", set.Key, set.Key)
		}
	}
	for _, ph := range []string{rules.PhaseRegistered, rules.PhaseLogin, rules.PhasePreparation, rules.PhaseWaiting,
		rules.PhaseAnswering, rules.PhaseEnded, rules.PhaseClosed} {
		if en["phase."+ph] == "" {
			t.Errorf("phase %s has no name", ph)
		}
	}
}

func TestLang(t *testing.T) {
	for _, c := range []struct{ choice, accept, want string }{
		{"zh", "", "zh"}, {"", "zh-CN,zh;q=0.9", "zh"}, {"", "fr-FR, en;q=0.5", "en"}, {"xx", "", "en"}, {"", "", "en"},
	} {
		if got := Lang(c.choice, c.accept); got != c.want {
			t.Errorf("Lang(%q, %q) = %s, want %s", c.choice, c.accept, got, c.want)
		}
	}
}

func TestReportTemplateParses(t *testing.T) {
	funcs := template.FuncMap{"tk": func(p, k string) string { return k }, "rel": func(int64) string { return "" },
		"dur": func(a, b int64) string { return "" }, "when": func(any) string { return "" }}
	if _, err := ReportTemplate("zh", funcs); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(T("zh", "report.title"), "报告") {
		t.Errorf("zh report title %q", T("zh", "report.title"))
	}
}
