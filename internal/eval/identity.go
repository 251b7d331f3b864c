package eval

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"

	"proctor/analyzers"
	"proctor/models"
)

// identitySets are the person-per-folder sets and how they split: "person" splits by a hash of
// the folder name (SplitOf), otherwise every person goes to the named split.
var identitySets = []struct{ dir, split string }{
	{"identities-rmfd", "person"},
	{"identities", "test"},
	{"identities-crops", "test"},
}

// embedded is one photo's main-face embedding.
type embedded struct {
	person string // set/name: people of different sets are different people
	vec    []float32
}

// IdentityResult is the identity evaluation's numbers, for the table and for calibration.
type IdentityResult struct {
	// Threshold is the similarity at FAR 1% on the dev pairs: what the manifest should hold.
	Threshold float64
	// Per split: TAR at FAR 1% / 0.1% with that split's own impostor distribution, and the
	// TAR and FAR at Threshold.
	Splits map[string]SplitPairs
}

// SplitPairs are the genuine (same person) and impostor (different people) similarities of one
// split.
type SplitPairs struct {
	People, Photos, Failed int
	Genuine, Impostor      []float64 // sorted ascending
}

// evalIdentity embeds the main face of every identity photo, calibrates the same-person
// threshold at FAR 1% on the dev people and reports the held-back test people.
func evalIdentity(ctx context.Context, env *Env) ([]Row, error) {
	var id *analyzers.Identity
	for _, a := range env.Set.Analyzers() {
		if v, ok := a.(*analyzers.Identity); ok {
			id = v
		}
	}
	if id == nil {
		env.Note("identity: the set has no identity analyzer: skipped")
		return nil, nil
	}
	// A dummy enrollment makes the analyzer embed every photo (and be timed doing so); the
	// embedding itself is read back from it.
	dummy := &analyzers.Enrollment{Model: id.EnrollModel(), Vector: make([]float32, id.Dim())}
	bySplit := map[string][]embedded{}
	stats := map[string]*SplitPairs{"dev": {}, "test": {}}
	for _, set := range identitySets {
		names, imgs := listPeople(filepath.Join(env.Data, set.dir))
		for _, name := range names {
			split := set.split
			if split == "person" {
				split = SplitOf(name)
			}
			st := stats[split]
			st.People++
			for _, p := range imgs[name] {
				data, err := ReadJPEG(p)
				if err != nil {
					return nil, err
				}
				var vec []float32
				// Every photo is handled as a registration photo (padded): these are portraits
				// and tight crops, not camera frames.
				_, err = env.AnalyzePadded(ctx, data, analyzers.EnrollPadding, analyzers.FrameMeta{Enrolled: dummy}, func(f *analyzers.Frame, obs *analyzers.Observation) error {
					for _, fc := range obs.Faces {
						if fc.Match != nil && fc.Match.Measured {
							vec = slices.Clone(id.LastEmbedding())
						}
					}
					return nil
				})
				if err != nil {
					return nil, fmt.Errorf("%s: %w", p, err)
				}
				st.Photos++
				if vec == nil {
					st.Failed++ // no face found or aligned: a failure to enrol/verify
					continue
				}
				bySplit[split] = append(bySplit[split], embedded{set.dir + "/" + name, vec})
			}
		}
	}
	res := IdentityResult{Splits: map[string]SplitPairs{}}
	for split, list := range bySplit {
		sp := *stats[split]
		sp.Genuine, sp.Impostor = pairs(list)
		res.Splits[split] = sp
	}
	dev, test := res.Splits["dev"], res.Splits["test"]
	if len(dev.Impostor) == 0 || len(test.Genuine) == 0 {
		env.Note("identity: not enough people under %s (need identities-rmfd/ for the dev split and test people): skipped", env.Data)
		return nil, nil
	}
	res.Threshold = thresholdAtFAR(dev.Impostor, 0.01)
	env.Note("identity: threshold %.3f = FAR 1%% on %d dev impostor pairs (%d people); manifest %s holds %.3f, analyzer uses %.3f",
		res.Threshold, len(dev.Impostor), dev.People, id.EnrollModel(), manifestThreshold(id.EnrollModel()), id.Threshold())
	var rows []Row
	for _, split := range []string{"test", "dev"} {
		sp := res.Splits[split]
		tar1 := tarAt(sp.Genuine, thresholdAtFAR(sp.Impostor, 0.01))
		tar01 := tarAt(sp.Genuine, thresholdAtFAR(sp.Impostor, 0.001))
		// The decision at the dev-calibrated threshold, over all pairs of this split.
		tp := countAtLeast(sp.Genuine, res.Threshold)
		fp := countAtLeast(sp.Impostor, res.Threshold)
		fn := len(sp.Genuine) - tp
		p, r, f1 := PRF(tp, fp, fn)
		far := float64(fp) / float64(max(len(sp.Impostor), 1))
		label := split
		if split == "dev" {
			label = "dev (tuned on)"
		}
		rows = append(rows, Row{Check: "identity: same person (all)", Split: label, N: len(sp.Genuine) + len(sp.Impostor),
			Precision: p, Recall: r, F1: f1,
			Note: fmt.Sprintf("TAR@FAR1%% %.3f, TAR@FAR0.1%% %.3f; at threshold %.3f: FAR %.4f; %d people, %d photos (%d no face), %d same / %d different pairs",
				tar1, tar01, res.Threshold, far, sp.People, sp.Photos, sp.Failed, len(sp.Genuine), len(sp.Impostor))})
	}
	// The test split by source: in-the-wild tight crops (RMFD) vs portraits.
	for _, set := range identitySets {
		var sub []embedded
		for _, e := range bySplit["test"] {
			if strings.HasPrefix(e.person, set.dir+"/") {
				sub = append(sub, e)
			}
		}
		gen, imp := pairs(sub)
		if len(gen) == 0 || len(imp) == 0 {
			continue
		}
		tp, fp := countAtLeast(gen, res.Threshold), countAtLeast(imp, res.Threshold)
		p, r, f1 := PRF(tp, fp, len(gen)-tp)
		rows = append(rows, Row{Check: "identity: same person (" + set.dir + ")", Split: "test", N: len(gen) + len(imp),
			Precision: p, Recall: r, F1: f1,
			Note: fmt.Sprintf("TAR@FAR1%% %.3f, TAR@FAR0.1%% %.3f; at threshold %.3f: FAR %.4f; %d same / %d different pairs",
				tarAt(gen, thresholdAtFAR(imp, 0.01)), tarAt(gen, thresholdAtFAR(imp, 0.001)), res.Threshold,
				float64(fp)/float64(len(imp)), len(gen), len(imp))})
	}
	return rows, nil
}

func manifestThreshold(id string) float64 {
	name := id
	for i := range id {
		if id[i] == '@' {
			name = id[:i]
		}
	}
	m, err := models.Lookup(name)
	if err != nil {
		return math.NaN()
	}
	return float64(m.Thresholds.Similarity)
}

// pairs returns every same-person and different-person similarity, sorted.
func pairs(list []embedded) (genuine, impostor []float64) {
	for i := range list {
		for j := i + 1; j < len(list); j++ {
			s := float64(models.Cosine(list[i].vec, list[j].vec))
			if list[i].person == list[j].person {
				genuine = append(genuine, s)
			} else {
				impostor = append(impostor, s)
			}
		}
	}
	slices.Sort(genuine)
	slices.Sort(impostor)
	return genuine, impostor
}

// thresholdAtFAR is the lowest threshold t with at most far of the impostor scores >= t
// (impostor sorted ascending): scores at or above it are accepted.
func thresholdAtFAR(impostor []float64, far float64) float64 {
	if len(impostor) == 0 {
		return math.NaN()
	}
	allowed := int(math.Floor(far * float64(len(impostor))))
	// The (allowed+1)-th highest score must be rejected: the threshold sits just above it.
	k := len(impostor) - 1 - allowed
	if k < 0 {
		return math.Inf(-1)
	}
	return math.Nextafter(impostor[k], math.Inf(1))
}

// tarAt is the fraction of genuine scores >= t.
func tarAt(genuine []float64, t float64) float64 {
	if len(genuine) == 0 {
		return math.NaN()
	}
	return float64(countAtLeast(genuine, t)) / float64(len(genuine))
}

func countAtLeast(sorted []float64, t float64) int {
	i, _ := slices.BinarySearch(sorted, t)
	return len(sorted) - i
}
