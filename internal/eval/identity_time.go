package eval

import (
	"context"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gocv.io/x/gocv"
	"gorm.io/gorm"

	"proctor/analyzers"
	"proctor/models"
	"proctor/rules"
	"proctor/store"
)

// Identity over time: what a reviewer lives with. Synthetic main-camera sessions at 1 frame/s
// are built from the held-back ("test") people of the identity check (identities/,
// identities-crops/, the test half of identities-rmfd: never tuned on) and replayed through the
// shipped identity check (rules.New with its default settings, Observe and ApplyFrame on a
// SQLite store in a temporary folder), so the numbers come from the check as it runs.
//
// Every photo and four degraded copies of it (blurred, downscaled to a third, rotated 25°, the
// lower 40% of the photo covered in grey like a mask or a hand) are analysed once, padded like
// the identity check's photos, by the set's own analyzers (faces, landmarks, identity, headpose,
// attire): embedding, sharpness, pose and mask score. A session then only re-scores the stored
// embeddings against its own references (Enrollment.Similarity), as the identity analyzer does.
// Every frame counts as measured (the analyzer's one-in-three sampling only carries a track's
// last value forward).
//
// Per person A, the photos are split: the first is the registration photo, the next third are
// login frames, the rest (all five variants) are the answering frames, so a gallery never holds
// the very frame it is later compared with.
//
//   - gallery on: the login frames pass the worker's gallery rule (quality gate, similarity to
//     the photo at or above the threshold, not nearly the same as a kept face, up to the
//     gallery size) before answering starts, replayed as a minute of footage (loginSeconds: the
//     worker counts frames, not photos); a login with enough quality frames and no match is
//     IDENTITY_NOT_VERIFIED, which silences IDENTITY_MISMATCH for that session (the rule's When).
//   - gallery off: the registration photo alone, as before the gallery existed.
//
// Same-person sessions: 15 minutes of A's answering frames, each frame held 1–5 s (a candidate
// sits still), every variant included: false IDENTITY_MISMATCH flags per hour; and the same
// with every frame held 1 s (independent frames: the lower bound). Switch sessions:
// 60 s of A, then 60 s of another held-back person B: the time from the switch to the frame
// that raises IDENTITY_MISMATCH.
//
// The mismatch margin (how far below the threshold a face must fall to count as someone else)
// is swept on the tuning people (the dev half of identities-rmfd) with the same sessions; the
// reported rows use the shipped default, and margin 0 for comparison. With a model whitened on
// the dev people those sweeps are skipped (in-sample); PROCTOR_IDENTITY_TUNE_GRID tunes on each
// half of them with the map refitted on the other (tuneGrid).

// identityTimeFrame is one analysed photo variant: the main face as the rules would see it,
// with its embedding (nil: no face identity could measure).
type identityTimeFrame struct {
	photo   string // the photo it was made from (for PROCTOR_IDENTITY_DUMP_FLAGS)
	variant int    // index in identityTimeVariants
	face    analyzers.Face
	n       int // faces in the frame
	vec     []float32
	first   []float32 // the first-look model's embedding (IdentityConfig.FirstLook), nil without one
	width   int
	high    int
}

type identityTimePerson struct {
	name   string
	photo  []float32            // registration photo's embedding
	login  []*identityTimeFrame // originals of the login photos, then their variants
	answer []*identityTimeFrame // every variant of the answering photos
	all    []*identityTimeFrame // every frame (for B in a switch)
	byVar  map[string][2]int    // variant → answering frames, of which abstain/not measured
}

var identityTimeVariants = []string{"original", "blurred", "small", "rotated", "occluded"}

// Session lengths (frames at 1 frame/s).
const (
	sameSessionFrames = 900
	switchBefore      = 60
	switchAfter       = 60
	switchesPerPerson = 3
	// loginSeconds: the login frames are replayed as one minute of footage, each shown an equal
	// share of it, because the worker counts every measured frame before answering
	// (worker/vision.go updateGallery), not every photo. A real candidate is on camera from
	// entering the exam 15 min before the start (../shared/DESIGN.md §1), so a minute is the
	// short end.
	loginSeconds = 60
)

func evalIdentityTime(ctx context.Context, env *Env) ([]Row, error) {
	var id *analyzers.Identity
	for _, a := range env.Set.Analyzers() {
		if v, ok := a.(*analyzers.Identity); ok {
			id = v
		}
	}
	if id == nil {
		env.Note("identity-time: the set has no identity analyzer: skipped (use --analyzers faces,landmarks,identity,headpose,attire)")
		return nil, nil
	}
	if os.Getenv("PROCTOR_IDENTITY_TUNE_GRID") == "1" {
		return nil, tuneGrid(ctx, env, id)
	}
	people, err := identityTimePeople(ctx, env, id, "test")
	if err != nil {
		return nil, err
	}
	if len(people) < 2 {
		env.Note("identity-time: fewer than two held-back people with usable photos under %s: skipped", env.Data)
		return nil, nil
	}
	st, closeStore, err := store.OpenTemp(ctx, "proctor-identity-time-")
	if err != nil {
		return nil, err
	}
	defer closeStore()
	shipped := rules.New(rules.Config{})
	margin := shipped.Params().Value(rules.SettingIdentityMismatchBand)

	// Tuning: the mismatch margin is chosen on the dev people (never on the people reported).
	// A model whose whitening was fitted on all of them separates them in-sample (no false flag
	// at any setting), so its sweeps would choose nothing: they are skipped, and the grid on the
	// halves it was not fitted on (PROCTOR_IDENTITY_TUNE_GRID) is where such settings are chosen.
	var tuning []*identityTimePerson
	if fittedOnDev(id.EnrollModel()) && os.Getenv("PROCTOR_IDENTITY_TUNE_HALF") == "" {
		env.Note("identity-time: %s is whitened with a map fitted on the dev people: the in-sample tuning sweeps are skipped (margins and gate were chosen with PROCTOR_IDENTITY_TUNE_GRID, docs/vision.md)", id.EnrollModel())
	} else if tuning, err = identityTimePeople(ctx, env, id, "dev"); err != nil {
		return nil, err
	}
	firstAt := id.FirstLookAt()
	var gate rules.Params // the quality gate chosen on the tuning people, where it differs from the defaults
	if len(tuning) >= 2 && firstAt > 0 {
		if err := tuneFirstLook(ctx, env, st, shipped, id, tuning); err != nil {
			return nil, err
		}
		if gate, err = tuneGate(ctx, env, st, shipped, id, tuning, firstAt); err != nil {
			return nil, err
		}
	} else if len(tuning) >= 2 {
		// sweep replays the tuning people once per value of one setting.
		sweep := func(key, what string, values []float64) ([]*identityTimeResult, error) {
			var out []*identityTimeResult
			for _, v := range values {
				r, err := identityTimeRun(ctx, env, st, rules.New(rules.Config{Settings: rules.Params{key: v}}), id, tuning, true, 0)
				if err != nil {
					return nil, err
				}
				env.Note("identity-time tuning (%d dev people), %s %.3f: %.2f false flags/h (%d in %.1f h), %d IDENTITY_NOT_VERIFIED, switches within the goal: %d of %d as they come, %d of %d undegraded; cost %d",
					len(tuning), what, v, r.perHour(), r.sameFlags, r.hours(), r.notVerified, r.sw[0].within, r.sw[0].n(), r.sw[1].within, r.sw[1].n(), r.cost())
				out = append(out, r)
			}
			return out, nil
		}
		// The margin and the learn margin of the lowest cost (identityTimeResult.cost).
		for _, s := range []struct {
			key, what string
			values    []float64
		}{{rules.SettingIdentityMismatchBand, "margin", identityMarginSweep}, {rules.SettingIdentityLearnMargin, "learn margin", identityLearnSweep}} {
			results, err := sweep(s.key, s.what, s.values)
			if err != nil {
				return nil, err
			}
			best := 0
			for i, r := range results {
				if r.cost() < results[best].cost() {
					best = i
				}
			}
			env.Note("identity-time tuning: %s %.3f has the lowest cost on the dev people; shipped default %.3f", s.what, s.values[best], shipped.Params().Value(s.key))
		}
	}

	var rows []Row
	type run struct {
		eng     *rules.Engine
		gallery bool
		label   string
		firstAt float32
	}
	var runs []run
	if firstAt > 0 {
		// With a first look, its default against the full model on every frame (the other
		// settings were chosen without one: run without --identity-first-look for those rows).
		runs = []run{
			{shipped, true, fmt.Sprintf("gallery on, margin %.3f, first look settles from %.3f", margin, firstAt), firstAt},
			{shipped, true, fmt.Sprintf("gallery on, margin %.3f, full model on every frame", margin), 0},
		}
		if len(gate) > 0 {
			var what []string
			for _, k := range slices.Sorted(maps.Keys(gate)) {
				what = append(what, fmt.Sprintf("%s %g", k, gate[k]))
			}
			runs = append(runs, run{rules.New(rules.Config{Settings: gate}), true,
				fmt.Sprintf("gallery on, margin %.3f, first look settles from %.3f, gate from the dev people (%s)", margin, firstAt, strings.Join(what, ", ")), firstAt})
		}
	} else {
		runs = []run{
			{shipped, true, fmt.Sprintf("gallery on, margin %.3f", margin), 0},
			{shipped, false, fmt.Sprintf("gallery off (photo only), margin %.3f", margin), 0},
		}
		if margin != identityMarginSweep[0] {
			runs = append(runs, run{rules.New(rules.Config{Settings: rules.Params{rules.SettingIdentityMismatchBand: identityMarginSweep[0]}}),
				true, "gallery on, no band (margin 0.001)", 0})
		}
		runs = append(runs, run{rules.New(rules.Config{Settings: rules.Params{rules.SettingIdentityLearnMargin: 1}}),
			true, fmt.Sprintf("gallery on, margin %.3f, no learned faces", margin), 0})
	}
	after := shipped.Params().Duration(rules.SettingIdentityMismatchAfter)
	for _, c := range runs {
		r, err := identityTimeRun(ctx, env, st, c.eng, id, people, c.gallery, c.firstAt)
		if err != nil {
			return nil, err
		}
		if c.firstAt > 0 {
			share, n := r.fullShare()
			env.Note("identity-time, %s: the full model measured %.1f%% of %d measured frames; per variant: %s", c.label, 100*share, n, r.fullShares())
		}
		var per []string
		for _, k := range slices.Sorted(maps.Keys(r.sets)) {
			b := r.sets[k]
			per = append(per, fmt.Sprintf("%s: %.1f flags/h over %.1f h, %d of %d switches within the goal",
				k, float64(b.flags)/(float64(b.frames)/3600), float64(b.frames)/3600, b.fast, b.switches))
		}
		env.Note("identity-time, %s, by the set of person A: %s", c.label, strings.Join(per, "; "))
		per = per[:0]
		for v, name := range identityTimeVariants {
			per = append(per, fmt.Sprintf("%s %d/%d", name, r.below[v], r.votes[v]))
		}
		env.Note("identity-time, %s: same-person frames that voted and fell below the threshold, per variant: %s", c.label, strings.Join(per, ", "))
		rows = append(rows, Row{Check: "identity-time: false IDENTITY_MISMATCH, " + c.label, Split: "test", N: r.sessions,
			Precision: math.NaN(), Recall: math.NaN(), F1: math.NaN(),
			Note: fmt.Sprintf("%d flags in %.1f h of same-person frames (%.2f/h); %d of %d sessions IDENTITY_NOT_VERIFIED at login; %.0f%% of frames abstained (quality gate)",
				r.sameFlags, r.hours(), r.perHour(), r.notVerified, r.sessions, 100*float64(r.abstained)/float64(max(r.abstained+r.voted, 1)))})
		rows = append(rows, Row{Check: "identity-time: false IDENTITY_MISMATCH, frames held 1 s, " + c.label, Split: "test", N: r.sessions,
			Precision: math.NaN(), Recall: math.NaN(), F1: math.NaN(),
			Note: fmt.Sprintf("%d flags in %.1f h (%.2f/h): every frame a different photo or variant", r.flags1, r.hours(), float64(r.flags1)/r.hours())})
		for pool, what := range []string{"B's frames as they come", "B's undegraded photos"} {
			rows = append(rows, r.sw[pool].row("identity-time: switch A→B detected ("+what+"), "+c.label, after.Seconds()+2))
			env.Note("identity-time, %s, switches to %s not flagged within the goal (%d): B's frames in the %.0f s after the switch: %s",
				c.label, what, r.sw[pool].n()-r.sw[pool].within, after.Seconds()+2, r.sw[pool].lateNote())
		}
	}
	var per []string
	for _, v := range identityTimeVariants {
		var n, abst int
		for _, a := range people {
			n += a.byVar[v][0]
			abst += a.byVar[v][1]
		}
		per = append(per, fmt.Sprintf("%s %d/%d", v, abst, n))
	}
	env.Note("identity-time: %d held-back people; answering frames abstaining or unmeasured per variant: %v; IDENTITY_MISMATCH after %s, threshold %.3f (%s)",
		len(people), per, after, id.Threshold(), id.EnrollModel())
	return rows, nil
}

// tuneFirstLook sweeps the first look's margin on the tuning people: the smallest margin (the
// cheapest) that raises no more false flags and detects no fewer switches within the goal than
// the full model on every frame.
func tuneFirstLook(ctx context.Context, env *Env, st *store.Store, eng *rules.Engine, id *analyzers.Identity,
	tuning []*identityTimePerson) error {
	share := func(r *identityTimeResult) float64 { s, _ := r.fullShare(); return s }
	note := func(what string, r *identityTimeResult) {
		env.Note("identity-time tuning (%d dev people), %s: %.2f false flags/h (%d in %.1f h), switches within the goal: %d of %d as they come, %d of %d undegraded; full model on %.1f%% of measured frames",
			len(tuning), what, r.perHour(), r.sameFlags, r.hours(), r.sw[0].within, r.sw[0].n(), r.sw[1].within, r.sw[1].n(), 100*share(r))
	}
	base, err := identityTimeRun(ctx, env, st, eng, id, tuning, true, 0)
	if err != nil {
		return err
	}
	note("full model on every frame", base)
	chosen := -1.0
	for _, m := range firstLookSweep {
		r, err := identityTimeRun(ctx, env, st, eng, id, tuning, true, id.Threshold()+float32(m))
		if err != nil {
			return err
		}
		note(fmt.Sprintf("first-look margin %.3f", m), r)
		if chosen < 0 && r.sameFlags <= base.sameFlags && r.sw[0].within >= base.sw[0].within && r.sw[1].within >= base.sw[1].within {
			chosen = m
		}
	}
	if chosen < 0 {
		env.Note("identity-time tuning: no first-look margin tried keeps the full model's false flags and switch detection on the dev people; shipped default %.3f", analyzers.DefaultFirstLookMargin)
	} else {
		env.Note("identity-time tuning: first-look margin %.3f is the smallest keeping the full model's false flags and switch detection on the dev people; shipped default %.3f", chosen, analyzers.DefaultFirstLookMargin)
	}
	return nil
}

// fittedOnDev reports whether the embedding of the model (ID "name@version") is whitened by a
// projection, which this project fits on the dev people (training/vision/fit_whitening.py).
func fittedOnDev(model string) bool {
	name, _, _ := strings.Cut(model, "@")
	m, err := models.Lookup(name)
	return err == nil && m.Decode.Projection != nil
}

// tuneGrid replays the tuning people once per combination of the mismatch duration, margin and
// quality gate (identityGrids), with the identity analyzer's first look (none: the full model on
// every frame), and notes each result; nothing is chosen or reported on held-back people. For
// PROCTOR_IDENTITY_TUNE_GRID=1 with PROCTOR_IDENTITY_TUNE_HALF: margin and gate interact (a
// looser gate lets more poor frames vote, a wider band stops more of them), so they are tuned
// together, on dev people the whitening has not seen; the two halves' notes are added up by hand
// (docs/vision.md).
func tuneGrid(ctx context.Context, env *Env, id *analyzers.Identity) error {
	tuning, err := identityTimePeople(ctx, env, id, "dev")
	if err != nil {
		return err
	}
	if len(tuning) < 2 {
		env.Note("identity-time grid: fewer than two tuning people: skipped")
		return nil
	}
	st, closeStore, err := store.OpenTemp(ctx, "proctor-identity-grid-")
	if err != nil {
		return err
	}
	defer closeStore()
	for _, g := range identityGrids {
		for _, set := range combinations(g) {
			r, err := identityTimeRun(ctx, env, st, rules.New(rules.Config{Settings: set}), id, tuning, true, id.FirstLookAt())
			if err != nil {
				return err
			}
			env.Note("identity-time grid (%d dev people, %.1f h)\tafter %g s\tmargin %g\tmin face %g\tsharpness %g\tturn %g\tfalse flags %d\tIDENTITY_NOT_VERIFIED %d of %d\tswitches within the goal %d of %d as they come, %d of %d undegraded\tabstained %.0f%%\tcost %d",
				len(tuning), r.hours(), set[rules.SettingIdentityMismatchAfter], set[rules.SettingIdentityMismatchBand], set[rules.SettingIdentityMinFace],
				set[rules.SettingIdentityMinSharpness], set[rules.SettingIdentityMaxTurn], r.sameFlags, r.notVerified, r.sessions,
				r.sw[0].within, r.sw[0].n(), r.sw[1].within, r.sw[1].n(), 100*float64(r.abstained)/float64(max(r.abstained+r.voted, 1)), r.cost())
		}
	}
	return nil
}

// identityGrids: the settings tuneGrid combines, grid by grid: the margin with the gate's
// defaults and looser values at the shipped duration, then the margin at longer durations (the
// switch goal is the duration + 2 s, so a longer one is judged by its own goal: docs/vision.md).
var identityGrids = []map[string][]float64{
	{rules.SettingIdentityMismatchAfter: {3}, rules.SettingIdentityMismatchBand: {0.1, 0.15, 0.2},
		rules.SettingIdentityMinFace: {40, 50, 60}, rules.SettingIdentityMinSharpness: {20, 40}, rules.SettingIdentityMaxTurn: {30, 35}},
	{rules.SettingIdentityMismatchAfter: {4, 5}, rules.SettingIdentityMismatchBand: {0.1, 0.15, 0.2},
		rules.SettingIdentityMinFace: {60}, rules.SettingIdentityMinSharpness: {40}, rules.SettingIdentityMaxTurn: {30}},
}

// combinations returns every choice of one value per setting of grid, the settings in key order
// and the first key varying slowest.
func combinations(grid map[string][]float64) []rules.Params {
	out := []rules.Params{{}}
	for _, key := range slices.Sorted(maps.Keys(grid)) {
		var next []rules.Params
		for _, p := range out {
			for _, v := range grid[key] {
				q := maps.Clone(p)
				q[key] = v
				next = append(next, q)
			}
		}
		out = next
	}
	return out
}

// gateSweeps: the quality-gate settings tried on the tuning people, the default first.
var gateSweeps = []struct {
	key    string
	values []float64
}{
	{rules.SettingIdentityMinFace, []float64{60, 80, 100, 120}},
	{rules.SettingIdentityMinSharpness, []float64{40, 80, 150, 300}},
	{rules.SettingIdentityMaxTurn, []float64{30, 25, 20}},
}

// tuneGate sweeps each quality-gate setting on the tuning people (the shipped first look, the
// others at their defaults): a stricter gate lets fewer poor frames vote someone else, and also
// fewer frames of a real switch. Chosen per setting: the fewest false flags that keeps 95% of the
// default's switches to undegraded frames flagged within the goal. Returns the settings whose
// choice differs from the default.
func tuneGate(ctx context.Context, env *Env, st *store.Store, shipped *rules.Engine, id *analyzers.Identity,
	tuning []*identityTimePerson, firstAt float32) (rules.Params, error) {
	chosen := rules.Params{}
	for _, g := range gateSweeps {
		def := shipped.Params().Value(g.key)
		best, bestFlags, baseWithin := def, -1, -1
		for _, v := range g.values {
			r, err := identityTimeRun(ctx, env, st, rules.New(rules.Config{Settings: rules.Params{g.key: v}}), id, tuning, true, firstAt)
			if err != nil {
				return nil, err
			}
			env.Note("identity-time tuning (%d dev people), %s %g: %.2f false flags/h (%d in %.1f h), switches within the goal: %d of %d as they come, %d of %d undegraded; %.0f%% of frames abstained",
				len(tuning), g.key, v, r.perHour(), r.sameFlags, r.hours(), r.sw[0].within, r.sw[0].n(), r.sw[1].within, r.sw[1].n(),
				100*float64(r.abstained)/float64(max(r.abstained+r.voted, 1)))
			if v == def {
				baseWithin = r.sw[1].within
			}
			if baseWithin >= 0 && float64(r.sw[1].within) >= 0.95*float64(baseWithin) && (bestFlags < 0 || r.sameFlags < bestFlags) {
				best, bestFlags = v, r.sameFlags
			}
		}
		env.Note("identity-time tuning: %s %g has the fewest false flags keeping 95%% of the default's switch detection on the dev people; default %g", g.key, best, def)
		if best != def {
			chosen[g.key] = best
		}
	}
	return chosen, nil
}

// firstLookSweep: the first-look margins tried on the tuning people, smallest first.
var firstLookSweep = []float64{0.05, 0.1, 0.15, 0.2}

// identityMarginSweep: the mismatch margins tried on the tuning people, narrowest first (0.001
// stands for no band: a setting of 0 means its default).
var identityMarginSweep = []float64{0.001, 0.05, 0.1, 0.15, 0.2}

// identityLearnSweep: the learn margins tried on the tuning people, 1 (never learn) first.
var identityLearnSweep = []float64{1, 0.2, 0.15, 0.1}

// identityTimeResult is one replay of every person's sessions under one engine.
type identityTimeResult struct {
	sameFrames, sameFlags, flags1, notVerified, sessions, abstained, voted int
	sw                                                                     [2]switchStats
	sets                                                                   map[string]*identitySetStats
	votes, below                                                           [8]int
	firstLooks, fullLooks                                                  [8]int
}

// fullShare is the share of measured frames the full model measured (the rest the first look
// settled), and how many frames were measured.
func (r *identityTimeResult) fullShare() (float64, int) {
	var first, full int
	for v := range r.firstLooks {
		first, full = first+r.firstLooks[v], full+r.fullLooks[v]
	}
	return float64(full) / float64(max(first+full, 1)), first + full
}

// fullShares: the full model's share per variant.
func (r *identityTimeResult) fullShares() string {
	var per []string
	for v, name := range identityTimeVariants {
		per = append(per, fmt.Sprintf("%s %d/%d", name, r.fullLooks[v], r.firstLooks[v]+r.fullLooks[v]))
	}
	return strings.Join(per, ", ")
}

// identitySetStats: per source set of person A.
type identitySetStats struct{ frames, flags, switches, fast int }

// cost weighs what a reviewer lives with, for choosing settings on the tuning people: each false
// alarm on a same-person session (IDENTITY_MISMATCH, or IDENTITY_NOT_VERIFIED at login) counts 1,
// each switch to B's undegraded photos not flagged within the goal counts 2. A late switch is
// still flagged (seconds later, the impostor sits the whole exam); a false alert puts a genuine
// candidate at the top of the queue, and enough of them teach reviewers to ignore the flag. With
// any weight from 1.5 to 10 the dev people's grid picks the same margin (docs/vision.md).
func (r *identityTimeResult) cost() int {
	return r.sameFlags + r.notVerified + 2*(r.sw[1].n()-r.sw[1].within)
}

func (r *identityTimeResult) hours() float64   { return float64(r.sameFrames) / 3600 }
func (r *identityTimeResult) perHour() float64 { return float64(r.sameFlags) / r.hours() }

// identityTimeRun replays every person's same-person and switch sessions (fixed seeds: the
// same sessions for every engine).
func identityTimeRun(ctx context.Context, env *Env, st *store.Store, eng *rules.Engine, id *analyzers.Identity,
	people []*identityTimePerson, gallery bool, firstAt float32) (*identityTimeResult, error) {
	after := eng.Params().Duration(rules.SettingIdentityMismatchAfter)
	out := &identityTimeResult{sets: map[string]*identitySetStats{}}
	// With a first look, it also settles clear strangers, as in the analyzer's sessions.
	var stranger float32
	if firstAt > 0 {
		stranger = id.StrangerBelow()
	}
	var dump io.Writer
	if os.Getenv("PROCTOR_IDENTITY_DUMP_FLAGS") == "1" {
		dump = os.Stderr
	}
	rp := &identityReplay{st: st, eng: eng, thr: id.Threshold(), model: id.EnrollModel(), gallery: gallery, firstAt: firstAt, strangerBelow: stranger, dump: dump}
	rng := rand.New(rand.NewPCG(13, 5))
	rp1 := &identityReplay{st: st, eng: eng, thr: id.Threshold(), model: id.EnrollModel(), gallery: gallery, firstAt: firstAt, strangerBelow: stranger, dump: dump}
	rng1 := rand.New(rand.NewPCG(21, 8))
	for i, a := range people {
		if len(a.answer) == 0 {
			continue
		}
		// Same person for 15 minutes.
		var seq []*identityTimeFrame
		for len(seq) < sameSessionFrames {
			f := a.answer[rng.IntN(len(a.answer))]
			for range 1 + rng.IntN(5) {
				seq = append(seq, f)
			}
		}
		seq = seq[:sameSessionFrames]
		res, err := rp.run(ctx, a, seq, -1)
		if err != nil {
			return nil, err
		}
		out.sessions++
		out.sameFrames += len(seq)
		src := a.name[:strings.IndexByte(a.name, '/')]
		if out.sets[src] == nil {
			out.sets[src] = &identitySetStats{}
		}
		out.sets[src].frames += len(seq)
		if res.notVerified {
			out.notVerified++
		} else {
			out.sameFlags += res.flags
			out.sets[src].flags += res.flags
		}
		// The same, each frame shown for one second only: consecutive frames independent, the
		// lower bound (a candidate sitting still repeats one pose, as the sessions above do).
		seq = seq[:0]
		for len(seq) < sameSessionFrames {
			seq = append(seq, a.answer[rng1.IntN(len(a.answer))])
		}
		res1, err := rp1.run(ctx, a, seq, -1)
		if err != nil {
			return nil, err
		}
		if !res1.notVerified {
			out.flags1 += res1.flags
		}
		out.abstained += res.abstained
		out.voted += res.voted
		// A, then someone else: B's frames as they come (all variants), and B's undegraded
		// photos only (a clear camera), from the same A frames.
		for k := range switchesPerPerson {
			b := people[(i+1+k*7+rng.IntN(3))%len(people)]
			if b == a {
				continue
			}
			seq = seq[:0]
			for len(seq) < switchBefore {
				f := a.answer[rng.IntN(len(a.answer))]
				for range 1 + rng.IntN(5) {
					seq = append(seq, f)
				}
			}
			seq = seq[:switchBefore]
			for pool, frames := range [][]*identityTimeFrame{b.all, b.originals()} {
				seq = seq[:switchBefore]
				for len(seq) < switchBefore+switchAfter {
					f := frames[rng.IntN(len(frames))]
					for range 1 + rng.IntN(3) {
						seq = append(seq, f)
					}
				}
				seq = seq[:switchBefore+switchAfter]
				res, err := rp.run(ctx, a, seq, switchBefore)
				if err != nil {
					return nil, err
				}
				if res.notVerified {
					continue // its own flag; no mismatch can be raised
				}
				fast := out.sw[pool].add(res.detectAt-switchBefore, res.detectAt >= 0, after.Seconds()+2, res.window)
				if pool == 0 {
					out.sets[src].switches++
					if fast {
						out.sets[src].fast++
					}
				}
			}
		}
	}
	out.votes, out.below = rp.votes, rp.below
	for v := range out.firstLooks {
		out.firstLooks[v] = rp.firstLooks[v] + rp1.firstLooks[v]
		out.fullLooks[v] = rp.fullLooks[v] + rp1.fullLooks[v]
	}
	return out, nil
}

// switchStats collects the delays from a switch to its flag.
type switchStats struct {
	delays []float64
	missed int
	within int // flagged within the goal
	// late: what B's frames inside the goal window did, summed over the switches not flagged
	// within the goal (switchWhy order)
	late [4]int
}

// switchWhy names the fates of B's frames after a switch: the quality gate made them abstain,
// they matched A (at or above the threshold: a run of "someone else" breaks there), they fell in
// the band below the threshold (abstain), or they voted "someone else".
var switchWhy = [4]string{"abstained (quality gate)", "matched A", "in the band", "voted someone else"}

func (s *switchStats) n() int { return len(s.delays) + s.missed }

// add records one switch (delay in frames = seconds) and says whether it was within goal.
func (s *switchStats) add(delay int, detected bool, goal float64, window [4]int) bool {
	if detected {
		s.delays = append(s.delays, float64(delay))
		if float64(delay) <= goal {
			s.within++
			return true
		}
	} else {
		s.missed++
	}
	for k, n := range window {
		s.late[k] += n
	}
	return false
}

// lateNote says what B's frames did in the goal window of the switches flagged late.
func (s *switchStats) lateNote() string {
	var parts []string
	for k, n := range s.late {
		parts = append(parts, fmt.Sprintf("%s %d", switchWhy[k], n))
	}
	return strings.Join(parts, ", ")
}

// row: recall is the share of switches flagged within goal seconds.
func (s *switchStats) row(check string, goal float64) Row {
	slices.Sort(s.delays)
	n := len(s.delays) + s.missed
	row := Row{Check: check, Split: "test", N: n, Precision: math.NaN(), Recall: math.NaN(), F1: math.NaN()}
	if len(s.delays) == 0 {
		row.Note = fmt.Sprintf("no switch flagged within %d s (%d switches)", switchAfter, n)
		return row
	}
	var sum float64
	within := 0
	for _, d := range s.delays {
		sum += d
		if d <= goal {
			within++
		}
	}
	row.Recall = float64(within) / float64(n)
	row.Note = fmt.Sprintf("seconds from switch to flag: mean %.1f, p95 %.0f, max %.0f (goal <= %.0f: %d of %d); %d not flagged within %d s",
		sum/float64(len(s.delays)), s.delays[int(math.Ceil(0.95*float64(len(s.delays))))-1], s.delays[len(s.delays)-1],
		goal, within, n, s.missed, switchAfter)
	return row
}

// originals are the person's undegraded photos (the first variant of each).
func (p *identityTimePerson) originals() []*identityTimeFrame {
	var out []*identityTimeFrame
	for i := 0; i < len(p.all); i += len(identityTimeVariants) {
		out = append(out, p.all[i])
	}
	return out
}

// inTuningHalf keeps the dev people of one half when PROCTOR_IDENTITY_TUNE_HALF is 0 or 1 (CRC-32
// of the folder name, even or odd): with a face-embedding whitening fitted on the other half
// (training/vision/fit_whitening.py --half), the tuning sweeps then run on people the whitening
// has not seen. Unset: every dev person.
func inTuningHalf(name string) bool {
	h := os.Getenv("PROCTOR_IDENTITY_TUNE_HALF")
	if h != "0" && h != "1" {
		return true
	}
	return (crc32.ChecksumIEEE([]byte(name))%2 == 1) == (h == "1")
}

// identityTimePeople analyses every person's photos of one split ("dev": tuning, "test":
// held back) and their variants once.
func identityTimePeople(ctx context.Context, env *Env, id *analyzers.Identity, split string) ([]*identityTimePerson, error) {
	dummy := &analyzers.Enrollment{Model: id.EnrollModel(), Vector: make([]float32, id.Dim())}
	params := rules.New(rules.Config{}).Params()
	var people []*identityTimePerson
	for _, set := range identitySets {
		names, imgs := listPeople(filepath.Join(env.Data, set.dir))
		for _, name := range names {
			if s := set.split; s == "person" && SplitOf(name) != split || s != "person" && s != split {
				continue
			}
			if split == "dev" && !inTuningHalf(name) {
				continue
			}
			photos := imgs[name]
			if len(photos) < 4 {
				continue
			}
			person := &identityTimePerson{name: set.dir + "/" + name, byVar: map[string][2]int{}}
			nLogin := max(1, (len(photos)-1)/3)
			for k, p := range photos {
				data, err := ReadJPEG(p)
				if err != nil {
					return nil, err
				}
				variants, err := photoVariants(data)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", p, err)
				}
				for v, jpeg := range variants {
					fr, err := analyzeForTime(ctx, env, id, dummy, jpeg)
					if err != nil {
						return nil, fmt.Errorf("%s (%s): %w", p, identityTimeVariants[v], err)
					}
					fr.variant, fr.photo = v, p
					person.all = append(person.all, fr)
					switch {
					case k == 0 && v == 0:
						person.photo = fr.vec
					case k == 0:
					case k <= nLogin:
						person.login = append(person.login, fr)
					default:
						person.answer = append(person.answer, fr)
						c := person.byVar[identityTimeVariants[v]]
						c[0]++
						if obs := fr.observation(0, id.Threshold()); fr.vec == nil {
							c[1]++
						} else if _, ok := rules.IdentityQuality(&obs, params); !ok {
							c[1]++
						}
						person.byVar[identityTimeVariants[v]] = c
					}
				}
			}
			if person.photo == nil {
				continue // a registration photo without a usable face: identity is off for that session
			}
			people = append(people, person)
		}
	}
	return people, nil
}

func analyzeForTime(ctx context.Context, env *Env, id *analyzers.Identity, dummy *analyzers.Enrollment, jpeg []byte) (*identityTimeFrame, error) {
	fr := &identityTimeFrame{}
	obs, err := env.AnalyzePadded(ctx, jpeg, analyzers.EnrollPadding, analyzers.FrameMeta{Enrolled: dummy}, func(f *analyzers.Frame, obs *analyzers.Observation) error {
		for i, fc := range obs.Faces {
			if fc.Match != nil && fc.Match.Measured {
				fr.vec = slices.Clone(id.LastEmbedding())
				first := make([]float32, len(fr.vec))
				if ok, err := id.EmbedFirstLook(f, i, first); err != nil {
					return err
				} else if ok {
					fr.first = first
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	fr.n, fr.width, fr.high = len(obs.Faces), obs.Width, obs.Height
	for _, fc := range obs.Faces {
		if fc.Match != nil {
			fr.face = fc
			fr.face.Match = &analyzers.Match{Sharpness: fc.Match.Sharpness, Measured: true}
		}
	}
	if fr.vec == nil && len(obs.Faces) > 0 {
		fr.face = obs.Faces[analyzers.MainFace(obs.Faces, 0)]
		fr.face.Match = nil
	}
	return fr, nil
}

// observation rebuilds the frame's observation with the main face's similarity to the
// session's references (sim; ignored when the face was not measured).
func (fr *identityTimeFrame) observation(sim, thr float32) analyzers.Observation {
	obs := analyzers.Observation{Width: fr.width, Height: fr.high, TopFaceScore: fr.face.Score}
	if fr.n == 0 {
		obs.Faces = []analyzers.Face{}
		return obs
	}
	face := fr.face
	if face.Match != nil {
		m := *face.Match
		m.Similarity, m.Threshold, m.SamePerson = sim, thr, sim >= thr
		face.Match = &m
	}
	obs.Faces = []analyzers.Face{face}
	for range fr.n - 1 { // the other faces (no match), as the rules would count them
		obs.Faces = append(obs.Faces, analyzers.Face{Box: fr.face.Box, Score: fr.face.Score})
	}
	return obs
}

// photoVariants returns the photo and its degraded copies, in identityTimeVariants order.
func photoVariants(data []byte) ([][]byte, error) {
	img, err := gocv.IMDecode(data, gocv.IMReadColor)
	if err != nil || img.Empty() {
		img.Close()
		return nil, fmt.Errorf("decode: %v", err)
	}
	defer img.Close()
	w, h := img.Cols(), img.Rows()
	out := [][]byte{data}
	enc := func(m gocv.Mat) error {
		buf, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, m, []int{gocv.IMWriteJpegQuality, 90})
		if err != nil {
			return err
		}
		out = append(out, slices.Clone(buf.GetBytes()))
		buf.Close()
		return nil
	}
	m := gocv.NewMat()
	defer m.Close()
	// Blurred: out of focus or moving, sigma 2.5% of the shorter side.
	sigma := 0.025 * float64(min(w, h))
	gocv.GaussianBlur(img, &m, image.Pt(0, 0), sigma, sigma, gocv.BorderReplicate)
	if err := enc(m); err != nil {
		return nil, err
	}
	// Small: a third of the size, a candidate far from a low-resolution camera.
	gocv.Resize(img, &m, image.Pt(max(w/3, analyzers.MinSide), max(h/3, analyzers.MinSide)), 0, 0, gocv.InterpolationArea)
	if err := enc(m); err != nil {
		return nil, err
	}
	// Rotated: the head tilted 25°.
	rot := gocv.GetRotationMatrix2D(image.Pt(w/2, h/2), 25, 1)
	gocv.WarpAffineWithParams(img, &m, rot, image.Pt(w, h), gocv.InterpolationLinear, gocv.BorderReplicate, color.RGBA{})
	rot.Close()
	if err := enc(m); err != nil {
		return nil, err
	}
	// Occluded: the lower 40% of the photo grey (a mask, a hand, a cup).
	occ := img.Clone()
	gocv.Rectangle(&occ, image.Rect(0, h*6/10, w, h), color.RGBA{128, 128, 128, 0}, -1)
	err = enc(occ)
	occ.Close()
	if err != nil {
		return nil, err
	}
	return out, nil
}

// identityReplay replays sessions through the rules engine.
type identityReplay struct {
	st      *store.Store
	eng     *rules.Engine
	thr     float32
	model   string
	gallery bool
	// firstAt: a first-look similarity at or above it settles the frame (the identity
	// analyzer's FirstLook; 0: every frame measured by the full model)
	firstAt float32
	// strangerBelow: with a first look, a first-look similarity below it settles the frame as
	// someone else (Identity.StrangerBelow; 0: never)
	strangerBelow float32
	// same-person frames that voted, and of those below the threshold, per variant
	votes, below [8]int
	// measured frames settled by the first look, and measured by the full model, per variant
	firstLooks, fullLooks [8]int
	// dump, when set, gets the frames behind every false IDENTITY_MISMATCH (dumpFlags)
	dump io.Writer
}

type replayResult struct {
	flags            int  // IDENTITY_MISMATCH flags raised in the session
	detectAt         int  // frame index that raised the first flag at or after the switch (-1: none)
	notVerified      bool // the login would raise IDENTITY_NOT_VERIFIED
	abstained, voted int
	// window: B's frames within the goal after the switch (IDENTITY_MISMATCH's duration + 2 s,
	// at 1 frame/s), by fate (switchWhy)
	window [4]int
}

// run replays one session of person a: the login (gallery on), then seq at 1 frame/s. switchAt
// is the index of the first frame of someone else (-1: none).
func (r *identityReplay) run(ctx context.Context, a *identityTimePerson, seq []*identityTimeFrame, switchAt int) (replayResult, error) {
	res := replayResult{detectAt: -1}
	p := r.eng.Params()
	enr := analyzers.Enrollment{Model: r.model, Vector: a.photo}
	sess := &store.Session{OrgID: "eval", ExamID: "identity-time", CandidateID: a.name, ScheduledStart: time.Unix(0, 0)}
	if err := r.st.CreateSession(ctx, sess); err != nil {
		return res, err
	}
	if r.gallery {
		// The worker's gallery rule (worker/vision.go updateGallery) on the login frames.
		size := int(p.Value(rules.SettingIdentityGallerySize))
		hold := max(1, loginSeconds/max(1, len(a.login)))
		var counted []*identityTimeFrame
		for _, fr := range a.login {
			if fr.vec == nil {
				continue
			}
			photo := models.Cosine(fr.vec, a.photo)
			obs := fr.observation(photo, r.thr)
			if _, ok := rules.IdentityQuality(&obs, p); !ok {
				continue
			}
			counts, matched := rules.LoginFace(photo, r.thr, p)
			if !counts {
				continue
			}
			counted = append(counted, fr)
			sess.LoginFaceFrames += hold
			if !matched {
				continue
			}
			sess.LoginFaceMatches += hold
			if len(enr.Gallery) < size && !analyzers.Redundant(enr.Gallery, fr.vec) {
				enr.Gallery = append(enr.Gallery, fr.vec)
			}
		}
		// The identity-login check's condition (rules.loginUnverified).
		need := int(p.Value(rules.SettingIdentityLoginFrames))
		res.notVerified = sess.LoginFaceFrames >= need && sess.LoginFaceMatches == 0
		if res.notVerified && switchAt < 0 && r.dump != nil {
			r.dumpLogin(a, counted)
		}
	}
	// The photo and the login frames vouch for faces learned while answering (worker/vision.go
	// learnFace); learned faces vouch for none.
	anchors := &analyzers.Enrollment{Model: r.model, Vector: a.photo, Gallery: slices.Clone(enr.Gallery)}
	learned := 0
	goal := int(p.Duration(rules.SettingIdentityMismatchAfter).Seconds()) + 2
	margin := float32(p.Value(rules.SettingIdentityMismatchBand))
	for i, fr := range seq {
		var sim float32
		full := fr.vec != nil
		if full && r.firstAt > 0 && fr.first != nil {
			// The analyzer's first look (Identity.measure): a clear match or a clear stranger
			// settles the frame, which then has no full embedding to learn from.
			if s, _ := enr.Similarity(fr.first); s >= r.firstAt || s < r.strangerBelow {
				sim, full = s, false
				r.firstLooks[fr.variant]++
			}
		}
		if full {
			sim, _ = enr.Similarity(fr.vec)
			r.fullLooks[fr.variant]++
		}
		obs := fr.observation(sim, r.thr)
		q, ok := rules.IdentityQuality(&obs, p)
		if r.gallery && q >= 0 && ok && full {
			if anchor, _ := anchors.Similarity(fr.vec); rules.LearnsFace(anchor, r.thr, learned, p) && !analyzers.Redundant(enr.Gallery, fr.vec) {
				// This frame was judged on the gallery before it: so is the worker's.
				enr.Gallery = append(enr.Gallery, fr.vec)
				learned++
			}
		}
		if switchAt >= 0 && i >= switchAt && i < switchAt+goal {
			switch {
			case q < 0 || !ok:
				res.window[0]++
			case sim >= r.thr:
				res.window[1]++
			case sim >= r.thr-margin:
				res.window[2]++
			default:
				res.window[3]++
			}
		}
		if switchAt < 0 && q >= 0 && ok {
			res.voted++
			r.votes[fr.variant]++
			if sim < r.thr {
				r.below[fr.variant]++
			}
		} else if switchAt < 0 {
			res.abstained++ // the quality gate, or no face identity could measure
		}
		signals, err := r.eng.Observe(&obs, analyzers.CameraMain)
		if err != nil {
			return res, err
		}
		row := &store.FrameResult{SessionID: sess.ID, Camera: analyzers.CameraMain, Seq: int64(i),
			CapturedAtMs: int64(i) * 1000, Signals: signals}
		var touched []uint
		err = r.st.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			if _, err := store.InsertFrameResult(tx, row); err != nil {
				return err
			}
			touched, err = r.eng.ApplyFrame(tx, rules.FrameInput{Result: row, ModelVersion: "eval", Session: sess})
			return err
		})
		if err != nil {
			return res, err
		}
		if len(touched) > 0 && switchAt >= 0 && i >= switchAt && res.detectAt < 0 {
			var n int64
			if err := r.st.DB.WithContext(ctx).Model(&store.Flag{}).Where("id IN ? AND type = ? AND end_ms >= ?",
				touched, rules.IdentityMismatch, int64(switchAt)*1000).Count(&n).Error; err != nil {
				return res, err
			}
			if n > 0 {
				res.detectAt = i
			}
		}
	}
	var n int64
	if err := r.st.DB.WithContext(ctx).Model(&store.Flag{}).Where("session_id = ? AND type = ?", sess.ID, rules.IdentityMismatch).
		Count(&n).Error; err != nil {
		return res, err
	}
	res.flags = int(n)
	if n > 0 && switchAt < 0 && r.dump != nil {
		if err := r.dumpFlags(ctx, a, seq, sess.ID); err != nil {
			return res, err
		}
	}
	return res, nil
}

// dumpLogin prints the login frames that made a same-person session raise IDENTITY_NOT_VERIFIED
// (a false alarm unless the registration photo is of someone else), with their similarity to
// the registration photo.
func (r *identityReplay) dumpLogin(a *identityTimePerson, counted []*identityTimeFrame) {
	for _, fr := range counted {
		fmt.Fprintf(r.dump, "not verified\t%s\tlogin\t%s\t%s\tsimilarity to the registration photo (%s) %.3f\treplay %p\n",
			a.name, fr.photo, identityTimeVariants[fr.variant], a.all[0].photo, models.Cosine(fr.vec, a.photo), r)
	}
}

// dumpFlags prints, for each IDENTITY_MISMATCH of a same-person session (a false alarm), the
// frames of its run: photo, variant and similarity, to see what the remaining false flags are
// made of (PROCTOR_IDENTITY_DUMP_FLAGS=1).
func (r *identityReplay) dumpFlags(ctx context.Context, a *identityTimePerson, seq []*identityTimeFrame, session string) error {
	var flags []store.Flag
	if err := r.st.DB.WithContext(ctx).Where("session_id = ? AND type = ?", session, rules.IdentityMismatch).Find(&flags).Error; err != nil {
		return err
	}
	enr := analyzers.Enrollment{Model: r.model, Vector: a.photo}
	for _, f := range flags {
		seen := map[string]bool{}
		for i := int(f.StartMs / 1000); i <= int(f.EndMs/1000) && i < len(seq); i++ {
			fr := seq[i]
			key := fmt.Sprint(fr.photo, fr.variant)
			if seen[key] || fr.vec == nil {
				continue
			}
			seen[key] = true
			photoSim, _ := enr.Similarity(fr.vec)
			fmt.Fprintf(r.dump, "false flag\t%s\t%d-%d s\t%s\t%s\tsimilarity to the registration photo (%s) %.3f\treplay %p\n",
				a.name, f.StartMs/1000, f.EndMs/1000, fr.photo, identityTimeVariants[fr.variant], a.all[0].photo, photoSim, r)
		}
	}
	return nil
}
