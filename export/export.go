// Package export turns reviewer decisions into a versioned training dataset (docs/data-loop.md):
// a JSONL manifest plus evidence frames, aligned face crops and 16 kHz WAV snippets, with
// candidates and reviewers replaced by stable pseudonyms. The API (POST /v1/exports) and
// `proctor export` both build it here.
package export

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"gocv.io/x/gocv"

	"proctor/analyzers"
	"proctor/internal/wav"
	"proctor/rules"
	"proctor/store"
)

// FormatVersion is bumped when the layout or a field's meaning changes.
const FormatVersion = 1

// Limits keep one export in memory and in one database row.
const (
	DefaultMaxItems = 5000
	MaxArchiveBytes = 256 << 20
)

// Snippet geometry around a phrase end (ms): trainers see the whole phrase and what follows.
const (
	snippetBeforeMs = 4000
	snippetAfterMs  = 1000
	// nearMs: a detection within this of a reviewer's audio label is the same event.
	nearMs = 1500
)

// Kinds of items.
const (
	KindVision = "vision"
	KindAudio  = "audio"
)

// Filters choose what goes into an export; zero values do not filter.
type Filters struct {
	From      time.Time `json:"from,omitzero"` // session created at or after
	To        time.Time `json:"to,omitzero"`   // session created before
	Exam      string    `json:"exam,omitempty"`
	FlagTypes []string  `json:"flag_types,omitempty"`
	Model     string    `json:"model,omitempty"`    // flags raised with this model version (name@version)
	Verdicts  []string  `json:"verdicts,omitempty"` // flag statuses: confirmed, dismissed, open
	Kinds     []string  `json:"kinds,omitempty"`    // vision, audio (default both)
}

// Validate checks the filters; the message is for the API client.
func (f *Filters) Validate() error {
	// from at or after to selects nothing (an empty export), as the queue's date filters do.
	for _, v := range f.Verdicts {
		if v != store.StatusConfirmed && v != store.StatusDismissed && v != store.StatusOpen {
			return fmt.Errorf("verdict %q unknown (confirmed, dismissed, open)", v)
		}
	}
	for _, k := range f.Kinds {
		if k != KindVision && k != KindAudio {
			return fmt.Errorf("kind %q unknown (vision, audio)", k)
		}
	}
	for _, t := range f.FlagTypes {
		if t == "" || utf8.RuneCountInString(t) > 48 {
			return fmt.Errorf("flag type %q invalid", t)
		}
	}
	if utf8.RuneCountInString(f.Exam) > 128 || utf8.RuneCountInString(f.Model) > 100 {
		return errors.New("exam or model filter too long")
	}
	return nil
}

func (f *Filters) wants(kind string) bool { return len(f.Kinds) == 0 || slices.Contains(f.Kinds, kind) }

// Request is one export to build.
type Request struct {
	OrgID   string
	Actor   string // who asked (key or user), recorded in export.json and the audit log
	Purpose string // why: required, recorded
	Filters Filters
	// MaxItems caps the items (default DefaultMaxItems).
	MaxItems int
	// ActiveModels names the versions running when the export was made (recorded).
	ActiveModels map[string]string
}

// Record is export.json.
type Record struct {
	Format         string            `json:"format"`
	FormatVersion  int               `json:"format_version"`
	ID             string            `json:"id"`
	CreatedAt      time.Time         `json:"created_at"`
	CreatedBy      string            `json:"created_by"`
	Purpose        string            `json:"purpose"`
	Filters        Filters           `json:"filters"`
	Counts         Counts            `json:"counts"`
	ActiveModels   map[string]string `json:"active_models,omitempty"`
	ManifestSHA256 string            `json:"manifest_sha256"`
	Pseudonyms     string            `json:"pseudonyms"`
	Notes          []string          `json:"notes,omitempty"`
}

// Counts says what the export holds and what it had to leave out.
type Counts struct {
	Items   int            `json:"items"`
	Vision  int            `json:"vision"`
	Audio   int            `json:"audio"`
	ByLabel map[string]int `json:"by_label"`
	Skipped map[string]int `json:"skipped,omitempty"`
}

// Item is one manifest line (vision or audio fields set by kind).
type Item struct {
	ID           string `json:"id"`
	Kind         string `json:"kind"`
	Session      string `json:"session"`
	Candidate    string `json:"candidate,omitempty"`
	Exam         string `json:"exam,omitempty"`
	Camera       string `json:"camera,omitempty"`
	CapturedAtMs int64  `json:"captured_at_ms,omitempty"`
	Flag         *Flag  `json:"flag,omitempty"`
	Frame        string `json:"frame,omitempty"`
	Crop         string `json:"crop,omitempty"`
	// FaceBox is x1, y1, x2, y2 of the labelled face in the frame.
	FaceBox *[4]float32 `json:"face_box,omitempty"`
	Labels  *Labels     `json:"labels,omitempty"`

	Audio       string     `json:"audio,omitempty"`
	SampleRate  int        `json:"sample_rate,omitempty"`
	StartMs     int64      `json:"start_ms,omitempty"`
	EndMs       int64      `json:"end_ms,omitempty"`
	Phrase      *bool      `json:"phrase,omitempty"`
	PhraseEndMs *int64     `json:"phrase_end_ms,omitempty"`
	Source      string     `json:"source,omitempty"`
	Reviewed    *bool      `json:"reviewed,omitempty"`
	Detection   *Detection `json:"detection,omitempty"`

	LabelSource string     `json:"label_source,omitempty"`
	LabelledBy  string     `json:"labelled_by,omitempty"`
	LabelledAt  *time.Time `json:"labelled_at,omitempty"`
	Why         string     `json:"why"`
}

// Flag is the flag a vision item is about.
type Flag struct {
	ID         uint    `json:"id"`
	Type       string  `json:"type"`
	Status     string  `json:"status"`
	Model      string  `json:"model"`
	Confidence float64 `json:"confidence"`
}

// Labels are what is known about a frame's main face and people.
type Labels struct {
	Mask      *bool `json:"mask,omitempty"`
	Occluded  *bool `json:"occluded,omitempty"`
	Earphones *bool `json:"earphones,omitempty"`
	// EarsCovered: an ear in view is covered; false: none is (training/vision/train_ears.py).
	EarsCovered *bool `json:"ears_covered,omitempty"`
	Persons     *int  `json:"persons,omitempty"`
}

// Detection is the phrase detection an audio item is about.
type Detection struct {
	Score float32 `json:"score"`
	EndMs int64   `json:"end_ms"`
}

// Builder builds exports from the store.
type Builder struct {
	Store *store.Store
	// Cropper aligns the main face of an evidence frame (nil: crops are computed with the
	// faces and landmarks analyzers on first use).
	Cropper Cropper
}

// Cropper returns the PNG of the main face's aligned crop and its box, or nil without a face.
type Cropper interface {
	Crop(ctx context.Context, jpeg []byte) (png []byte, box *[4]float32, err error)
	Close() error
}

// Result is a built export: its record (export.json), manifest and zip.
type Result struct {
	Record   Record
	Manifest []byte
	Zip      []byte
}

// Build collects the items, writes the zip and returns it; it does not store anything.
func (b *Builder) Build(ctx context.Context, req Request) (*Result, error) {
	if strings.TrimSpace(req.Purpose) == "" {
		return nil, errors.New("an export needs a purpose (why the data is taken)")
	}
	if err := req.Filters.Validate(); err != nil {
		return nil, err
	}
	if req.MaxItems <= 0 {
		req.MaxItems = DefaultMaxItems
	}
	pseudo, err := b.Store.Pseudonymizer(ctx, req.OrgID)
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	rec := Record{Format: "proctor-export", FormatVersion: FormatVersion, ID: newID(now), CreatedAt: now,
		CreatedBy: req.Actor, Purpose: req.Purpose, Filters: req.Filters, ActiveModels: req.ActiveModels,
		Pseudonyms: "HMAC-SHA256 under a random per-organisation key (stable across exports, not reversible without the service database)",
		Counts:     Counts{ByLabel: map[string]int{}, Skipped: map[string]int{}}}
	w := &writer{rec: &rec, pseudo: pseudo, files: map[string][]byte{}}
	q := store.DatasetQuery{OrgID: req.OrgID, ExamID: req.Filters.Exam, From: req.Filters.From, To: req.Filters.To,
		FlagTypes: req.Filters.FlagTypes, Model: req.Filters.Model, ModelOf: rules.ModelOfFlag, Verdicts: req.Filters.Verdicts, Limit: req.MaxItems}
	labels, err := b.Store.DatasetLabels(ctx, q, now)
	if err != nil {
		return nil, err
	}
	sessions := map[string]*store.Session{}
	session := func(id string) (*store.Session, error) {
		if s, ok := sessions[id]; ok {
			return s, nil
		}
		s, err := b.Store.GetSession(ctx, req.OrgID, id)
		if err != nil {
			return nil, err
		}
		sessions[id] = s
		return s, nil
	}
	if req.Filters.wants(KindVision) {
		if err := b.vision(ctx, w, q, labels, req.MaxItems); err != nil {
			return nil, err
		}
	}
	if req.Filters.wants(KindAudio) {
		if err := b.audio(ctx, w, q, labels, session, req.MaxItems); err != nil {
			return nil, err
		}
	}
	if b.Cropper != nil && w.cropErr != "" {
		rec.Notes = append(rec.Notes, "face crops unavailable: "+w.cropErr)
	}
	return w.finish()
}

// vision adds one item per reviewed or labelled flag that has an evidence frame.
func (b *Builder) vision(ctx context.Context, w *writer, q store.DatasetQuery, labels []store.Label, maxItems int) error {
	flags, err := b.Store.DatasetFlags(ctx, q)
	if err != nil {
		return err
	}
	latest := map[uint]store.Label{} // the latest attribute label per flag wins
	for _, l := range labels {
		if l.Kind == store.LabelAttribute && l.FlagID != nil {
			latest[*l.FlagID] = l
		}
	}
	for _, f := range flags {
		if w.rec.Counts.Items >= maxItems {
			w.rec.Counts.Skipped["over_max_items"]++
			continue
		}
		lab, hasLabel := latest[f.ID]
		if !hasLabel && f.Status == store.StatusOpen {
			continue // nothing known about it yet
		}
		ev, err := b.Store.GetEvidence(ctx, f.ID)
		if errors.Is(err, store.ErrNotFound) {
			w.rec.Counts.Skipped["no_evidence_frame"]++
			continue
		} else if err != nil {
			return err
		}
		it := Item{Kind: KindVision, Session: w.pseudo.Of("s_", f.SessionID), Candidate: w.pseudo.Of("c_", f.CandidateID),
			Exam: f.ExamID, Camera: ev.Camera, CapturedAtMs: ev.CapturedAtMs,
			Flag:   &Flag{ID: f.ID, Type: f.Type, Status: f.Status, Model: rules.ModelOfFlag(f.Type, f.ModelVersion), Confidence: f.Confidence},
			Labels: &Labels{}}
		if hasLabel {
			it.Labels = &Labels{Mask: lab.Mask, Occluded: lab.Occluded, Earphones: lab.Earphones, EarsCovered: lab.EarsCovered, Persons: lab.Persons}
			it.LabelSource, it.LabelledBy, it.LabelledAt = "reviewer", w.pseudo.Of("r_", lab.Reviewer), &lab.CreatedAt
			it.Why = fmt.Sprintf("reviewer attribute label %d on flag %d", lab.ID, f.ID)
		} else {
			implied(&it, f.Type, f.Status)
			it.LabelSource = "verdict"
			it.Why = fmt.Sprintf("flag %d %s by a reviewer", f.ID, f.Status)
		}
		id := w.nextID("v")
		it.ID, it.Frame = id, "frames/"+id+".jpg"
		w.files[it.Frame] = ev.JPEG
		if png, box, err := b.crop(ctx, ev.JPEG); err != nil {
			w.cropErr = err.Error()
			w.rec.Counts.Skipped["crop_unavailable"]++
		} else if png == nil {
			w.rec.Counts.Skipped["no_face_in_frame"]++
		} else {
			it.Crop, it.FaceBox = "crops/"+id+".png", box
			w.files[it.Crop] = png
		}
		w.add(it)
	}
	return nil
}

// implied turns a verdict on an attribute flag into a label: a confirmed MASK flag shows a
// mask, a dismissed one (the reviewer saw none) does not.
func implied(it *Item, flagType, status string) {
	if status != store.StatusConfirmed && status != store.StatusDismissed {
		return
	}
	v := status == store.StatusConfirmed
	switch flagType {
	case "MASK":
		it.Labels.Mask = &v
	case "FACE_OCCLUDED":
		it.Labels.Occluded = &v
	case "EARS_COVERED":
		it.Labels.EarsCovered = &v
	case "EARPHONES":
		it.Labels.Earphones = &v
	}
}

func (b *Builder) crop(ctx context.Context, jpeg []byte) ([]byte, *[4]float32, error) {
	if b.Cropper == nil {
		c, err := NewFaceCropper()
		if err != nil {
			return nil, nil, err
		}
		b.Cropper = c
	}
	return b.Cropper.Crop(ctx, jpeg)
}

// Close releases the cropper's models.
func (b *Builder) Close() error {
	if b.Cropper != nil {
		return b.Cropper.Close()
	}
	return nil
}

// audio adds reviewer audio labels as snippets, and the phrase detections nobody labelled.
func (b *Builder) audio(ctx context.Context, w *writer, q store.DatasetQuery, labels []store.Label,
	session func(string) (*store.Session, error), maxItems int) error {
	phrases, err := b.Store.DatasetPhrases(ctx, q)
	if err != nil {
		return err
	}
	type event struct {
		sessionID string
		atMs      int64
		phrase    bool
		source    string
		reviewed  bool
		label     *store.Label
		det       *store.PhraseDetection
	}
	var events []event
	labelled := map[string][]int64{} // session → times of reviewer audio labels
	for i := range labels {
		l := &labels[i]
		if l.Kind == store.LabelAttribute || l.AtMs == nil {
			continue
		}
		events = append(events, event{sessionID: l.SessionID, atMs: *l.AtMs, phrase: l.Kind != store.LabelNotPhrase,
			source: l.Kind, reviewed: true, label: l})
		labelled[l.SessionID] = append(labelled[l.SessionID], *l.AtMs)
	}
	for i := range phrases {
		p := &phrases[i]
		near := false
		for _, t := range labelled[p.SessionID] {
			near = near || abs(t-p.EndMs) <= nearMs
		}
		if near {
			continue // a reviewer said what it was: that label's item stands for it
		}
		events = append(events, event{sessionID: p.SessionID, atMs: p.EndMs, phrase: true, source: "detection", det: p})
	}
	// Reviewer labels refer to detections by time: attach the detection they are about.
	for i := range events {
		e := &events[i]
		if e.det != nil {
			continue
		}
		for j := range phrases {
			if phrases[j].SessionID == e.sessionID && abs(phrases[j].EndMs-e.atMs) <= nearMs {
				e.det = &phrases[j]
			}
		}
	}
	sort.SliceStable(events, func(i, j int) bool {
		if events[i].sessionID != events[j].sessionID {
			return events[i].sessionID < events[j].sessionID
		}
		return events[i].atMs < events[j].atMs
	})
	for _, e := range events {
		if w.rec.Counts.Items >= maxItems {
			w.rec.Counts.Skipped["over_max_items"]++
			continue
		}
		sess, err := session(e.sessionID)
		if errors.Is(err, store.ErrNotFound) {
			continue
		} else if err != nil {
			return err
		}
		from, to := e.atMs-snippetBeforeMs, e.atMs+snippetAfterMs
		pcm, covered, err := b.snippet(ctx, e.sessionID, from, to)
		if err != nil {
			return err
		}
		if covered < 0.5 {
			w.rec.Counts.Skipped["no_stored_audio"]++
			continue
		}
		phrase, reviewed := e.phrase, e.reviewed
		it := Item{Kind: KindAudio, Session: w.pseudo.Of("s_", sess.ID), Candidate: w.pseudo.Of("c_", sess.CandidateID),
			Exam: sess.ExamID, SampleRate: analyzers.AudioRate, StartMs: from, EndMs: to, Phrase: &phrase,
			Source: e.source, Reviewed: &reviewed}
		if phrase {
			end := int64(snippetBeforeMs)
			it.PhraseEndMs = &end
		}
		if e.det != nil {
			it.Detection = &Detection{Score: e.det.Score, EndMs: e.det.EndMs}
		}
		if e.label != nil {
			it.LabelSource, it.LabelledBy, it.LabelledAt = "reviewer", w.pseudo.Of("r_", e.label.Reviewer), &e.label.CreatedAt
			it.Why = fmt.Sprintf("reviewer %s label %d at %d ms", e.label.Kind, e.label.ID, e.atMs)
		} else {
			it.LabelSource = "model"
			it.Why = fmt.Sprintf("phrase detection at %d ms (score %.2f), not reviewed", e.atMs, e.det.Score)
		}
		id := w.nextID("a")
		it.ID, it.Audio = id, "audio/"+id+".wav"
		w.files[it.Audio] = wav.Encode(analyzers.EncodePCM16(pcm), analyzers.AudioRate)
		w.add(it)
	}
	return nil
}

// snippet assembles [fromMs, toMs) of a session's stored audio at 16 kHz; parts without audio
// are silence. covered is the share of the window that had audio.
func (b *Builder) snippet(ctx context.Context, sessionID string, fromMs, toMs int64) ([]float32, float64, error) {
	chunks, err := b.Store.AudioSamplesBetween(ctx, sessionID, fromMs, toMs)
	if err != nil {
		return nil, 0, err
	}
	const rate = analyzers.AudioRate
	out := make([]float32, (toMs-fromMs)*rate/1000)
	filled := 0
	for _, c := range chunks {
		if c.SampleRate <= 0 || len(c.PCM) < 2 {
			continue
		}
		in := make([]float32, len(c.PCM)/2)
		for i := range in {
			in[i] = float32(int16(binary.LittleEndian.Uint16(c.PCM[2*i:]))) / 32768
		}
		if c.SampleRate != rate {
			in = analyzers.Resample(in, c.SampleRate, rate)
		}
		off := (c.CapturedAtMs - fromMs) * rate / 1000
		for i, v := range in {
			j := off + int64(i)
			if j >= 0 && j < int64(len(out)) {
				out[j] = v
				filled++
			}
		}
	}
	return out, float64(filled) / float64(max(len(out), 1)), nil
}

// writer accumulates items and files.
type writer struct {
	rec     *Record
	pseudo  *store.Pseudonymizer
	lines   bytes.Buffer
	files   map[string][]byte
	cropErr string
	n       int
}

func (w *writer) nextID(prefix string) string {
	w.n++
	return fmt.Sprintf("%s%06d", prefix, w.n)
}

func (w *writer) add(it Item) {
	line, _ := json.Marshal(it)
	w.lines.Write(line)
	w.lines.WriteByte('\n')
	c := &w.rec.Counts
	c.Items++
	if it.Kind == KindVision {
		c.Vision++
		l := it.Labels
		count := func(name string, v *bool) {
			if v != nil {
				c.ByLabel[fmt.Sprintf("%s=%t", name, *v)]++
			}
		}
		count("mask", l.Mask)
		count("occluded", l.Occluded)
		count("earphones", l.Earphones)
		count("ears_covered", l.EarsCovered)
		if l.Persons != nil {
			c.ByLabel[fmt.Sprintf("persons=%d", *l.Persons)]++
		}
	} else {
		c.Audio++
		c.ByLabel[fmt.Sprintf("phrase=%t/%s", *it.Phrase, it.Source)]++
	}
}

// finish writes export.json, manifest.jsonl and the files into a zip under the export's id.
func (w *writer) finish() (*Result, error) {
	manifest := w.lines.Bytes()
	sum := sha256.Sum256(manifest)
	w.rec.ManifestSHA256 = hex.EncodeToString(sum[:])
	recJSON, err := json.MarshalIndent(w.rec, "", "  ")
	if err != nil {
		return nil, err
	}
	var z bytes.Buffer
	zw := zip.NewWriter(&z)
	put := func(name string, data []byte, method uint16) error {
		f, err := zw.CreateHeader(&zip.FileHeader{Name: w.rec.ID + "/" + name, Method: method, Modified: w.rec.CreatedAt})
		if err != nil {
			return err
		}
		_, err = f.Write(data)
		return err
	}
	if err := put("export.json", append(recJSON, '\n'), zip.Deflate); err != nil {
		return nil, err
	}
	if err := put("manifest.jsonl", manifest, zip.Deflate); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(w.files))
	for n := range w.files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		method := zip.Deflate
		if path.Ext(n) != ".wav" {
			method = zip.Store // JPEG and PNG are compressed already
		}
		if err := put(n, w.files[n], method); err != nil {
			return nil, err
		}
		if z.Len() > MaxArchiveBytes {
			return nil, fmt.Errorf("export over %d MiB: narrow the filters (time range, exam, flag types)", MaxArchiveBytes>>20)
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return &Result{Record: *w.rec, Manifest: manifest, Zip: z.Bytes()}, nil
}

// Unzip writes an export archive under dir (dir/<export id>/...) and returns that folder.
// Names are checked so an archive cannot write outside dir.
func Unzip(archive []byte, dir string) (string, error) {
	zr, err := zip.NewReader(bytes.NewReader(archive), int64(len(archive)))
	if err != nil {
		return "", err
	}
	root := ""
	for _, f := range zr.File {
		name := path.Clean(f.Name)
		if strings.HasPrefix(name, "../") || path.IsAbs(name) || strings.Contains(name, "/../") {
			return "", fmt.Errorf("archive entry %q escapes the folder", f.Name)
		}
		top, _, _ := strings.Cut(name, "/")
		if root == "" {
			root = top
		}
		dst := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return "", err
		}
		rc, err := f.Open()
		if err != nil {
			return "", err
		}
		data, err := io.ReadAll(io.LimitReader(rc, MaxArchiveBytes))
		rc.Close()
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			return "", err
		}
	}
	return filepath.Join(dir, root), nil
}

func newID(t time.Time) string {
	b := make([]byte, 4)
	rand.Read(b)
	return "exp_" + t.Format("20060102T150405") + "_" + hex.EncodeToString(b)
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

// FaceCropper aligns faces with the service's own faces + landmarks analyzers, so crops are
// exactly what the attire model sees in production.
type FaceCropper struct{ set *analyzers.Set }

// NewFaceCropper loads the face detector and landmark models.
func NewFaceCropper() (*FaceCropper, error) {
	set, err := analyzers.NewSet(analyzers.Config{Analyzers: []string{"faces", "landmarks"}})
	if err != nil {
		return nil, err
	}
	return &FaceCropper{set: set}, nil
}

// Crop implements Cropper: the largest face's aligned crop as PNG, box as x1, y1, x2, y2.
func (c *FaceCropper) Crop(ctx context.Context, jpeg []byte) ([]byte, *[4]float32, error) {
	f, err := analyzers.DecodeJPEG(jpeg, c.set.DecodeSide())
	if err != nil {
		return nil, nil, nil // not a decodable frame: no crop, the frame still goes in
	}
	defer f.Image.Close()
	obs, err := c.set.Analyze(ctx, &f)
	if err != nil {
		return nil, nil, err
	}
	best := analyzers.MainFace(obs.Faces, len(f.FaceCrops))
	if best < 0 || len(f.FaceCrops) == 0 {
		return nil, nil, nil
	}
	buf, err := gocv.IMEncode(gocv.PNGFileExt, f.FaceCrops[best])
	if err != nil {
		return nil, nil, err
	}
	defer buf.Close()
	b := obs.Faces[best].Box
	box := [4]float32{b[0], b[1], b[0] + b[2], b[1] + b[3]}
	return bytes.Clone(buf.GetBytes()), &box, nil
}

// Close implements Cropper.
func (c *FaceCropper) Close() error { return c.set.Close() }

// StoreRecord is the database row of a built export (the zip included).
func (r *Result) StoreRecord(orgID string) *store.Export {
	filters, _ := json.Marshal(r.Record.Filters)
	counts, _ := json.Marshal(r.Record.Counts)
	return &store.Export{ID: r.Record.ID, OrgID: orgID, CreatedBy: r.Record.CreatedBy, Purpose: r.Record.Purpose,
		Filters: string(filters), Counts: string(counts), ManifestSHA256: r.Record.ManifestSHA256,
		Bytes: int64(len(r.Zip)), Archive: r.Zip, CreatedAt: r.Record.CreatedAt}
}
