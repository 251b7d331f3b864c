package api

import (
	"bytes"
	"encoding/base64"
	"encoding/csv"
	"errors"
	"fmt"
	"html/template"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"proctor/rules"
	"proctor/store"
	"proctor/web"
)

// reportFlag is one flag as the report prints it.
type reportFlag struct {
	store.Flag
	Verdict  *store.Verdict
	Evidence template.URL // data: URI of the evidence JPEG, so the printout is self-contained
}

// maxReportImages bounds the evidence images inlined in one report (each is tens of KiB).
const maxReportImages = 40

// getReport renders a session's printable report (HTML; the browser prints it or saves a PDF):
// facts, phases, every flag with its standing verdict and evidence, technical events. ?lang=en|zh.
// Audit-logged as one report view that lists the evidence it showed.
func (s *Server) getReport(c *fiber.Ctx) error {
	if v, ok := queryValue(c, "lang"); ok && !slices.Contains(web.Languages, v) {
		return bad(fiber.StatusBadRequest, "lang must be one of "+strings.Join(web.Languages, ", ")+" (or absent: from Accept-Language)")
	}
	sess, err := s.sessionOf(c)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	flags, err := s.store.SessionFlags(ctx, sess.ID)
	if err != nil {
		return err
	}
	verdicts, err := s.store.SessionVerdicts(ctx, sess.ID)
	if err != nil {
		return err
	}
	events, err := s.store.SessionEvents(ctx, sess.ID)
	if err != nil {
		return err
	}
	standing := map[uint]*store.Verdict{}
	for i := range verdicts {
		if v := &verdicts[i]; !v.Undone {
			standing[v.FlagID] = v
		}
	}
	var counts [3]int
	out := make([]reportFlag, len(flags))
	var shown []uint
	for i, f := range flags {
		out[i] = reportFlag{Flag: f}
		if f.Status != store.StatusOpen {
			out[i].Verdict = standing[f.ID]
		}
		counts[map[string]int{store.StatusOpen: 0, store.StatusConfirmed: 1, store.StatusDismissed: 2}[f.Status]]++
		if len(shown) < maxReportImages {
			ev, err := s.store.GetEvidence(ctx, f.ID)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			if ev != nil && len(ev.JPEG) > 0 {
				out[i].Evidence = template.URL("data:image/jpeg;base64," + base64.StdEncoding.EncodeToString(ev.JPEG))
				shown = append(shown, f.ID)
			}
		}
	}
	phases := rules.Phases(sess, events)
	var technical []timelineEvent
	for _, e := range events {
		if rules.EventClass(e.Type) == rules.ClassTechnical {
			technical = append(technical, timelineEvent{Seq: e.Seq, Type: e.Type, Class: rules.ClassTechnical,
				Phase: rules.PhaseAt(phases, e.CapturedAtMs), CapturedAt: e.CapturedAtMs})
		}
	}

	lang := web.Lang(c.Query("lang"), c.Get(fiber.HeaderAcceptLanguage))
	t := func(key string) string { return web.T(lang, key) }
	start := sess.ScheduledStart.UnixMilli()
	tmpl, err := web.ReportTemplate(lang, template.FuncMap{
		"tk": func(prefix, key string) string {
			if v := web.T(lang, prefix+key); v != prefix+key {
				return v
			}
			return key
		},
		"rel":  func(ms int64) string { return relTime(ms - start) },
		"dur":  func(a, b int64) string { return relTime(b - a) },
		"when": func(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05") },
	})
	if err != nil {
		return err
	}
	p := principal(c)
	data := map[string]any{
		"Lang": lang, "Session": sess, "Flags": out, "Phases": phases, "Technical": technical,
		"DurationMin": strings.ReplaceAll(t("report.minutes"), "{n}", strconv.Itoa(sess.DurationSec/60)),
		"Counts": strings.NewReplacer("{open}", strconv.Itoa(counts[0]), "{confirmed}", strconv.Itoa(counts[1]),
			"{dismissed}", strconv.Itoa(counts[2])).Replace(t("report.flagsCount")),
		"Generated": strings.NewReplacer("{at}", time.Now().Format("2006-01-02 15:04:05"), "{who}", p.Actor).
			Replace(t("report.generated")),
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, data); err != nil {
		return err
	}
	if err := s.audit(c, "report.view", "session:"+sess.ID, map[string]any{"evidence_shown": shown, "lang": lang}); err != nil {
		return err
	}
	setPageHeaders(c)
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Send(buf.Bytes())
}

// relTime formats a duration in ms as [−]m:ss, or h:mm:ss past an hour.
func relTime(ms int64) string {
	sign := ""
	if ms < 0 {
		sign, ms = "−", -ms
	}
	sec := ms / 1000
	if sec >= 3600 {
		return fmt.Sprintf("%s%d:%02d:%02d", sign, sec/3600, sec/60%60, sec%60)
	}
	return fmt.Sprintf("%s%d:%02d", sign, sec/60, sec%60)
}

// maxExportRows bounds one CSV export; narrow by exam or dates for more.
const maxExportRows = 100_000

// exportVerdicts returns the organisation's verdicts as CSV (scope data): exam_id, from, to
// (dates of the verdict, inclusive). Audit-logged with the filter and the row count.
// dateRange reads the query's from and to dates (YYYY-MM-DD, local time, both inclusive) as
// [from, to+1 day); absent ones stay zero.
func dateRange(c *fiber.Ctx) (from, to time.Time, err error) {
	for _, d := range []struct {
		name string
		t    *time.Time
	}{{"from", &from}, {"to", &to}} {
		if *d.t, err = queryDay(c, d.name); err != nil {
			return from, to, err
		}
	}
	if !to.IsZero() {
		to = to.AddDate(0, 0, 1)
	}
	return from, to, nil
}

func (s *Server) exportVerdicts(c *fiber.Ctx) error {
	from, to, err := dateRange(c)
	if err != nil {
		return err
	}
	p := principal(c)
	exam := c.Query("exam_id")
	// Verdict times are stored in UTC.
	rows, err := s.store.ExportVerdicts(c.UserContext(), p.OrgID, exam, from.UTC(), to.UTC(), maxExportRows)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	buf.WriteString("\ufeff") // BOM: spreadsheet programs then read the UTF-8 (Chinese notes) right
	w := csv.NewWriter(&buf)
	w.Write([]string{"verdict_id", "verdict_at", "exam_id", "session_id", "candidate_id", "flag_id", "flag_type",
		"severity", "camera", "phase", "start", "end", "confidence", "model_version", "verdict", "previous_status",
		"undone", "flag_status_now", "note", "reviewer", "batch"})
	ts := func(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339Nano) }
	for _, r := range rows {
		w.Write([]string{strconv.FormatUint(uint64(r.VerdictID), 10), r.CreatedAt.UTC().Format(time.RFC3339),
			cell(r.ExamID), cell(r.SessionID), cell(r.CandidateID), strconv.FormatUint(uint64(r.FlagID), 10), r.FlagType,
			r.Severity, r.Camera, r.Phase, ts(r.StartMs), ts(r.EndMs), strconv.FormatFloat(r.Confidence, 'f', 3, 64),
			cell(r.ModelVersion), r.Verdict, r.Previous, strconv.FormatBool(r.Undone), r.FlagStatus, cell(r.Note),
			cell(r.Reviewer), r.Batch})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return err
	}
	if err := s.audit(c, "export.verdicts", "exam:"+exam, map[string]any{"exam_id": exam,
		"from": c.Query("from"), "to": c.Query("to"), "rows": len(rows)}); err != nil {
		return err
	}
	name := "verdicts"
	if exam != "" {
		name += "-" + safeName(exam)
	}
	c.Set(fiber.HeaderContentType, "text/csv; charset=utf-8")
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="`+name+"-"+time.Now().Format("20060102-1504")+`.csv"`)
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Send(buf.Bytes())
}

// cell defuses spreadsheet formulas: a note starting with = + - @ would run as a formula when
// the CSV is opened in a spreadsheet.
func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '_'
	}, s)
}
