package faults

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Report prints one line per fault and the notes and failures under the table. It returns
// whether every fault passed.
func Report(w io.Writer, results []*Result) bool {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "fault\tsessions\tposted\tstored\tlost\tduplicated\tflags exp\tflags raised\t429\t503\tmax wait (failover)\tp99 ingest\tresult\t")
	ok := true
	for _, r := range results {
		if r.Skipped != "" {
			fmt.Fprintf(tw, "%s\t\t\t\t\t\t\t\t\t\t\t\tskipped\t\n", r.Fault)
			continue
		}
		verdict := "ok"
		if !r.OK() {
			verdict, ok = "FAIL", false
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t\n", r.Fault, r.Sessions, r.Posted, r.Stored,
			r.Lost, r.Duplicated, r.FlagsExpected, r.FlagsRaised, r.Refused429, r.Refused503,
			r.MaxWait.Round(100*time.Millisecond), r.P99Ingest.Round(time.Millisecond), verdict)
	}
	tw.Flush()
	for _, r := range results {
		var notes []string
		if r.Skipped != "" {
			notes = append(notes, "skipped: "+r.Skipped)
		}
		notes = append(notes, r.Notes...)
		if r.Offered > 0 {
			notes = append(notes, fmt.Sprintf("accepted %.0f frames/s until the first 429, workers analysed %.1f frames/s: offered %.1f× their capacity", r.Offered, r.Capacity, r.Offered/max(r.Capacity, 0.1)))
		}
		if r.DeadLettered > 0 {
			notes = append(notes, fmt.Sprintf("%d poison messages dead-lettered", r.DeadLettered))
		}
		if r.Duration > 0 {
			notes = append(notes, "took "+r.Duration.Round(time.Second).String())
		}
		for _, f := range r.Failed {
			notes = append(notes, "FAILED: "+f)
		}
		fmt.Fprintf(w, "  %s: %s\n", r.Fault, strings.Join(notes, "; "))
	}
	return ok
}
