package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"proctor/export"
	"proctor/internal/modelversions"
	"proctor/models"
	"proctor/rules"
	"proctor/store"
)

// The data-team loop on the command line (docs/data-loop.md). These commands work on the
// database directly, like `proctor keys`; every change is audit-logged with actor "cli".

// openStoreFlags parses the database flags plus extra and opens the store; positional arguments
// (before or after the flags) are returned.
func openStoreFlags(ctx context.Context, name string, args []string, extra func(fs *flag.FlagSet)) (*store.Store, []string, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	var sf serviceFlags
	sf.register(fs)
	if extra != nil {
		extra(fs)
	}
	var pos []string
	for len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		pos, args = append(pos, args[0]), args[1:]
	}
	if err := parse(fs, args); err != nil {
		return nil, nil, err
	}
	pos = append(pos, fs.Args()...)
	st, err := store.Open(ctx, sf.storeConfig())
	return st, pos, err
}

func printModelVersions(ctx context.Context, sf serviceFlags) error {
	st, err := store.Open(ctx, sf.storeConfig())
	if err != nil {
		fmt.Printf("\nmodel versions: not read (%v)\n", err)
		return nil
	}
	defer st.Close()
	inForce, err := modelversions.InForce(ctx, st)
	if err != nil {
		return err
	}
	fmt.Println("\nIN FORCE (flags are raised with these; workers follow within --model-poll)")
	for _, name := range models.Retrainable {
		line := "  " + name + ": " + inForce[name]
		if sh := inForce[name+" shadow"]; sh != "" {
			line += ", shadow " + sh
		}
		fmt.Println(line)
	}
	versions, err := st.ListModelVersions(ctx, "")
	if err != nil || len(versions) == 0 {
		return err
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\nREGISTERED\tSTATUS\tSHA256\tBYTES\tBY\tAT")
	for _, v := range versions {
		fmt.Fprintf(tw, "%s\t%s\t%s…\t%d\t%s\t%s\n", v.Ref(), v.Status, v.SHA256[:12], v.Bytes, v.RegisteredBy,
			v.CreatedAt.UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}

// registerModel stores a retraining run's version directory (manifest.json, ONNX, card.md,
// eval.json) after the same checks the API makes.
func registerModel(ctx context.Context, args []string) error {
	var org *string
	st, pos, err := openStoreFlags(ctx, "models register", args, func(fs *flag.FlagSet) {
		org = fs.String("org", "default", "organisation recorded in the audit log")
	})
	if err != nil {
		return err
	}
	defer st.Close()
	if len(pos) != 1 {
		return usageError{errors.New("usage: proctor models register VERSION_DIR")}
	}
	v, err := modelversions.PrepareDir(pos[0], "cli")
	if err != nil {
		return err
	}
	if err := st.RegisterModel(ctx, v, *org, ""); err != nil {
		return err
	}
	fmt.Printf("registered %s (sha256 %s, %d bytes); next: proctor models shadow %s %s\n", v.Ref(), v.SHA256, v.Bytes, v.Name, v.Version)
	return nil
}

// changeModel is proctor models shadow|unshadow|promote NAME VERSION and rollback NAME.
func changeModel(action store.ModelAction) func(ctx context.Context, args []string) error {
	return func(ctx context.Context, args []string) error {
		return changeModelVersion(ctx, action, args)
	}
}

func changeModelVersion(ctx context.Context, action store.ModelAction, args []string) error {
	var org, reason *string
	st, pos, err := openStoreFlags(ctx, "models "+string(action), args, func(fs *flag.FlagSet) {
		org = fs.String("org", "default", "organisation recorded in the audit log")
		reason = fs.String("reason", "", "why (recorded in the audit log)")
	})
	if err != nil {
		return err
	}
	defer st.Close()
	want := 2
	if action == store.ActionRollback {
		want = 1
	}
	if len(pos) != want || !models.IsRetrainable(pos[0]) {
		return usageError{fmt.Errorf("usage: proctor models %s NAME%s (NAME: %s)", action,
			map[bool]string{true: " VERSION", false: ""}[want == 2], strings.Join(models.Retrainable, ", "))}
	}
	version := ""
	if want == 2 {
		version = pos[1]
	}
	active, shadow, err := modelversions.Change(ctx, st, action, pos[0], version, "cli", *org, "", *reason)
	if err != nil {
		return err
	}
	if m, _ := models.Lookup(pos[0]); active == "built-in" && m != nil {
		active = m.ID() + " (built-in)"
	}
	fmt.Printf("%s: active %s, shadow %s (workers switch within --model-poll)\n", pos[0], active, orNone(shadow))
	return nil
}

func compareModel(ctx context.Context, args []string) error {
	var since *string
	st, pos, err := openStoreFlags(ctx, "models compare", args, func(fs *flag.FlagSet) {
		since = fs.String("since", "", "compare frames analysed since this RFC 3339 time (default: 7 days)")
	})
	if err != nil {
		return err
	}
	defer st.Close()
	if len(pos) != 2 {
		return usageError{errors.New("usage: proctor models compare NAME VERSION [--since RFC3339]")}
	}
	t := time.Now().Add(-7 * 24 * time.Hour)
	if *since != "" {
		if t, err = time.Parse(time.RFC3339, *since); err != nil {
			return usageError{fmt.Errorf("--since: %w", err)}
		}
	}
	cmp, err := st.CompareShadow(ctx, "", pos[0]+"@"+pos[1], t)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(cmp)
}

func runExport(ctx context.Context, args []string) error {
	var org, purpose, out, from, to, exam, types, model, verdicts, kinds *string
	var maxItems *int
	st, pos, err := openStoreFlags(ctx, "export", args, func(fs *flag.FlagSet) {
		org = fs.String("org", "default", "organisation whose data is exported")
		purpose = fs.String("purpose", "", "why the data is exported (required, recorded)")
		out = fs.String("out", "exports", "folder the export is written under (OUT/<export id>/)")
		from = fs.String("from", "", "sessions created on or after this date (YYYY-MM-DD)")
		to = fs.String("to", "", "sessions created on or before this date (YYYY-MM-DD)")
		exam = fs.String("exam", "", "one exam")
		types = fs.String("flag-types", "", "comma-separated flag types, e.g. MASK,FACE_OCCLUDED")
		model = fs.String("model", "", "flags raised with this model version, e.g. attire-cnn@1")
		verdicts = fs.String("verdicts", "", "comma-separated flag statuses: confirmed, dismissed, open")
		kinds = fs.String("kinds", "", "vision, audio or both (default)")
		maxItems = fs.Int("max-items", export.DefaultMaxItems, "at most this many items")
	})
	if err != nil {
		return err
	}
	defer st.Close()
	if len(pos) > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", pos[0])}
	}
	f := export.Filters{Exam: *exam, Model: *model, FlagTypes: splitList(*types), Verdicts: splitList(*verdicts), Kinds: splitList(*kinds)}
	for _, d := range []struct {
		v    string
		t    *time.Time
		next bool
	}{{*from, &f.From, false}, {*to, &f.To, true}} {
		if d.v == "" {
			continue
		}
		t, err := time.ParseInLocation("2006-01-02", d.v, time.Local)
		if err != nil {
			return usageError{fmt.Errorf("dates are YYYY-MM-DD: %w", err)}
		}
		if d.next {
			t = t.AddDate(0, 0, 1)
		}
		*d.t = t.UTC()
	}
	inForce, err := modelversions.InForce(ctx, st)
	if err != nil {
		return err
	}
	b := &export.Builder{Store: st}
	defer b.Close()
	res, err := b.Build(ctx, export.Request{OrgID: *org, Actor: "cli", Purpose: *purpose, Filters: f, MaxItems: *maxItems, ActiveModels: inForce})
	if err != nil {
		return usageError{err}
	}
	if err := st.SaveExport(ctx, res.StoreRecord(*org), ""); err != nil {
		return err
	}
	dir, err := export.Unzip(res.Zip, *out)
	if err != nil {
		return err
	}
	fmt.Printf("%s: %d items (%d vision, %d audio) %v\n", dir, res.Record.Counts.Items, res.Record.Counts.Vision,
		res.Record.Counts.Audio, res.Record.Counts.ByLabel)
	return nil
}

func runPrecision(ctx context.Context, args []string) error {
	var org, bucket, flagType, model *string
	st, pos, err := openStoreFlags(ctx, "precision", args, func(fs *flag.FlagSet) {
		org = fs.String("org", "", "one organisation (default: all)")
		bucket = fs.String("bucket", "week", "day, week or all")
		flagType = fs.String("flag-type", "", "one flag type")
		model = fs.String("model", "", "one model version, e.g. attire-cnn@2")
	})
	if err != nil {
		return err
	}
	defer st.Close()
	if len(pos) > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", pos[0])}
	}
	b := *bucket
	if b == "all" {
		b = ""
	}
	rows, err := st.Precision(ctx, store.PrecisionQuery{OrgID: *org, ModelOf: rules.ModelOfFlag, Bucket: b, FlagType: *flagType, Model: *model})
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "FLAG TYPE\tMODEL\tPERIOD\tRAISED\tCONFIRMED\tDISMISSED\tOPEN\tPRECISION")
	for _, r := range rows {
		p := "-"
		if r.Precision != nil {
			p = fmt.Sprintf("%.3f", *r.Precision)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\n", r.FlagType, r.Model, orNone(r.Period), r.Raised, r.Confirmed, r.Dismissed, r.Open, p)
	}
	return tw.Flush()
}

func splitList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
