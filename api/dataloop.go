package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime/multipart"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"proctor/export"
	"proctor/internal/modelversions"
	"proctor/models"
	"proctor/rules"
	"proctor/store"
)

// The data-team loop (docs/data-loop.md): reviewer labels, dataset exports, model versions
// with shadow and promotion, and per-model precision.
func (s *Server) dataLoopRoutes(v1 fiber.Router) {
	review, admin := s.auth(store.ScopeReview), s.auth(store.ScopeAdmin)
	reviewOrData, data := s.auth(store.ScopeReview, store.ScopeData), s.auth(store.ScopeData)

	v1.Post("/sessions/:id/labels", review, s.postLabel)
	v1.Get("/sessions/:id/labels", reviewOrData, s.listLabels)
	v1.Delete("/labels/:lid", review, s.withdrawLabel)

	v1.Post("/exports", data, s.createExport)
	v1.Get("/exports", data, s.listExports)
	v1.Get("/exports/:eid", data, maxParams(exportID), s.getExport)
	v1.Get("/exports/:eid/archive", data, maxParams(exportID), s.getExportArchive)

	v1.Get("/models", data, s.listModels)
	v1.Post("/models", data, s.registerModel)
	model := maxParams(modelParams)
	v1.Get("/models/:name/:version/compare", data, model, s.compareModel)
	v1.Post("/models/:name/:version/shadow", data, model, s.modelAction(store.ActionShadow))
	v1.Post("/models/:name/:version/unshadow", data, model, s.modelAction(store.ActionUnshadow))
	v1.Post("/models/:name/:version/promote", admin, model, s.modelAction(store.ActionPromote))
	v1.Post("/models/:name/rollback", admin, model, s.modelAction(store.ActionRollback))

	v1.Get("/precision", data, maxParams(map[string]int{"flag_type": 48}), s.getPrecision)
}

// labelIn is the body of POST /v1/sessions/{id}/labels.
type labelIn struct {
	Kind      string `json:"kind"`
	AtMs      *int64 `json:"at_ms"`
	FlagID    *uint  `json:"flag_id"`
	Mask      *bool  `json:"mask"`
	Occluded  *bool  `json:"occluded"`
	Earphones *bool  `json:"earphones"`
	EarsCov   *bool  `json:"ears_covered"`
	Persons   *int   `json:"persons"`
	Note      string `json:"note"`
}

func (s *Server) postLabel(c *fiber.Ctx) error {
	sess, err := s.sessionOf(c)
	if err != nil {
		return err
	}
	var in labelIn
	if err := strictJSON(c.Body(), &in); err != nil {
		return bad(fiber.StatusBadRequest, "label: "+err.Error())
	}
	if in.FlagID != nil && (*in.FlagID == 0 || *in.FlagID > maxID) {
		return bad(fiber.StatusBadRequest, "flag_id must be a whole number from 1 to "+strconv.FormatUint(maxID, 10))
	}
	p := principal(c)
	l := &store.Label{OrgID: p.OrgID, SessionID: sess.ID, Kind: in.Kind, AtMs: in.AtMs, FlagID: in.FlagID,
		Mask: in.Mask, Occluded: in.Occluded, Earphones: in.Earphones, EarsCovered: in.EarsCov, Persons: in.Persons, Note: in.Note, Reviewer: p.Actor}
	if err := l.Validate(); err != nil {
		return bad(fiber.StatusBadRequest, err.Error())
	}
	if err := s.store.AddLabel(c.UserContext(), l, c.IP()); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return bad(fiber.StatusBadRequest, strings.TrimPrefix(err.Error(), store.ErrNotFound.Error()+": "))
		}
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(l)
}

func (s *Server) listLabels(c *fiber.Ctx) error {
	sess, err := s.sessionOf(c)
	if err != nil {
		return err
	}
	labels, err := s.store.SessionLabels(c.UserContext(), sess.ID)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"session_id": sess.ID, "labels": labels})
}

func (s *Server) withdrawLabel(c *fiber.Ctx) error {
	id, err := parseID(c.Params("lid"), "label id")
	if err != nil {
		return err
	}
	p := principal(c)
	l, err := s.store.WithdrawLabel(c.UserContext(), p.OrgID, id, p.Actor, c.IP())
	if errors.Is(err, store.ErrNotFound) {
		return bad(fiber.StatusNotFound, "no label "+c.Params("lid"))
	}
	if err != nil {
		return err
	}
	return c.JSON(l)
}

// exportIn is the body of POST /v1/exports.
type exportIn struct {
	Purpose string `json:"purpose"`
	export.Filters
	MaxItems int `json:"max_items"`
}

// exportMu serialises export builds in this process: each holds its archive in memory.
var exportMu sync.Mutex

func (s *Server) createExport(c *fiber.Ctx) error {
	var in exportIn
	if err := strictJSON(c.Body(), &in); err != nil {
		return bad(fiber.StatusBadRequest, "export: "+err.Error()+" (from/to are RFC 3339 times)")
	}
	if err := in.Filters.Validate(); err != nil {
		return bad(fiber.StatusBadRequest, err.Error())
	}
	if err := checkFields(field{"purpose", in.Purpose, 1000}); err != nil {
		return err
	}
	if blank(in.Purpose) {
		return bad(fiber.StatusBadRequest, "purpose is required (why the data is exported, at most 1000 characters)")
	}
	if in.MaxItems < 0 || in.MaxItems > export.DefaultMaxItems {
		return bad(fiber.StatusBadRequest, "max_items must be between 0 and "+strconv.Itoa(export.DefaultMaxItems))
	}
	p := principal(c)
	ctx := c.UserContext()
	inForce, err := modelversions.InForce(ctx, s.store)
	if err != nil {
		return err
	}
	exportMu.Lock()
	defer exportMu.Unlock()
	b := &export.Builder{Store: s.store, Cropper: s.cropper}
	res, err := b.Build(ctx, export.Request{OrgID: p.OrgID, Actor: p.Actor, Purpose: in.Purpose, Filters: in.Filters,
		MaxItems: in.MaxItems, ActiveModels: inForce})
	if err != nil && !store.IsDatabaseError(err) {
		return bad(fiber.StatusBadRequest, err.Error())
	}
	if err != nil {
		return err // logged, never echoed
	}
	s.cropper = b.Cropper // loaded once, reused by later exports (under exportMu)
	rec, err := s.saveExport(c, res)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(rec)
}

// exportOut is an export's record with links.
type exportOut struct {
	store.Export
	Record  json.RawMessage `json:"record,omitempty"`
	Archive string          `json:"archive"`
}

func (s *Server) saveExport(c *fiber.Ctx, res *export.Result) (*exportOut, error) {
	e := res.StoreRecord(principal(c).OrgID)
	if err := s.store.SaveExport(c.UserContext(), e, c.IP()); err != nil {
		return nil, err
	}
	rec, _ := json.Marshal(res.Record)
	return &exportOut{Export: *e, Record: rec, Archive: "/v1/exports/" + e.ID + "/archive"}, nil
}

func (s *Server) listExports(c *fiber.Ctx) error {
	list, err := s.store.ListExports(c.UserContext(), principal(c).OrgID, 200)
	if err != nil {
		return err
	}
	out := make([]exportOut, len(list))
	for i, e := range list {
		out[i] = exportOut{Export: e, Archive: "/v1/exports/" + e.ID + "/archive"}
	}
	return c.JSON(fiber.Map{"exports": out})
}

func (s *Server) exportOf(c *fiber.Ctx, withArchive bool) (*store.Export, error) {
	e, err := s.store.GetExport(c.UserContext(), principal(c).OrgID, c.Params("eid"), withArchive)
	if errors.Is(err, store.ErrNotFound) {
		return nil, bad(fiber.StatusNotFound, "no export "+c.Params("eid"))
	}
	return e, err
}

func (s *Server) getExport(c *fiber.Ctx) error {
	e, err := s.exportOf(c, false)
	if err != nil {
		return err
	}
	return c.JSON(exportOut{Export: *e, Archive: "/v1/exports/" + e.ID + "/archive"})
}

func (s *Server) getExportArchive(c *fiber.Ctx) error {
	e, err := s.exportOf(c, true)
	if err != nil {
		return err
	}
	if err := s.audit(c, "export.download", "export:"+e.ID, map[string]any{"bytes": e.Bytes}); err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, "application/zip")
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="`+e.ID+`.zip"`)
	return c.Send(e.Archive)
}

// modelOut is one model for GET /v1/models: the built-in version and the registered ones.
type modelOut struct {
	Name     string               `json:"name"`
	BuiltIn  string               `json:"built_in"`
	Active   string               `json:"active"`
	Shadow   string               `json:"shadow,omitempty"`
	Versions []store.ModelVersion `json:"versions"`
}

func (s *Server) listModels(c *fiber.Ctx) error {
	all, err := s.store.ListModelVersions(c.UserContext(), "")
	if err != nil {
		return err
	}
	var out []modelOut
	for _, name := range models.Retrainable {
		m, err := models.Lookup(name)
		if err != nil {
			return err
		}
		mo := modelOut{Name: name, BuiltIn: m.ID(), Active: m.ID(), Versions: []store.ModelVersion{}}
		for _, v := range all {
			if v.Name != name {
				continue
			}
			v.Manifest, v.Card = "", "" // listing stays small; the version's own route has them
			mo.Versions = append(mo.Versions, v)
			switch v.Status {
			case store.ModelActive:
				mo.Active = v.Ref()
			case store.ModelShadow:
				mo.Shadow = v.Ref()
			}
		}
		out = append(out, mo)
	}
	return c.JSON(fiber.Map{"models": out})
}

// registerModel takes multipart parts "manifest" (JSON) and "model" (ONNX), optionally "card"
// (Markdown) and "eval" (JSON), checks them like a worker will, and stores the version.
func (s *Server) registerModel(c *fiber.Ctx) error {
	form, err := c.MultipartForm()
	if err != nil {
		return bad(fiber.StatusBadRequest, "send multipart/form-data with parts manifest (JSON) and model (ONNX)")
	}
	part := func(name string, limit int64, required bool) ([]byte, error) {
		var fh *multipart.FileHeader
		if fs := form.File[name]; len(fs) > 0 {
			fh = fs[0]
		}
		if fh == nil {
			if v := form.Value[name]; len(v) > 0 {
				return []byte(v[0]), nil
			}
			if required {
				return nil, bad(fiber.StatusBadRequest, "missing part "+name)
			}
			return nil, nil
		}
		if fh.Size > limit {
			return nil, bad(fiber.StatusRequestEntityTooLarge, name+" is larger than "+strconv.FormatInt(limit, 10)+" bytes")
		}
		f, err := fh.Open()
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return io.ReadAll(io.LimitReader(f, limit+1))
	}
	mj, err := part("manifest", 64<<10, true)
	if err != nil {
		return err
	}
	data, err := part("model", models.MaxRegisteredBytes, true)
	if err != nil {
		return err
	}
	card, err := part("card", 256<<10, false)
	if err != nil {
		return err
	}
	eval, err := part("eval", 256<<10, false)
	if err != nil {
		return err
	}
	p := principal(c)
	v, err := modelversions.Prepare(mj, data, card, eval, p.Actor)
	switch {
	case errors.Is(err, modelversions.ErrRefused):
		// A well-formed upload whose files are unusable (manifest, checksum, contract, ONNX).
		return bad(fiber.StatusUnprocessableEntity, err.Error())
	case errors.Is(err, store.ErrConflict):
		return bad(fiber.StatusConflict, err.Error())
	case err != nil:
		return err
	}
	if err := s.store.RegisterModel(c.UserContext(), v, p.OrgID, c.IP()); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return bad(fiber.StatusConflict, err.Error())
		}
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(v)
}

// modelActionIn is the optional body of the rollout actions.
type modelActionIn struct {
	Reason string `json:"reason"`
}

func (s *Server) modelAction(action store.ModelAction) fiber.Handler {
	return func(c *fiber.Ctx) error {
		var in modelActionIn
		if len(c.Body()) > 0 {
			if err := strictJSON(c.Body(), &in); err != nil {
				return bad(fiber.StatusBadRequest, err.Error())
			}
		}
		name := c.Params("name")
		if _, err := models.Lookup(name); err != nil || !models.IsRetrainable(name) {
			return bad(fiber.StatusNotFound, "no retrainable model "+name)
		}
		p := principal(c)
		active, shadow, err := modelversions.Change(c.UserContext(), s.store, action, name, c.Params("version"), p.Actor, p.OrgID, c.IP(), in.Reason)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return bad(fiber.StatusNotFound, err.Error())
		case errors.Is(err, store.ErrConflict):
			return bad(fiber.StatusConflict, err.Error())
		case err != nil:
			return err
		}
		if active == "built-in" {
			m, _ := models.Lookup(name)
			active = m.ID() + " (built-in)"
		}
		return c.JSON(fiber.Map{"model": name, "action": action, "active": active, "shadow": shadow,
			"note": "workers switch within their model poll interval"})
	}
}

func (s *Server) compareModel(c *fiber.Ctx) error {
	since, err := queryTime(c, "since", time.Now().Add(-7*24*time.Hour))
	if err != nil {
		return err
	}
	ref := c.Params("name") + "@" + c.Params("version")
	cmp, err := s.store.CompareShadow(c.UserContext(), principal(c).OrgID, ref, since)
	if err != nil {
		return err
	}
	return c.JSON(cmp)
}

func (s *Server) getPrecision(c *fiber.Ctx) error {
	bucket, ok := queryValue(c, "bucket")
	if !ok {
		bucket = "week"
	}
	q := store.PrecisionQuery{OrgID: principal(c).OrgID, ModelOf: rules.ModelOfFlag, Bucket: bucket, FlagType: c.Query("flag_type"),
		Model: c.Query("model")}
	switch bucket {
	case "all":
		q.Bucket = ""
	case "day", "week":
	default:
		return bad(fiber.StatusBadRequest, "bucket must be day, week or all")
	}
	from, to, err := dateRange(c)
	if err != nil {
		return err
	}
	q.From, q.To = from.UTC(), to.UTC()
	rows, err := s.store.Precision(c.UserContext(), q)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"bucket": bucket, "rows": rows})
}

// strictJSON decodes one JSON object and refuses unknown fields, so a typo is an error rather
// than a silently ignored filter.
func strictJSON(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if where := jsonNull(body, nil); where != "" {
		return errors.New(where + ": null is not allowed; leave the field out or send a value")
	}
	return nil
}
