package analyzers

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"math"
	"time"

	"gocv.io/x/gocv"

	"proctor/models"
)

func init() {
	Register("identity", func(cfg *Config) (Analyzer, error) { return NewIdentity(cfg.Identity) })
}

// IdentityConfig configures the "identity" analyzer, which must run after "landmarks".
type IdentityConfig struct {
	// Model is the manifest name of the face-embedding model (models/manifests, task
	// face-embedding). Default DefaultIdentityModel, chosen by measurement (docs/vision.md); also
	// "facenet-keras-mirror" (the same without the whitening fitted on the dev people),
	// "facenet-keras" (one pass: half the CPU, more false IDENTITY_MISMATCH over time),
	// "facenet-keras-int8" (static int8: the same TAR at a quarter of the CPU, but more false
	// IDENTITY_MISMATCH over time) and "faceplugin-embedding" (the first default).
	Model string `json:"model,omitempty"`
	// Threshold is the cosine similarity at or above which a face is the enrolled person.
	// Default: the manifest's thresholds.similarity, calibrated at 1% false accepts on a dev
	// split of identities (see the model card; docs/vision.md has the held-out numbers).
	Threshold float32 `json:"threshold,omitempty"`
	// Every: the embedding (~38 ms CPU with facenet-keras, ~11 with facenet-keras-int8) is
	// computed on one frame in Every while the same face track continues (the main face's box
	// overlapping the last one by IoU >= 0.5, as many faces in the frame, same session); frames
	// in between carry the last similarity (Match.Measured false). A new track — the face left,
	// a face more or less in the frame, a jump in position, or a different-looking face in the
	// same place (mean difference of a 16×16 grey thumbnail of the aligned crop above 12 levels:
	// someone else sitting down) — is measured at once. A scene that keeps two faces is carried
	// like one that keeps one: the main face's box and looks decide, not the company it keeps.
	// Default 3; 1 measures every frame.
	Every int `json:"every,omitempty"`
	// MinFace is the smallest face height, in original pixels, whose identity is measured.
	// Default 40: below that the aligned 112×112 crop is mostly interpolation and similarities
	// drop for everyone; a smaller face is not measured (no Match), which never raises a flag.
	MinFace int `json:"min_face,omitempty"`
	// AllFaces matches every face that has an aligned crop, not only the main one (for
	// `proctor analyze image`; the rules read the main face only). Implies Every = 1.
	AllFaces bool `json:"all_faces,omitempty"`
	// Threads is the intra-op thread count of the model session. Default 1.
	Threads int `json:"threads,omitempty"`
	// FirstLook is the manifest name of a cheaper embedding model with the same crop (e.g.
	// facenet-keras-int8) that measures each face first, against the same references: a face
	// whose first-look similarity is at least Threshold + FirstLookMargin is the enrolled person
	// and the full model does not run. Every other face (the ones a decision could turn on) is
	// measured by Model. Such a settled match carries no Embedding (the gallery keeps only the
	// full model's); login frames (Enrollment.Gathering) get the full model (see GatherEvery). Empty: the
	// default model's first look (DefaultIdentityFirstLook) when Model is empty or the default,
	// none otherwise; "none": off.
	FirstLook string `json:"first_look,omitempty"`
	// FirstLookMargin: see FirstLook. Default 0.15.
	FirstLookMargin float32 `json:"first_look_margin,omitempty"`
	// FirstLookStranger: in a session, a face whose first-look similarity is below Threshold −
	// FirstLookStranger is someone else and the full model does not run either (a stranger in
	// view is measured on every frame, each costing the full model ~77 ms otherwise). The line
	// lies far enough below the rules' vote line (Threshold − identity_mismatch_margin) that the
	// full model almost never answers otherwise (DefaultFirstLookStranger). Such a match
	// carries no Embedding. Frames without a session (evaluation, `proctor analyze`) always get
	// the full model. Default DefaultFirstLookStranger; negative: off.
	FirstLookStranger float32 `json:"first_look_stranger,omitempty"`
	// GatherEvery: on login frames (Enrollment.Gathering) the full model measures a continuing
	// face track (see Every) at most once per GatherEvery of capture time, a new track at once;
	// in between the first look measures it, as on answering frames. The faces of a track that
	// continues unchanged would be too alike to join the gallery, and the full model on every
	// measured login frame made the hour of face login cost a third more CPU per frame than
	// answering (docs/vision.md). Default 15s; negative: the full model on every measured login
	// frame.
	GatherEvery time.Duration `json:"gather_every,omitempty"`
}

// DefaultGatherEvery is IdentityConfig.GatherEvery's default.
const DefaultGatherEvery = 15 * time.Second

// DefaultIdentityModel is the embedding model used when IdentityConfig.Model is empty: FaceNet
// with test-time mirroring, which raises a quarter fewer false IDENTITY_MISMATCH flags over time
// than one pass, at twice its CPU, then whitened on the dev people (models/cards/facenet-wccn-rmfd.md:
// higher TAR on the held-back Chinese faces at the same false accepts);
// DefaultIdentityFirstLook spares it on clear matches (docs/vision.md, "Identity over time").
const DefaultIdentityModel = "facenet-keras-mirror-wccn"

// DefaultIdentityFirstLook is the default model's first look (IdentityConfig.FirstLook): the
// int8 model with the same whitening, since its vectors are compared with the default's.
const DefaultIdentityFirstLook = "facenet-keras-int8-wccn"

// ErrNoFaceInPhoto means a registration photo shows no face the landmarks analyzer could align.
var ErrNoFaceInPhoto = errors.New("no face found in the registration photo")

// Enroller is implemented by analyzers that turn a registration photo into an Enrollment (see
// Set.Enroll).
type Enroller interface {
	// EnrollModel is the embedding model ID the Enrollment must carry to be usable.
	EnrollModel() string
	// Enroll embeds the main face of an analysed frame.
	Enroll(f *Frame, obs *Observation) (Enrollment, error)
	// Threshold is the similarity at or above which a face is the enrolled person.
	Threshold() float32
}

// Identity compares the main face of each frame with the session's registration photo. Not safe
// for concurrent use.
type Identity struct {
	emb      *models.FaceEmbedder
	first    *models.FaceEmbedder // FirstLook's model; nil when off
	firstVec []float32
	firstAt  float32 // similarity at or above which the first look settles a match
	// similarity below which the first look settles someone else, in a session (0: never)
	strangerBelow float32
	gatherEvery   time.Duration // see IdentityConfig.GatherEvery (<= 0: off)
	model         string
	version       string
	threshold     float32
	every         int
	minFace       float32
	allFaces      bool
	vec           []float32       // reused embedding buffer
	align         *models.Aligner // the model's own crop; nil when it takes Frame.FaceCrops
	crop          gocv.Mat        // the model's own crop, reused
	small         gocv.Mat        // thumbSide² BGR, reused
	grey          gocv.Mat        // thumbSide² grey, reused
	cropGrey      gocv.Mat        // the aligned crop in grey, reused (sharpness)
	lap           gocv.Mat        // its Laplacian, reused
	thumb         [thumbSide * thumbSide]uint8
	tracks        map[string]*faceTrack
	tick          int64
	// faces measured since creation: settled by the first look as the candidate or as someone
	// else, measured by the full model
	firstLooks, strangerLooks, fullLooks int
}

// faceTrack is the last measured face of one session in this analyzer (one worker's Set).
type faceTrack struct {
	box   [4]float32
	thumb [thumbSide * thumbSide]uint8 // the measured face's aligned crop, tiny and grey
	sim   float32
	photo float32 // similarity with the photo alone
	// sharpness of the measured crop, carried with the similarity
	sharpness float32
	// refs is how many reference faces (photo + gallery) the similarity was measured against:
	// a grown gallery is measured again at once rather than carried.
	refs     int
	faces    int   // faces in the frame measured: a change in the count is measured again
	age      int   // frames carried since the last measurement
	lastTick int64 // for eviction
	// fullAt is when the full model last measured the track (capture time): login frames of a
	// continuing track get it again only GatherEvery later.
	fullAt time.Time
}

// Track appearance check: thumbSide² grey pixels of the aligned crop; a mean absolute
// difference above thumbMaxDiff is another face. Consecutive frames of one person differ by 2–6
// levels (small moves, JPEG noise), different people by 15 or more (measured on the demo frames).
const (
	thumbSide    = 16
	thumbMaxDiff = 12
)

// maxTracks bounds the per-session track cache; the oldest entry is dropped beyond it.
const maxTracks = 512

// NewIdentity loads the model.
func NewIdentity(cfg IdentityConfig) (*Identity, error) {
	name := cfg.Model
	if name == "" {
		name = DefaultIdentityModel
	}
	m, err := models.Load(name)
	if err != nil {
		return nil, fmt.Errorf("identity analyzer: %w", err)
	}
	emb, err := models.NewFaceEmbedder(m, models.SessionOptions{IntraOpThreads: cfg.Threads})
	if err != nil {
		return nil, fmt.Errorf("identity analyzer: %w", err)
	}
	a := &Identity{emb: emb, model: m.ID(), threshold: cfg.Threshold, every: cfg.Every, allFaces: cfg.AllFaces,
		gatherEvery: cfg.GatherEvery, vec: make([]float32, emb.Dim()), tracks: map[string]*faceTrack{},
		small: gocv.NewMat(), grey: gocv.NewMat(), cropGrey: gocv.NewMat(), lap: gocv.NewMat(), crop: gocv.NewMat()}
	if !emb.TakesFaceCrops() {
		a.align = models.NewAlignerTo(emb.Template())
	}
	if a.threshold == 0 {
		a.threshold = m.Thresholds.Similarity
	}
	if a.every <= 0 {
		a.every = 3
	}
	if a.gatherEvery == 0 {
		a.gatherEvery = DefaultGatherEvery
	}
	a.minFace = float32(cfg.MinFace)
	if a.minFace <= 0 {
		a.minFace = 40
	}
	a.version = fmt.Sprintf("%s sim=%g every=%d", a.model, a.threshold, a.every)
	if first := cfg.FirstLook; first == "" && name == DefaultIdentityModel {
		cfg.FirstLook = DefaultIdentityFirstLook
	} else if first == "none" {
		cfg.FirstLook = ""
	}
	if cfg.FirstLook != "" {
		if err := a.openFirstLook(cfg, m); err != nil {
			a.Close()
			return nil, fmt.Errorf("identity analyzer: %w", err)
		}
	}
	return a, nil
}

// openFirstLook loads the cheaper first-look model, which must crop and embed like the full one
// (its vectors are compared with the full model's references).
func (a *Identity) openFirstLook(cfg IdentityConfig, full *models.Manifest) error {
	m, err := models.Load(cfg.FirstLook)
	if err != nil {
		return err
	}
	fi, in := full.Input, m.Input
	if m.Task != full.Task || m.Decode.Dim != full.Decode.Dim || in.Width != fi.Width || in.Height != fi.Height ||
		in.Zoom != fi.Zoom || in.Shift != fi.Shift || in.Colour != fi.Colour {
		return fmt.Errorf("first look %s does not crop and embed like %s", m.ID(), full.ID())
	}
	if a.first, err = models.NewFaceEmbedder(m, models.SessionOptions{IntraOpThreads: cfg.Threads}); err != nil {
		return err
	}
	margin := cfg.FirstLookMargin
	if margin <= 0 {
		margin = DefaultFirstLookMargin
	}
	a.firstVec = make([]float32, m.Decode.Dim)
	a.firstAt = a.threshold + margin
	a.version += fmt.Sprintf(" first=%s+%g", m.ID(), margin)
	if stranger := cfg.FirstLookStranger; stranger >= 0 {
		if stranger == 0 {
			stranger = DefaultFirstLookStranger
		}
		a.strangerBelow = a.threshold - stranger
		a.version += fmt.Sprintf("-%g", stranger)
	}
	return nil
}

// DefaultFirstLookMargin is IdentityConfig.FirstLookMargin's default, chosen on the dev people by
// `proctor eval vision --checks identity-time --identity-first-look` (docs/vision.md).
const DefaultFirstLookMargin = 0.15

// DefaultFirstLookStranger is IdentityConfig.FirstLookStranger's default: with the default
// model's threshold (0.474) the line is 0.174, 0.15 below the default vote line (0.324). The
// int8 and full similarities of one face differ by up to 0.21; on the dev people none of the
// 148 same-person frames below the line by the first look (of 1,703, against the photo) reached
// the vote line by the full model (1 of 212 at a margin of 0.25). docs/vision.md, "Identity
// over time".
const DefaultFirstLookStranger = 0.30

// Name implements Analyzer.
func (a *Identity) Name() string { return "identity" }

// Version implements Analyzer: model, threshold and sampling.
func (a *Identity) Version() string { return a.version }

// Threshold is the same-person similarity in force.
func (a *Identity) Threshold() float32 { return a.threshold }

// MainCameraOnly implements MainCameraOnly.
func (a *Identity) MainCameraOnly() {}

// Requires implements Requirer.
func (a *Identity) Requires() []string { return []string{"faces", "landmarks"} }

// EnrollModel implements Enroller.
func (a *Identity) EnrollModel() string { return a.model }

// Enroll implements Enroller.
func (a *Identity) Enroll(f *Frame, obs *Observation) (Enrollment, error) {
	i := MainFace(obs.Faces, len(f.FaceCrops))
	if i < 0 {
		return Enrollment{}, ErrNoFaceInPhoto
	}
	v := make([]float32, a.emb.Dim())
	if err := a.embed(f, i, v); err != nil {
		return Enrollment{}, err
	}
	return Enrollment{Model: a.model, Vector: v}, nil
}

// embed writes the embedding of face i (which has landmarks and an aligned crop) into dst: from
// Frame.FaceCrops when the model takes the ArcFace 112×112 crop, else from its own crop of the
// frame, aligned on the same five points.
func (a *Identity) embed(f *Frame, i int, dst []float32) error {
	return a.embedWith(a.emb, f, i, dst)
}

func (a *Identity) embedWith(emb *models.FaceEmbedder, f *Frame, i int, dst []float32) error {
	in := f.FaceCrops[i]
	if a.align != nil {
		if i >= len(f.FaceLandmarks) {
			return fmt.Errorf("identity: no landmarks for face %d", i)
		}
		if err := a.align.Align(f.Image, f.FaceLandmarks[i].Five(), &a.crop); err != nil {
			return fmt.Errorf("identity: %w", err)
		}
		in = a.crop
	}
	if err := emb.Embed(in, dst); err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	return nil
}

// Embed writes the embedding of FaceCrops[i] into dst (Dim values); for evaluation tools.
func (a *Identity) Embed(f *Frame, i int, dst []float32) error {
	if i < 0 || i >= len(f.FaceCrops) {
		return fmt.Errorf("identity: no aligned crop for face %d", i)
	}
	return a.embed(f, i, dst)
}

// EmbedFirstLook writes the first-look model's embedding of FaceCrops[i] into dst; false when
// the analyzer has no first look. For evaluation tools.
func (a *Identity) EmbedFirstLook(f *Frame, i int, dst []float32) (bool, error) {
	if a.first == nil {
		return false, nil
	}
	if i < 0 || i >= len(f.FaceCrops) {
		return false, fmt.Errorf("identity: no aligned crop for face %d", i)
	}
	return true, a.embedWith(a.first, f, i, dst)
}

// FirstLookAt is the similarity at or above which the first look settles a match (0: no first
// look).
func (a *Identity) FirstLookAt() float32 {
	if a.first == nil {
		return 0
	}
	return a.firstAt
}

// StrangerBelow is the first-look similarity below which a face in a session is settled as
// someone else (0: never).
func (a *Identity) StrangerBelow() float32 { return a.strangerBelow }

// LastEmbedding is the embedding computed by the latest Analyze that measured (unit length);
// valid until the next call. For evaluation tools.
func (a *Identity) LastEmbedding() []float32 { return a.vec }

// ModelInput is the tensor the latest embedding fed the model; valid until the next call. For
// calibration tools.
func (a *Identity) ModelInput() []float32 { return a.emb.Input() }

// Dim is the embedding length.
func (a *Identity) Dim() int { return a.emb.Dim() }

// Analyze implements Analyzer.
func (a *Identity) Analyze(_ context.Context, f *Frame, obs *Observation) error {
	if f.Enrolled == nil || f.Enrolled.Model != a.model || len(f.Enrolled.Vector) != len(a.vec) {
		return nil // nothing to compare with (the pipeline re-enrols when the model changes)
	}
	if a.allFaces {
		for i := range f.FaceCrops {
			if err := a.embed(f, i, a.vec); err != nil {
				return err
			}
			obs.Faces[i].Match = a.measured(f, i)
		}
		return nil
	}
	i := MainFace(obs.Faces, len(f.FaceCrops))
	if i < 0 || !a.measurable(obs.Faces[i].Box, f.Width, f.Height) {
		return nil
	}
	a.tick++
	box := obs.Faces[i].Box
	var t *faceTrack
	if f.Session != "" {
		t = a.tracks[f.Session]
	}
	haveThumb := a.every > 1 && f.Session != "" && a.thumbnail(f.FaceCrops[i]) == nil
	continuing := t != nil && haveThumb && len(obs.Faces) == t.faces && t.refs == 1+len(f.Enrolled.Gallery) &&
		boxIoU(t.box, box) >= 0.5 && thumbDiff(&t.thumb, &a.thumb) <= thumbMaxDiff
	// A track due for its cadence measurement carries the last one while the picture is quiet
	// since (ScheduleConfig.QuietEvery): the same face gives the same answer. Login frames keep
	// the cadence: they feed the gallery and the login check.
	if continuing && (t.age+1 < a.every || !f.Enrolled.Gathering && f.Plan != nil && f.Plan.Skip(IdentityStep, f, obs)) {
		t.age++
		t.box, t.lastTick = box, a.tick
		obs.Faces[i].Match = &Match{Similarity: t.sim, SamePerson: t.sim >= a.threshold, Threshold: a.threshold,
			Photo: t.photo, Sharpness: t.sharpness}
		return nil
	}
	// A login frame may join the gallery: the full model, unless its track got it lately.
	firstLook := !f.Enrolled.Gathering ||
		continuing && a.gatherEvery > 0 && !f.CapturedAt.IsZero() && f.CapturedAt.Sub(t.fullAt) < a.gatherEvery
	m, err := a.measure(f, i, firstLook)
	if err != nil {
		return err
	}
	obs.Faces[i].Match = m
	if f.Plan != nil {
		f.Plan.Ran(IdentityStep, f, obs)
	}
	sim := m.Similarity
	if f.Session == "" {
		return nil
	}
	var fullAt time.Time
	if t == nil {
		if len(a.tracks) >= maxTracks {
			a.evictOldest()
		}
		t = &faceTrack{}
		a.tracks[f.Session] = t
	} else if continuing {
		fullAt = t.fullAt
	}
	if m.Embedding != nil {
		fullAt = f.CapturedAt
	}
	*t = faceTrack{box: box, sim: sim, photo: m.Photo, sharpness: m.Sharpness, refs: 1 + len(f.Enrolled.Gallery),
		faces: len(obs.Faces), lastTick: a.tick, thumb: a.thumb, fullAt: fullAt}
	if !haveThumb {
		t.age = a.every // no appearance to compare with: measure the next frame again
	}
	return nil
}

// measure embeds face i and matches it: first with the first-look model when there is one and
// firstLook allows it, then, unless that settled it, with the full model.
func (a *Identity) measure(f *Frame, i int, firstLook bool) (*Match, error) {
	if a.first != nil && firstLook {
		if err := a.embedWith(a.first, f, i, a.firstVec); err != nil {
			return nil, err
		}
		best, photo := f.Enrolled.Similarity(a.firstVec)
		settled := best >= a.firstAt
		if settled {
			a.firstLooks++
		} else if settled = f.Session != "" && best < a.strangerBelow; settled {
			a.strangerLooks++
		}
		if settled {
			return &Match{Similarity: best, SamePerson: best >= a.threshold, Measured: true, Threshold: a.threshold,
				Photo: photo, Sharpness: a.sharpness(f.FaceCrops[i])}, nil
		}
	}
	if err := a.embed(f, i, a.vec); err != nil {
		return nil, err
	}
	a.fullLooks++
	return a.measured(f, i), nil
}

// Looks counts the faces the first look settled as the candidate and as someone else, and those
// the full model measured, since the analyzer was made (the bench prints the shares).
func (a *Identity) Looks() (first, stranger, full int) {
	return a.firstLooks, a.strangerLooks, a.fullLooks
}

// thumbnail writes the tiny grey version of an aligned crop into a.thumb.
func (a *Identity) thumbnail(crop gocv.Mat) error {
	gocv.Resize(crop, &a.small, image.Pt(thumbSide, thumbSide), 0, 0, gocv.InterpolationArea)
	if a.small.Empty() {
		return errors.New("identity: thumbnail resize failed")
	}
	gocv.CvtColor(a.small, &a.grey, gocv.ColorBGRToGray)
	if a.grey.Empty() || !a.grey.IsContinuous() {
		return errors.New("identity: thumbnail conversion failed")
	}
	pix, err := a.grey.DataPtrUint8()
	if err != nil || len(pix) != len(a.thumb) {
		return errors.New("identity: thumbnail has the wrong size")
	}
	copy(a.thumb[:], pix)
	return nil
}

func thumbDiff(x, y *[thumbSide * thumbSide]uint8) int {
	var sum int
	for i := range x {
		d := int(x[i]) - int(y[i])
		if d < 0 {
			d = -d
		}
		sum += d
	}
	return sum / len(x)
}

// measurable reports whether a face is worth comparing: large enough, and not cut by the frame
// edge (the detector clips such boxes, the landmarks slide and the similarity drops for the
// right person too).
func (a *Identity) measurable(b [4]float32, w, h int) bool {
	const edge = 2 // pixels
	return b[3] >= a.minFace && b[0] > edge && b[1] > edge &&
		b[0]+b[2] < float32(w)-edge && b[1]+b[3] < float32(h)-edge
}

func (a *Identity) evictOldest() {
	var oldest string
	var at int64 = math.MaxInt64
	for k, t := range a.tracks {
		if t.lastTick < at {
			oldest, at = k, t.lastTick
		}
	}
	delete(a.tracks, oldest)
}

// Close implements Analyzer.
func (a *Identity) Close() error {
	errs := []error{a.small.Close(), a.grey.Close(), a.cropGrey.Close(), a.lap.Close(), a.crop.Close()}
	for _, e := range []*models.FaceEmbedder{a.emb, a.first} {
		if e != nil {
			errs = append(errs, e.Close())
		}
	}
	if a.align != nil {
		errs = append(errs, a.align.Close())
	}
	return errors.Join(errs...)
}

// measured is the Match of FaceCrops[i], whose embedding is in a.vec: the best similarity with
// the photo and gallery, the photo's alone, the crop's sharpness and a copy of the embedding.
func (a *Identity) measured(f *Frame, i int) *Match {
	best, photo := f.Enrolled.Similarity(a.vec)
	return &Match{Similarity: best, SamePerson: best >= a.threshold, Measured: true, Threshold: a.threshold,
		Photo: photo, Sharpness: a.sharpness(f.FaceCrops[i]), Embedding: append([]float32(nil), a.vec...)}
}

// sharpness is the variance of the Laplacian of the crop's grey levels: low for a blurred or
// smeared face (motion, focus, heavy compression), high for a sharp one. 0 when it cannot tell.
func (a *Identity) sharpness(crop gocv.Mat) float32 {
	if crop.Empty() || crop.Channels() != 3 {
		return 0
	}
	gocv.CvtColor(crop, &a.cropGrey, gocv.ColorBGRToGray)
	if a.cropGrey.Empty() {
		return 0
	}
	gocv.Laplacian(a.cropGrey, &a.lap, gocv.MatTypeCV32F, 1, 1, 0, gocv.BorderDefault)
	if a.lap.Empty() {
		return 0
	}
	_, std := meanStd(a.lap)
	return std * std
}

func boxIoU(a, b [4]float32) float32 {
	ix := min(a[0]+a[2], b[0]+b[2]) - max(a[0], b[0])
	iy := min(a[1]+a[3], b[1]+b[3]) - max(a[1], b[1])
	if ix <= 0 || iy <= 0 {
		return 0
	}
	inter := ix * iy
	return inter / (a[2]*a[3] + b[2]*b[3] - inter)
}

// EncodeVector stores an embedding as little-endian float32 bytes (store.Session.FaceEmbedding).
func EncodeVector(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

// DecodeVector reverses EncodeVector; nil for an empty or malformed input.
func DecodeVector(b []byte) []float32 {
	if len(b) == 0 || len(b)%4 != 0 {
		return nil
	}
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v
}

// meanStd is the mean and standard deviation of a one-channel Mat.
func meanStd(m gocv.Mat) (float32, float32) {
	mean, std := gocv.NewMat(), gocv.NewMat()
	defer mean.Close()
	defer std.Close()
	gocv.MeanStdDev(m, &mean, &std)
	if mean.Empty() || std.Empty() {
		return 0, 0
	}
	return float32(mean.GetDoubleAt(0, 0)), float32(std.GetDoubleAt(0, 0))
}
