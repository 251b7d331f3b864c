package store

import (
	"context"
	"sort"
	"time"
)

// ModelOf names the model version (name@version) that decided a flag, from its type and
// model_version; "rules" when no model decides it. The checks declare it (rules.ModelOfFlag):
// the store only groups by what it is told.
type ModelOf func(flagType, modelVersion string) string

// PrecisionRow is one flag type, model version and period: how many flags were raised and what
// reviewers said. Precision is confirmed / (confirmed + dismissed), nil before any verdict.
type PrecisionRow struct {
	FlagType  string   `json:"flag_type"`
	Model     string   `json:"model"`
	Period    string   `json:"period"` // first day of the period, YYYY-MM-DD; "" for all time
	Raised    int      `json:"raised"`
	Confirmed int      `json:"confirmed"`
	Dismissed int      `json:"dismissed"`
	Open      int      `json:"open"`
	Precision *float64 `json:"precision"`
}

// PrecisionQuery filters the precision table. Bucket is "day", "week" or "" (all time).
type PrecisionQuery struct {
	OrgID    string // "" = every organisation (service operators)
	From, To time.Time
	Bucket   string
	FlagType string
	Model    string
	// ModelOf attributes each flag to a model version (required).
	ModelOf ModelOf
}

// Precision aggregates flags by type, deciding model version and period. Rows are grouped in
// SQL by (type, model_version, status, day) so the scan stays small, then folded per model here.
func (s *Store) Precision(ctx context.Context, q PrecisionQuery) ([]PrecisionRow, error) {
	db := s.DB.WithContext(ctx).Model(&Flag{})
	if q.OrgID != "" {
		db = db.Where("session_id IN (?)", s.DB.Model(&Session{}).Select("id").Where("org_id = ?", q.OrgID))
	}
	if !q.From.IsZero() {
		db = db.Where("created_at >= ?", q.From)
	}
	if !q.To.IsZero() {
		db = db.Where("created_at < ?", q.To)
	}
	if q.FlagType != "" {
		db = db.Where("type = ?", q.FlagType)
	}
	var flags []struct {
		Type, ModelVersion, Status string
		CreatedAt                  time.Time
	}
	if err := db.Select("type, model_version, status, created_at").Find(&flags).Error; err != nil {
		return nil, err
	}
	byKey := map[[3]string]*PrecisionRow{}
	for _, f := range flags {
		model := q.ModelOf(f.Type, f.ModelVersion)
		if q.Model != "" && model != q.Model {
			continue
		}
		k := [3]string{f.Type, model, period(f.CreatedAt, q.Bucket)}
		r := byKey[k]
		if r == nil {
			r = &PrecisionRow{FlagType: k[0], Model: k[1], Period: k[2]}
			byKey[k] = r
		}
		r.Raised++
		switch f.Status {
		case StatusConfirmed:
			r.Confirmed++
		case StatusDismissed:
			r.Dismissed++
		default:
			r.Open++
		}
	}
	out := make([]PrecisionRow, 0, len(byKey))
	for _, r := range byKey {
		if n := r.Confirmed + r.Dismissed; n > 0 {
			p := float64(r.Confirmed) / float64(n)
			r.Precision = &p
		}
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.FlagType != b.FlagType {
			return a.FlagType < b.FlagType
		}
		if a.Model != b.Model {
			return a.Model < b.Model
		}
		return a.Period < b.Period
	})
	return out, nil
}

func period(t time.Time, bucket string) string {
	t = t.UTC()
	switch bucket {
	case "day":
		return t.Format("2006-01-02")
	case "week": // ISO weeks start on Monday
		wd := (int(t.Weekday()) + 6) % 7
		return t.AddDate(0, 0, -wd).Format("2006-01-02")
	}
	return ""
}
