package eval

import (
	"context"
	"fmt"
	"math"
	"slices"

	"proctor/analyzers"
)

// evalPersons measures the "persons" analyzer (COCO detector) as the EXTRA_PERSON rule uses it:
// does a photo show more than one person? Positives are multi_person/ (2–29 people), negatives
// the single portraits of identities/. The person score threshold was chosen on these same photos
// (models/cards/nanodet-coco.md), so the rows are in-sample. Phones: no photo in the data is
// labelled for phones, so there is nothing to measure and the table says so.
func evalPersons(ctx context.Context, env *Env) ([]Row, error) {
	if !hasAnalyzer(env.Set, "persons") {
		env.Note("persons: the analyzer set has no \"persons\" analyzer: skipped")
		return nil, nil
	}
	items, err := portraitsAndGroups(env)
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		env.Note("persons: no identities/ or multi_person/ under %s: skipped", env.Data)
		return nil, nil
	}
	var body, either [3]int // tp, fp, fn
	noPerson, phones := 0, 0
	for _, it := range items {
		obs, err := env.Analyze(ctx, it.jpeg, analyzers.FrameMeta{Session: "eval-" + it.name}, nil)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", it.name, err)
		}
		persons := 0
		if obs.Persons != nil {
			persons = *obs.Persons
		}
		for _, o := range obs.Objects { // people on a screen or poster do not count (screen.go)
			if o.Class == analyzers.ClassPerson && o.OnScreen {
				persons--
			}
		}
		if obs.Phones != nil {
			phones += *obs.Phones
		}
		if persons == 0 {
			noPerson++
		}
		tally(&body, persons >= 2, (it.truth == classSeveral))
		tally(&either, persons >= 2 || len(obs.Faces) >= 2, (it.truth == classSeveral))
		if (persons >= 2) != (it.truth == classSeveral) {
			env.Logf("  persons miss: %s: truth several=%v, %d persons, %d faces", it.name, (it.truth == classSeveral), persons, len(obs.Faces))
		}
	}
	n := len(items)
	p, r, f1 := PRF(body[0], body[1], body[2])
	rows := []Row{{Check: "persons: more than one (body)", Split: splitInSample, N: n, Precision: p, Recall: r, F1: f1,
		Note: fmt.Sprintf("persons >= 2; %d single portraits had no person box", noPerson)}}
	p, r, f1 = PRF(either[0], either[1], either[2])
	rows = append(rows, Row{Check: "persons: more than one (body or face)", Split: splitInSample, N: n, Precision: p, Recall: r, F1: f1,
		Note: "persons >= 2 or faces >= 2 (MULTIPLE_FACES or EXTRA_PERSON on the main camera)"})
	rows = append(rows, Row{Check: "persons: phone", Split: "-", N: 0, Precision: math.NaN(), Recall: math.NaN(), F1: math.NaN(),
		Note: fmt.Sprintf("no labelled data (no phone photos in the data); %d phone boxes on these people photos", phones)})
	return rows, nil
}

func hasAnalyzer(set *analyzers.Set, name string) bool {
	return slices.ContainsFunc(set.Analyzers(), func(a analyzers.Analyzer) bool { return a.Name() == name })
}
