package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// Model version statuses. At most one version of a model is active and at most one in shadow;
// with no active row the built-in version (compiled in or from the cache) runs.
const (
	ModelRegistered = "registered" // stored and checked, not running
	ModelShadow     = "shadow"     // runs next to the active version; observations apart, no flags
	ModelActive     = "active"     // raises the flags
	ModelRetired    = "retired"    // was active or in shadow; a rollback target
)

// ModelVersion is a registered version of a retrainable model: its manifest and ONNX bytes live
// here so every worker, wherever it runs, loads the same checked file.
type ModelVersion struct {
	ID       uint   `gorm:"primaryKey" json:"id"`
	Name     string `gorm:"size:64;uniqueIndex:model_version_key,priority:1" json:"name"`
	Version  string `gorm:"size:32;uniqueIndex:model_version_key,priority:2" json:"version"`
	SHA256   string `gorm:"size:64" json:"sha256"`
	Manifest string `json:"manifest"`
	Data     []byte `json:"-"`
	Bytes    int    `json:"bytes"`
	Card     string `json:"card,omitempty"`
	Eval     string `json:"eval,omitempty"`
	Status   string `gorm:"size:16;index" json:"status"`
	// RegisteredBy is the actor (key or user) that registered it, in its organisation.
	RegisteredBy string     `gorm:"size:320" json:"registered_by"`
	CreatedAt    time.Time  `json:"created_at"`
	UpdatedAt    time.Time  `json:"updated_at"`
	ActivatedAt  *time.Time `json:"activated_at,omitempty"`
}

// Ref is name@version, as flags and observations name it.
func (v *ModelVersion) Ref() string { return v.Name + "@" + v.Version }

// RegisterModel stores a checked version (the caller validated manifest and bytes) as
// "registered" and audit-logs it.
func (s *Store) RegisterModel(ctx context.Context, v *ModelVersion, orgID, remoteIP string) error {
	v.Status, v.Bytes = ModelRegistered, len(v.Data)
	return s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var n int64
		if err := tx.Model(&ModelVersion{}).Where("name = ? AND version = ?", v.Name, v.Version).Count(&n).Error; err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("%w: %s is already registered", ErrConflict, v.Ref())
		}
		if err := tx.Create(v).Error; err != nil {
			return err
		}
		return auditJSON(tx, orgID, v.RegisteredBy, "model.register", "model:"+v.Ref(), remoteIP,
			map[string]any{"sha256": v.SHA256, "bytes": v.Bytes})
	})
}

// ListModelVersions lists registered versions (without their bytes), newest first; name may be
// empty for all models.
func (s *Store) ListModelVersions(ctx context.Context, name string) ([]ModelVersion, error) {
	q := s.DB.WithContext(ctx).Omit("data").Order("id DESC")
	if name != "" {
		q = q.Where("name = ?", name)
	}
	var out []ModelVersion
	return out, q.Find(&out).Error
}

// RunningModels returns the versions workers must load: active and shadow, with their bytes.
func (s *Store) RunningModels(ctx context.Context) ([]ModelVersion, error) {
	var out []ModelVersion
	err := s.DB.WithContext(ctx).Where("status IN ?", []string{ModelActive, ModelShadow}).Order("name, id").Find(&out).Error
	return out, err
}

// RunningFingerprint is a cheap summary of RunningModels (ids and statuses) that workers poll:
// the bytes are read only when it changes.
func (s *Store) RunningFingerprint(ctx context.Context) (string, error) {
	var rows []struct {
		ID     uint
		Status string
	}
	err := s.DB.WithContext(ctx).Model(&ModelVersion{}).Select("id, status").
		Where("status IN ?", []string{ModelActive, ModelShadow}).Order("id").Find(&rows).Error
	fp := ""
	for _, r := range rows {
		fp += fmt.Sprintf("%d:%s;", r.ID, r.Status)
	}
	return fp, err
}

// ModelAction is what an operator does to a model's rollout.
type ModelAction string

// The rollout actions. Shadow puts a registered (or retired) version next to the active one;
// Promote makes a version active (the previous active one retires); Rollback retires the active
// version and restores the one active before it (or the built-in); Unshadow stops a shadow.
const (
	ActionShadow   ModelAction = "shadow"
	ActionPromote  ModelAction = "promote"
	ActionRollback ModelAction = "rollback"
	ActionUnshadow ModelAction = "unshadow"
)

// ChangeModel applies a rollout action to model name (version is required except for rollback)
// and audit-logs it with the versions before and after. It returns the versions now running.
func (s *Store) ChangeModel(ctx context.Context, action ModelAction, name, version, actor, orgID, remoteIP, reason string) (active, shadow string, err error) {
	err = s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var vs []ModelVersion
		if err := tx.Omit("data").Where("name = ?", name).Order("id").Find(&vs).Error; err != nil {
			return err
		}
		find := func(status string) *ModelVersion {
			for i := range vs {
				if vs[i].Status == status {
					return &vs[i]
				}
			}
			return nil
		}
		var target *ModelVersion
		for i := range vs {
			if vs[i].Version == version {
				target = &vs[i]
			}
		}
		if action != ActionRollback && target == nil {
			return fmt.Errorf("%w: %s@%s is not registered", ErrNotFound, name, version)
		}
		before := map[string]string{"active": idOr(find(ModelActive), "built-in"), "shadow": idOr(find(ModelShadow), "")}
		now := time.Now().UTC()
		// set changes a version's status; a promotion stamps its activation time, a rollback
		// restores the previous version keeping its original one, so that a second rollback
		// goes further back rather than forward again.
		set := func(v *ModelVersion, status string) error {
			upd := map[string]any{"status": status, "updated_at": now}
			if status == ModelActive && action == ActionPromote {
				upd["activated_at"] = now
			}
			v.Status = status
			return tx.Model(&ModelVersion{}).Where("id = ?", v.ID).Updates(upd).Error
		}
		switch action {
		case ActionShadow:
			if target.Status == ModelActive {
				return fmt.Errorf("%w: %s is the active version", ErrConflict, target.Ref())
			}
			if cur := find(ModelShadow); cur != nil && cur.ID != target.ID {
				if err := set(cur, ModelRetired); err != nil {
					return err
				}
			}
			if err := set(target, ModelShadow); err != nil {
				return err
			}
		case ActionUnshadow:
			if target.Status != ModelShadow {
				return fmt.Errorf("%w: %s is not in shadow", ErrConflict, target.Ref())
			}
			if err := set(target, ModelRetired); err != nil {
				return err
			}
		case ActionPromote:
			if target.Status == ModelActive {
				return fmt.Errorf("%w: %s is already active", ErrConflict, target.Ref())
			}
			if cur := find(ModelActive); cur != nil {
				if err := set(cur, ModelRetired); err != nil {
					return err
				}
			}
			if err := set(target, ModelActive); err != nil {
				return err
			}
		case ActionRollback:
			cur := find(ModelActive)
			if cur == nil {
				return fmt.Errorf("%w: %s runs its built-in version: nothing to roll back", ErrConflict, name)
			}
			// The version active before this one: the latest other activation.
			var prev *ModelVersion
			for i := range vs {
				v := &vs[i]
				if v.ID != cur.ID && v.ActivatedAt != nil && v.Status == ModelRetired &&
					(prev == nil || v.ActivatedAt.After(*prev.ActivatedAt)) && !v.ActivatedAt.After(*cur.ActivatedAt) {
					prev = v
				}
			}
			if err := set(cur, ModelRetired); err != nil {
				return err
			}
			if prev != nil {
				if err := set(prev, ModelActive); err != nil {
					return err
				}
			}
		default:
			return fmt.Errorf("unknown model action %q", action)
		}
		active, shadow = idOr(find(ModelActive), "built-in"), idOr(find(ModelShadow), "")
		return auditJSON(tx, orgID, actor, "model."+string(action), "model:"+name, remoteIP,
			map[string]any{"version": version, "before": before, "after": map[string]string{"active": active, "shadow": shadow}, "reason": reason})
	})
	return active, shadow, err
}

func idOr(v *ModelVersion, def string) string {
	if v == nil {
		return def
	}
	return v.Ref()
}

// ShadowObservation is what a shadow version said about one frame next to the active version.
// It is stored apart from frame results and never reaches the rules; (model, session, camera,
// seq) is unique so redeliveries add nothing.
type ShadowObservation struct {
	ID           uint   `gorm:"primaryKey" json:"id"`
	Model        string `gorm:"size:100;uniqueIndex:shadow_key,priority:1;index:shadow_time,priority:1" json:"model"`
	SessionID    string `gorm:"size:64;uniqueIndex:shadow_key,priority:2" json:"session_id"`
	Camera       string `gorm:"size:16;uniqueIndex:shadow_key,priority:3" json:"camera"`
	Seq          int64  `gorm:"uniqueIndex:shadow_key,priority:4" json:"seq"`
	Active       string `gorm:"size:100" json:"active"`
	CapturedAtMs int64  `json:"captured_at_ms"`
	// Outputs is the JSON list of per-face, per-label comparisons (analyzers.ShadowOutput).
	Outputs string `json:"outputs"`
	// Agree is true when every output's presence decision matches the active version's.
	Agree     bool      `json:"agree"`
	CreatedAt time.Time `gorm:"index:shadow_time,priority:2" json:"created_at"`
}

// ShadowComparison is how a shadow version did next to the active one on recent frames.
type ShadowComparison struct {
	Model  string    `json:"model"`
	Since  time.Time `json:"since"`
	Frames int       `json:"frames"`
	// Agreement is the share of frames where every presence decision matched the active version.
	Agreement *float64 `json:"agreement"`
	// Labels compares the two versions per label: decisions that differ, and accuracy on the
	// frames reviewers labelled (attribute labels on flags whose evidence frame both saw).
	Labels map[string]*LabelComparison `json:"labels"`
	// Flags: reviewed flags of the types this model decides, on sessions the shadow saw; the
	// active version raised them all, "shadow_would_raise" counts those where the shadow found
	// the attribute on at least half of the flag's frames, and the precisions are confirmed /
	// reviewed over each set.
	Flags ShadowFlags `json:"flags"`
}

// LabelComparison is one label's share of the comparison.
type LabelComparison struct {
	Frames         int      `json:"frames"`
	Disagree       int      `json:"disagree"`
	ActivePositive int      `json:"active_positive"`
	ShadowPositive int      `json:"shadow_positive"`
	Labelled       int      `json:"labelled"`
	ActiveAccuracy *float64 `json:"active_accuracy"`
	ShadowAccuracy *float64 `json:"shadow_accuracy"`
	activeCorrect  int
	shadowCorrect  int
}

// ShadowFlags compares precision against verdicts.
type ShadowFlags struct {
	Reviewed         int      `json:"reviewed"`
	ActivePrecision  *float64 `json:"active_precision"`
	ShadowWouldRaise int      `json:"shadow_would_raise"`
	ShadowPrecision  *float64 `json:"shadow_precision"`
}

type shadowOutput struct {
	Label  string `json:"label"`
	Active struct {
		Present bool `json:"present"`
	} `json:"active"`
	Shadow struct {
		Present bool `json:"present"`
	} `json:"shadow"`
}

// flagLabel is the attribute label each attire flag type is about.
var flagLabel = map[string]string{"MASK": "mask", "FACE_OCCLUDED": "occluded"}

// CompareShadow compares shadow version model (name@version) with the active version on the
// organisation's frames since the given time ("" org = every organisation).
func (s *Store) CompareShadow(ctx context.Context, orgID, model string, since time.Time) (*ShadowComparison, error) {
	db := s.DB.WithContext(ctx)
	q := db.Model(&ShadowObservation{}).Where("model = ? AND created_at >= ?", model, since)
	if orgID != "" {
		q = q.Where("session_id IN (?)", s.DB.Model(&Session{}).Select("id").Where("org_id = ?", orgID))
	}
	var obs []ShadowObservation
	if err := q.Order("id").Find(&obs).Error; err != nil {
		return nil, err
	}
	cmp := &ShadowComparison{Model: model, Since: since, Frames: len(obs), Labels: map[string]*LabelComparison{}}
	if len(obs) > 0 && obs[0].Camera == ShadowAudio {
		return s.comparePhrase(ctx, cmp, obs)
	}
	type frameKey struct {
		session, camera string
		seq             int64
	}
	byFrame := map[frameKey][]shadowOutput{}
	sessions := map[string]bool{}
	agree := 0
	for _, o := range obs {
		var outs []shadowOutput
		if err := json.Unmarshal([]byte(o.Outputs), &outs); err != nil {
			return nil, fmt.Errorf("shadow observation %d: %w", o.ID, err)
		}
		byFrame[frameKey{o.SessionID, o.Camera, o.Seq}] = outs
		sessions[o.SessionID] = true
		if o.Agree {
			agree++
		}
		for _, x := range outs {
			lc := cmp.Labels[x.Label]
			if lc == nil {
				lc = &LabelComparison{}
				cmp.Labels[x.Label] = lc
			}
			lc.Frames++
			if x.Active.Present != x.Shadow.Present {
				lc.Disagree++
			}
			if x.Active.Present {
				lc.ActivePositive++
			}
			if x.Shadow.Present {
				lc.ShadowPositive++
			}
		}
	}
	cmp.Agreement = ratio(agree, len(obs))
	if len(sessions) == 0 {
		return cmp, nil
	}
	ids := make([]string, 0, len(sessions))
	for id := range sessions {
		ids = append(ids, id)
	}
	var flags []Flag
	if err := db.Where("session_id IN ? AND type IN ?", ids, []string{"MASK", "FACE_OCCLUDED"}).Find(&flags).Error; err != nil {
		return nil, err
	}
	var labels []Label
	if err := db.Where("session_id IN ? AND kind = ? AND withdrawn_at IS NULL", ids, LabelAttribute).Order("id").Find(&labels).Error; err != nil {
		return nil, err
	}
	// Accuracy on labelled evidence frames (the latest label per flag wins).
	latest := map[uint]Label{}
	for _, l := range labels {
		latest[*l.FlagID] = l
	}
	var labelledFlags []Flag
	if len(latest) > 0 {
		lids := make([]uint, 0, len(latest))
		for id := range latest {
			lids = append(lids, id)
		}
		if err := db.Where("id IN ?", lids).Find(&labelledFlags).Error; err != nil {
			return nil, err
		}
	}
	for _, f := range labelledFlags {
		l := latest[f.ID]
		truth := map[string]*bool{"mask": l.Mask, "occluded": l.Occluded, "earphones": l.Earphones, "ears_covered": l.EarsCovered}
		for _, x := range byFrame[frameKey{f.SessionID, f.Camera, f.EvidenceSeq}] {
			t := truth[x.Label]
			lc := cmp.Labels[x.Label]
			if t == nil || lc == nil {
				continue
			}
			lc.Labelled++
			if x.Active.Present == *t {
				lc.activeCorrect++
			}
			if x.Shadow.Present == *t {
				lc.shadowCorrect++
			}
		}
	}
	for _, lc := range cmp.Labels {
		lc.ActiveAccuracy, lc.ShadowAccuracy = ratio(lc.activeCorrect, lc.Labelled), ratio(lc.shadowCorrect, lc.Labelled)
	}
	// Precision against verdicts.
	var aConf, sConf, sRev int
	for _, f := range flags {
		if f.Status != StatusConfirmed && f.Status != StatusDismissed {
			continue
		}
		cmp.Flags.Reviewed++
		conf := f.Status == StatusConfirmed
		if conf {
			aConf++
		}
		var n, pos int
		for _, o := range obs {
			if o.SessionID != f.SessionID || o.Camera != f.Camera || o.CapturedAtMs < f.StartMs || o.CapturedAtMs > f.EndMs {
				continue
			}
			for _, x := range byFrame[frameKey{o.SessionID, o.Camera, o.Seq}] {
				if x.Label == flagLabel[f.Type] {
					n++
					if x.Shadow.Present {
						pos++
					}
				}
			}
		}
		if n > 0 && 2*pos >= n {
			cmp.Flags.ShadowWouldRaise++
			sRev++
			if conf {
				sConf++
			}
		}
	}
	cmp.Flags.ActivePrecision, cmp.Flags.ShadowPrecision = ratio(aConf, cmp.Flags.Reviewed), ratio(sConf, sRev)
	return cmp, nil
}

func ratio(a, b int) *float64 {
	if b == 0 {
		return nil
	}
	r := float64(a) / float64(b)
	return &r
}

// ShadowAudio is the camera value of a shadow phrase head's observations (one per audio chunk).
const ShadowAudio = "audio"

// ShadowPhrase is one detection of a shadow phrase head, in session ms.
type ShadowPhrase struct {
	OnsetMs int64   `json:"onset_ms"`
	StartMs int64   `json:"start_ms"`
	EndMs   int64   `json:"end_ms"`
	Score   float32 `json:"score"`
	Final   bool    `json:"final"`
}

// comparePhrase compares a shadow phrase head with the active one where the shadow listened:
// detections matched within 1.5 s, and both heads against reviewer audio labels (a phrase_missed
// or answer_end label is a phrase that should be spotted, a not_phrase label one that should
// not). In the result "frames" counts audio chunks and Labels["phrase"] holds the numbers.
func (s *Store) comparePhrase(ctx context.Context, cmp *ShadowComparison, obs []ShadowObservation) (*ShadowComparison, error) {
	const near = 1500
	type span struct{ from, to int64 }
	heard := map[string][]span{}
	shadow := map[string]map[int64]ShadowPhrase{} // session → onset → latest report
	for _, o := range obs {
		var c struct {
			StartMs int64          `json:"start_ms"`
			EndMs   int64          `json:"end_ms"`
			Phrases []ShadowPhrase `json:"phrases"`
		}
		if err := json.Unmarshal([]byte(o.Outputs), &c); err != nil {
			return nil, fmt.Errorf("shadow observation %d: %w", o.ID, err)
		}
		heard[o.SessionID] = append(heard[o.SessionID], span{c.StartMs, c.EndMs})
		if shadow[o.SessionID] == nil {
			shadow[o.SessionID] = map[int64]ShadowPhrase{}
		}
		for _, p := range c.Phrases {
			if old, ok := shadow[o.SessionID][p.OnsetMs]; !ok || !old.Final {
				shadow[o.SessionID][p.OnsetMs] = p
			}
		}
	}
	inside := func(session string, t int64) bool {
		for _, sp := range heard[session] {
			if t >= sp.from && t <= sp.to+near {
				return true
			}
		}
		return false
	}
	lc := &LabelComparison{Frames: len(obs)}
	cmp.Labels["phrase"] = lc
	matched, union := 0, 0
	hits := func(ends []int64, t int64) bool {
		for _, e := range ends {
			if abs64(e-t) <= near {
				return true
			}
		}
		return false
	}
	activeEnds, shadowEnds := map[string][]int64{}, map[string][]int64{}
	for session := range heard {
		var active []PhraseDetection
		if err := s.DB.WithContext(ctx).Where("session_id = ?", session).Find(&active).Error; err != nil {
			return nil, err
		}
		for _, p := range active {
			if inside(session, p.EndMs) {
				activeEnds[session] = append(activeEnds[session], p.EndMs)
			}
		}
		for _, p := range shadow[session] {
			shadowEnds[session] = append(shadowEnds[session], p.EndMs)
		}
		lc.ActivePositive += len(activeEnds[session])
		lc.ShadowPositive += len(shadowEnds[session])
		for _, e := range activeEnds[session] {
			if hits(shadowEnds[session], e) {
				matched++
			}
		}
	}
	union = lc.ActivePositive + lc.ShadowPositive - matched
	lc.Disagree = union - matched
	cmp.Agreement = ratio(matched, union)
	var labels []Label
	ids := make([]string, 0, len(heard))
	for id := range heard {
		ids = append(ids, id)
	}
	if err := s.DB.WithContext(ctx).Where("session_id IN ? AND kind IN ? AND withdrawn_at IS NULL", ids,
		[]string{LabelAnswerEnd, LabelPhraseMissed, LabelNotPhrase}).Find(&labels).Error; err != nil {
		return nil, err
	}
	for _, l := range labels {
		if l.AtMs == nil || !inside(l.SessionID, *l.AtMs) {
			continue
		}
		want := l.Kind != LabelNotPhrase
		lc.Labelled++
		if hits(activeEnds[l.SessionID], *l.AtMs) == want {
			lc.activeCorrect++
		}
		if hits(shadowEnds[l.SessionID], *l.AtMs) == want {
			lc.shadowCorrect++
		}
	}
	lc.ActiveAccuracy, lc.ShadowAccuracy = ratio(lc.activeCorrect, lc.Labelled), ratio(lc.shadowCorrect, lc.Labelled)
	return cmp, nil
}

func abs64(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}
