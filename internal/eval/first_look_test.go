package eval

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"proctor/analyzers"
	"proctor/models"
	"proctor/rules"
)

// TestFirstLookStrangerLine measures what the first look's stranger line
// (IdentityConfig.FirstLookStranger) risks: for every identity-time frame of one split and every
// person's registration photo, the first-look (int8) and the full model's similarity; per
// candidate line, the pairs below it by the first look and, among the same-person ones, those
// the full model puts at or above the rules' vote line (threshold − identity_mismatch_margin):
// the frames the line would turn from an abstention into a vote for "someone else". Runs only
// when asked (≈2.5 min for dev, 4 for test):
//
//	PROCTOR_FIRST_LOOK_SPLIT=dev go test -count=1 -v -run TestFirstLookStrangerLine ./internal/eval/
func TestFirstLookStrangerLine(t *testing.T) {
	split := os.Getenv("PROCTOR_FIRST_LOOK_SPLIT")
	if split != "dev" && split != "test" {
		t.Skip("PROCTOR_FIRST_LOOK_SPLIT (dev or test) not set")
	}
	data, err := filepath.Abs("../../../shared/data/faces")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(data); err != nil {
		t.Skipf("no dev data: %v", err)
	}
	set, err := analyzers.NewSet(analyzers.Config{Analyzers: []string{"faces", "landmarks", "identity", "headpose", "attire"}})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	var id *analyzers.Identity
	for _, a := range set.Analyzers() {
		if v, ok := a.(*analyzers.Identity); ok {
			id = v
		}
	}
	if id.FirstLookAt() == 0 {
		t.Skip("the identity model has no first look")
	}
	n := len(set.Analyzers()) + 1
	env := &Env{Data: data, Set: set, spent: make([]time.Duration, n), cpu: make([]time.Duration, n), runs: make([]int, n)}
	people, err := identityTimePeople(context.Background(), env, id, split)
	if err != nil {
		t.Fatal(err)
	}
	thr := id.Threshold()
	vote := thr - float32(rules.New(rules.Config{}).Params().Value(rules.SettingIdentityMismatchBand))
	margins := []float32{0.20, 0.25, 0.30, 0.35}
	type count struct{ below, same, sameVote int }
	counts := make([]count, len(margins))
	var pairs, same int
	var gap float32
	for _, a := range people {
		for _, fr := range a.all {
			if fr.vec == nil || fr.first == nil {
				continue
			}
			for _, p := range people {
				first, full := models.Cosine(fr.first, p.photo), models.Cosine(fr.vec, p.photo)
				pairs++
				if p == a {
					same++
				}
				gap = max(gap, full-first, first-full)
				for i, m := range margins {
					if first >= thr-m {
						continue
					}
					c := &counts[i]
					c.below++
					if p == a {
						c.same++
						if full >= vote {
							c.sameVote++
						}
					}
				}
			}
		}
	}
	t.Logf("%s: %d people, %d frame–photo pairs (%d same person); threshold %.3f, vote line %.3f; largest |full − first| %.3f",
		split, len(people), pairs, same, thr, vote, gap)
	for i, m := range margins {
		c := counts[i]
		t.Logf("stranger margin %.2f (line %.3f): %d pairs below (%.1f%%); same person %d below, %d of them at or above the vote line by the full model",
			m, thr-m, c.below, 100*float64(c.below)/float64(max(pairs, 1)), c.same, c.sameVote)
	}
}
