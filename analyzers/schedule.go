package analyzers

import (
	"errors"
	"image"
	"maps"
	"slices"
	"sync"
	"time"

	"gocv.io/x/gocv"
)

// A Planner decides, frame by frame, whether an analyzer runs (Schedule is the pipeline's). Set
// asks it before each analyzer of a frame that carries one (FrameMeta.Plan).
type Planner interface {
	// Skip reports whether the named analyzer need not run on f, given what the analyzers before
	// it observed. When it says skip it has filled obs with the analyzer's last measured output
	// and named the analyzer in obs.Carried.
	Skip(analyzer string, f *Frame, obs *Observation) bool
	// Ran tells the planner the analyzer ran on f and left its output in obs.
	Ran(analyzer string, f *Frame, obs *Observation)
}

// ScheduleConfig tunes Schedule. Zero values take the defaults.
type ScheduleConfig struct {
	// PersonsEvery is the longest a camera goes without a person/phone detection, in capture
	// time. Between runs the detector's last counts are carried over (and marked), but only
	// while nothing the cheap analyzers see has changed: see Schedule. Default 10s; negative
	// runs the detector on every frame.
	PersonsEvery time.Duration `json:"persons_every,omitempty"`
	// SceneDelta is the change in a 32×24 grey thumbnail cell (0–255), outside the candidate's
	// face, that counts as the scene changing (someone or something came into view): the
	// detector then runs at once. Default 18: above sensor and JPEG noise (averaged over
	// 20×20-pixel cells of a 640×480 frame it stays under 6), below a hand or a phone
	// entering (tens of levels).
	SceneDelta int `json:"scene_delta,omitempty"`
	// SceneCells is how many thumbnail cells must change by SceneDelta. Default 2: a phone held
	// up covers 4–10 cells of 640×480.
	SceneCells int `json:"scene_cells,omitempty"`
	// HeadPoseEvery is the longest the main camera goes without the head-pose network on the
	// main face. In between, a fit of a 3D face to the landmarks (headpose_pnp.go, microseconds)
	// watches the pose: the network runs again as soon as that fit moves by PoseDelta degrees,
	// and on every frame while the last measured pose is near the limits. Default 5s; negative
	// runs the network on every frame.
	HeadPoseEvery time.Duration `json:"headpose_every,omitempty"`
	// PoseDelta is the change of the landmark fit's yaw or pitch, in degrees, that makes the
	// head-pose network run. Default 6.
	PoseDelta float32 `json:"pose_delta,omitempty"`
	// PoseNear is the yaw (and PoseNear·5/7 the pitch), in degrees, from which the pose is
	// measured on every frame: a candidate turned close to the limits (35°/25° by default) is
	// judged on measured values only. Default 28 (7° short of the default yaw limit, more than a
	// PoseDelta of the fit; candidates often sit 20–25° off their laptop camera's axis). Lower it
	// with the limits when exams set tighter ones.
	PoseNear float32 `json:"pose_near,omitempty"`
	// IdentityEvery is the identity analyzer's IdentityConfig.Every in the pipeline when that is
	// not set: the embedding (~11 ms) on every IdentityEvery-th frame of a continuing face track
	// (same box, same-looking crop), about every 5 s at 1 frame/s, and at once on a new track
	// (identity.go), so a different person is measured on the frame they appear. Default 5.
	IdentityEvery int `json:"identity_every,omitempty"`
	// StillMax is the longest the main camera's whole observation is carried over still frames:
	// when a frame looks like the last fully analysed one (the grey thumbnail of the whole frame,
	// face included, changed in fewer than SceneCells cells by SceneDelta) and that frame showed
	// nothing the rules act on, no analyzer runs and the frame is not even fully decoded; its
	// observation is that frame's, every analyzer marked carried. So a change the thumbnail does
	// not see is measured at most StillMax late (one frame at 1 frame/s), and one it sees on the
	// frame it happens. Default 1s; negative analyses every frame.
	StillMax time.Duration `json:"still_max,omitempty"`
	// LooksEvery is the longest the main camera goes without the face detector's further looks
	// (the padded pass, the second detector's agreement, the tilted look: FacesConfig) on an
	// unchanged empty picture. They run when the first pass finds no face, and cost five times
	// that pass; when they found nothing on a frame and the whole-frame thumbnail (StillMax) has
	// not changed since, their answer "no face" is carried instead, marked "faces.looks" in
	// Observation.Carried. The first pass still runs on every analysed frame, and a face coming
	// into view changes the thumbnail, so the carry can only prolong "no face" on a picture that
	// looks the same. Default 5s; negative runs the looks every time.
	LooksEvery time.Duration `json:"looks_every,omitempty"`
	// FacesEvery is the longest the main camera goes without the face detector when its last
	// run found exactly one face and the whole-frame thumbnail (StillMax) has not changed since
	// that run: in between, that face's box and score are carried (marked "faces" in
	// Observation.Carried) and the analyzers after it (landmarks, identity, pose, attire, ears)
	// still run on it. These are the frames StillMax forces to be analysed on an unchanged
	// picture, where the detector would find the same face; a face coming, going or moving
	// changes the thumbnail and runs it at once. Default 5s; negative runs it on every frame.
	FacesEvery time.Duration `json:"faces_every,omitempty"`
	// QuietEvery is the longer floor of the person detector, the face detector (its one face
	// carried, or its further looks on an empty picture), the head-pose network and identity's
	// cadence on a continuing face track (answering frames) while the picture is quiet: no
	// thumbnail cell has changed by even half the SceneDelta since that analyzer last ran. It
	// would see the same picture again, to within camera noise, and answer the same; the
	// shorter floors are there for changes too faint for the triggers, and those still move a
	// cell by a few levels. The person detector looks only outside the faces (the scene
	// trigger's zones at half its deltas), so a candidate talking keeps a scene quiet for it;
	// the others look at the whole picture. Default 30s; negative = off.
	QuietEvery time.Duration `json:"quiet_every,omitempty"`
	// MaxStep is the longest time between two frames of a camera that still continues its
	// schedule; after a longer pause (a network outage, the partition having been on another
	// worker) every analyzer runs again. Default 3s.
	MaxStep time.Duration `json:"max_step,omitempty"`
}

func (c ScheduleConfig) withDefaults() ScheduleConfig {
	if c.PersonsEvery == 0 {
		c.PersonsEvery = 10 * time.Second
	}
	if c.QuietEvery == 0 {
		c.QuietEvery = 30 * time.Second
	}
	if c.SceneDelta <= 0 {
		c.SceneDelta = 18
	}
	if c.SceneCells <= 0 {
		c.SceneCells = 2
	}
	if c.HeadPoseEvery == 0 {
		c.HeadPoseEvery = 5 * time.Second
	}
	if c.PoseDelta <= 0 {
		c.PoseDelta = 6
	}
	if c.PoseNear <= 0 {
		c.PoseNear = 28
	}
	if c.IdentityEvery <= 0 {
		c.IdentityEvery = 5
	}
	if c.MaxStep <= 0 {
		c.MaxStep = 3 * time.Second
	}
	if c.StillMax == 0 {
		c.StillMax = time.Second
	}
	if c.LooksEvery == 0 {
		c.LooksEvery = 5 * time.Second
	}
	if c.FacesEvery == 0 {
		c.FacesEvery = 5 * time.Second
	}
	return c
}

// Schedule is the analysis schedule of every session and camera a worker handles: cheap
// analyzers run on every frame; the person/phone detector (~40 ms, 10× the rest of a frame)
// runs only when its answer may have changed:
//
//   - on the first frame of a camera, and after a pause longer than MaxStep (a restart, a
//     rebalance, an outage: the state is rebuilt from that frame);
//   - when the number of faces changed since its last run, or the main face moved (box overlap
//     below one half), or appeared or went;
//   - when the scene changed outside the face (SceneDelta in SceneCells thumbnail cells): a
//     person or a phone coming into view changes the picture;
//   - while its last run saw something the rules act on (two people, a phone), so a run that
//     may become a flag is measured on every frame — except two people on the main camera while
//     two or more faces are seen there (MULTIPLE_FACES' case: EXTRA_PERSON wants a body whose
//     face is not seen);
//   - and at least every PersonsEvery of capture time, or QuietEvery while the picture has not
//     changed even by half the trigger since its last run.
//
// The head-pose network (~5 ms) runs on the main face at least every HeadPoseEvery (QuietEvery on
// a quiet picture), at once when the face changes or a landmark fit of the pose (microseconds)
// moves by PoseDelta, and on every frame while the measured pose is near the limits. On the main camera, whole frames that look
// like the last analysed one are carried for up to StillMax, and the face detector's one face for
// up to FacesEvery (QuietEvery) while the picture stays as it was when the detector ran.
//
// On the other frames its last counts are carried over and the frame's observation says so
// (Observation.Carried): the rules see an unchanged scene as unchanged, never a gap, and an
// event appears on the frame it starts, so no flag comes later than it would with the detector
// on every frame. Kafka keys frames by session, so one worker sees a session's frames in order;
// state that is missing or stale is rebuilt by running everything on the next frame.
//
// Safe for concurrent use by the worker's analyzer sets (each session by one at a time).
type Schedule struct {
	cfg    ScheduleConfig
	mu     sync.Mutex
	states map[scheduleKey]*cameraSchedule
	order  []scheduleKey
}

type scheduleKey struct{ session, camera string }

// cameraSchedule is one session and camera's schedule state.
type cameraSchedule struct {
	lastFrame time.Time // capture time of the last frame planned
	// The person detector's last run: when, its output, and what the cheap analyzers saw then.
	persons    bool
	personsAt  time.Time
	nPersons   int
	nPhones    int
	objects    []Object
	faces      int
	faceBox    [4]float32 // main face, zero when none
	thumb      []uint8    // scene thumbnail at that run
	curThumb   []uint8    // this frame's thumbnail (scratch)
	thumbValid bool
	// The head-pose network's last run on the main face, and the landmark fit then and now.
	pose                 bool
	poseAt               time.Time
	yaw, pitch           float32 // the network's
	fitYaw, fitPitch     float32 // the landmark fit's at that run
	curFitYaw, curFitPit float32
	curFit               bool
	poseBox              [4]float32
	poseFaces            int
	poseThumb            []uint8 // whole-frame thumbnail at that run (main camera)
	// Identity's last measurement of the main face, and the whole-frame thumbnail then.
	identityAt    time.Time
	identityThumb []uint8
	// The last frame every analyzer was asked about (main camera): its observation, when, its
	// whole-frame thumbnail, and this frame's.
	full       *Observation
	fullAt     time.Time
	stillThumb []uint8
	curStill   []uint8
	// The last frame on which the face detector's further looks ran and found no face: when,
	// and its whole-frame thumbnail (empty when there is none to compare with).
	emptyAt    time.Time
	emptyThumb []uint8
	// The face detector's last run that found exactly one face: when, that face and the top
	// score, and the whole-frame thumbnail then (empty when there is no such run to carry).
	oneAt    time.Time
	one      Face
	oneTop   float32
	oneThumb []uint8
}

// maxScheduled bounds the states kept; the oldest half is dropped beyond it (those sessions
// simply start again with a full analysis).
const maxScheduled = 8192

// Scheduled returns cfg as the pipeline runs it under its schedule: the analyzers' own cadences
// that the schedule sets (identity's Every) filled in where cfg leaves them zero.
func (cfg Config) Scheduled() Config {
	if cfg.Identity.Every == 0 {
		cfg.Identity.Every = cfg.Schedule.withDefaults().IdentityEvery
	}
	return cfg
}

// NewSchedule returns an empty schedule.
func NewSchedule(cfg ScheduleConfig) *Schedule {
	return &Schedule{cfg: cfg.withDefaults(), states: map[scheduleKey]*cameraSchedule{}}
}

// Plan returns the planner of one frame (nil when s is nil: everything runs).
func (s *Schedule) Plan(session, camera string) Planner {
	if s == nil || session == "" {
		return nil
	}
	return &framePlan{s: s, key: scheduleKey{session, camera}}
}

// Forget drops a session's state (its exam ended, or a test restarts a worker).
func (s *Schedule) Forget(session string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.states {
		if k.session == session {
			delete(s.states, k)
		}
	}
}

func (s *Schedule) state(k scheduleKey) *cameraSchedule {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.states[k]
	if st == nil {
		if len(s.order) >= maxScheduled {
			for _, old := range s.order[:maxScheduled/2] {
				delete(s.states, old)
			}
			s.order = append(s.order[:0], s.order[maxScheduled/2:]...)
		}
		st = &cameraSchedule{}
		s.states[k] = st
		s.order = append(s.order, k)
	}
	return st
}

// framePlan is the schedule's Planner for one frame.
type framePlan struct {
	s       *Schedule
	key     scheduleKey
	st      *cameraSchedule
	restart bool // the camera's schedule starts again on this frame
	still   bool // stillThumb of this frame was computed
}

// carryStill reports whether the frame (its JPEG bytes and metadata) is still (see
// ScheduleConfig.StillMax); if so it returns the observation to store for it. It reads the frame
// at 1/8 scale only, which is enough to tell.
func (p *framePlan) carryStill(data []byte, meta FrameMeta, analyzers []Analyzer) (Observation, bool) {
	if p.s.cfg.StillMax < 0 || meta.Camera != CameraMain || meta.CapturedAt.IsZero() {
		return Observation{}, false
	}
	st := p.state(&Frame{CapturedAt: meta.CapturedAt})
	p.still = stillThumb(data, &st.curStill) == nil
	age := meta.CapturedAt.Sub(st.fullAt)
	if !p.still || p.restart || st.full == nil || age <= 0 || age > p.s.cfg.StillMax || !calm(st.full) ||
		changedCells(st.stillThumb, st.curStill, p.s.cfg.SceneDelta) >= p.s.cfg.SceneCells {
		return Observation{}, false
	}
	obs := carriedCopy(st.full)
	if obs.Carried == nil {
		obs.Carried = make(map[string]int64, len(analyzers))
	}
	for _, a := range analyzers {
		if _, ok := obs.Carried[a.Name()]; !ok {
			obs.Carried[a.Name()] = st.fullAt.UnixMilli()
		}
	}
	return obs, true
}

// analysed records a frame on which every analyzer was asked (ran or carried its own way).
func (p *framePlan) analysed(f *Frame, obs *Observation) {
	if p.s.cfg.StillMax < 0 || f.Camera != CameraMain || p.st == nil {
		return
	}
	st := p.st
	if !p.still {
		st.full, st.stillThumb = nil, st.stillThumb[:0]
		return
	}
	full := carriedCopy(obs)
	st.full, st.fullAt = &full, f.CapturedAt
	st.stillThumb = append(st.stillThumb[:0], st.curStill...)
}

// calm reports whether an observation may be carried over a still frame: one face at most, no
// second person, no phone, and no identity mismatch. Those flags are alerts, and while their
// condition holds they are judged on frames measured one by one (as the person detector's
// schedule does). The face's other attributes are carried with the scene they describe: an
// unchanged picture has the same mask, pose and ears, and the carry is at most StillMax long.
func calm(o *Observation) bool {
	if len(o.Faces) > 1 || (o.Persons != nil && *o.Persons > 1) || (o.Phones != nil && *o.Phones > 0) {
		return false
	}
	for _, fc := range o.Faces {
		if fc.Match != nil && !fc.Match.SamePerson {
			return false
		}
	}
	return true
}

// carriedCopy copies o for another frame, detached from o's slices and maps: identity matches
// become carried (not Measured, no embedding).
func carriedCopy(o *Observation) Observation {
	c := *o
	c.Faces = slices.Clone(o.Faces)
	for i := range c.Faces {
		if m := c.Faces[i].Match; m != nil {
			cm := *m
			cm.Measured, cm.Embedding = false, nil
			c.Faces[i].Match = &cm
		}
	}
	c.Objects = slices.Clone(o.Objects)
	c.Shadow = nil
	c.Carried = maps.Clone(o.Carried)
	return c
}

const thumbW, thumbH = 32, 24

// LooksStep is the name under which the faces analyzer asks its Planner whether its further
// looks may be skipped (ScheduleConfig.LooksEvery), and tells it that they ran.
const LooksStep = "faces.looks"

// IdentityStep is the name under which the identity analyzer asks its Planner whether a
// continuing face track, due for its cadence measurement (IdentityEvery), may carry the last one
// because the picture is quiet since it (ScheduleConfig.QuietEvery), and tells it that it
// measured.
const IdentityStep = "identity.cadence"

func (p *framePlan) Skip(analyzer string, f *Frame, obs *Observation) bool {
	switch {
	case analyzer == LooksStep:
		return p.skipLooks(f, obs)
	case analyzer == IdentityStep:
		st := p.state(f)
		return p.quietSince(f, st.identityAt, st.identityThumb)
	case analyzer == "faces":
		return p.skipFaces(f, obs)
	case analyzer == "headpose" && p.s.cfg.HeadPoseEvery >= 0:
		return p.skipPose(f, obs)
	case analyzer != "persons" || p.s.cfg.PersonsEvery < 0:
		return false
	}
	st := p.state(f)
	box := mainBox(obs)
	st.thumbValid = sceneThumb(f, &st.curThumb) == nil
	fresh := !st.persons || p.restart || p.personsDue(f, box)
	switch {
	case fresh, !st.thumbValid, st.thumb == nil:
	case st.nPhones > 0: // something the rules act on: measure every frame
	case st.nPersons >= 2 && (f.Camera != CameraMain || len(obs.Faces) < 2):
		// The same for a second person, except on the main camera while two or more faces are
		// seen: EXTRA_PERSON there wants a body without a face, MULTIPLE_FACES has the faces, and
		// a face turning away changes the count, which runs the detector.
	case len(obs.Faces) != st.faces:
	case (box[2] == 0) != (st.faceBox[2] == 0) || (box[2] != 0 && boxIoU(box, st.faceBox) < 0.5):
	case sceneChanged(st.thumb, st.curThumb, f, box, st.faceBox, p.s.cfg):
	default:
		persons, phones := st.nPersons, st.nPhones
		obs.Persons, obs.Phones, obs.Objects = &persons, &phones, st.objects
		markCarried(obs, analyzer, st.personsAt)
		return true
	}
	return false
}

// personsDue reports whether the person detector's floor has come: PersonsEvery since its last
// run, or QuietEvery when the scene around the faces is quiet (see ScheduleConfig.QuietEvery).
func (p *framePlan) personsDue(f *Frame, box [4]float32) bool {
	st, cfg := p.st, p.s.cfg
	since := f.CapturedAt.Sub(st.personsAt)
	if since < cfg.PersonsEvery {
		return false
	}
	if since >= cfg.QuietEvery || !st.thumbValid || len(st.thumb) == 0 {
		return true
	}
	faint := cfg
	faint.SceneDelta, faint.SceneCells = max(cfg.SceneDelta/2, 1), 1
	return sceneChanged(st.thumb, st.curThumb, f, box, st.faceBox, faint)
}

// quietSince reports whether a main-camera picture is quiet since an analyzer's run at `at`,
// whose whole-frame thumbnail was ref: less than QuietEvery ago and no cell changed by half the
// SceneDelta (see ScheduleConfig.QuietEvery).
func (p *framePlan) quietSince(f *Frame, at time.Time, ref []uint8) bool {
	if f.Camera != CameraMain || !p.still || p.restart || len(ref) == 0 {
		return false
	}
	age := f.CapturedAt.Sub(at)
	return age > 0 && age < p.s.cfg.QuietEvery && changedCells(ref, p.st.curStill, max(p.s.cfg.SceneDelta/2, 1)) == 0
}

// state loads the camera's state on the first question about a frame, and notes whether its
// schedule continues from the previous frame or starts again (restart).
func (p *framePlan) state(f *Frame) *cameraSchedule {
	if p.st != nil {
		return p.st
	}
	p.st = p.s.state(p.key)
	st, now := p.st, f.CapturedAt
	p.restart = now.IsZero() || st.lastFrame.IsZero() || now.Before(st.lastFrame) || now.Sub(st.lastFrame) > p.s.cfg.MaxStep
	st.lastFrame = now
	return st
}

// skipPose decides the head-pose network for the main face (see ScheduleConfig.HeadPoseEvery).
func (p *framePlan) skipPose(f *Frame, obs *Observation) bool {
	st := p.state(f)
	main := MainFace(obs.Faces, 0)
	st.curFit = false
	if main >= 0 && main < len(f.FaceLandmarks) {
		st.curFitYaw, st.curFitPit, st.curFit = poseFromLandmarks(&f.FaceLandmarks[main], f.Image.Cols(), f.Image.Rows())
	}
	cfg, box := p.s.cfg, mainBox(obs)
	near := cfg.PoseNear
	switch {
	case main < 0 || !st.curFit || !st.pose || p.restart:
	case f.CapturedAt.Sub(st.poseAt) >= cfg.HeadPoseEvery && !p.quietSince(f, st.poseAt, st.poseThumb):
	case abs32(st.yaw) >= near || abs32(st.pitch) >= near*5/7:
	case len(obs.Faces) != st.poseFaces || boxIoU(box, st.poseBox) < 0.5:
	case abs32(st.curFitYaw-st.fitYaw) >= cfg.PoseDelta || abs32(st.curFitPit-st.fitPitch) >= cfg.PoseDelta:
	default:
		yaw, pitch := st.yaw, st.pitch
		obs.Faces[main].Yaw, obs.Faces[main].Pitch = &yaw, &pitch
		markCarried(obs, "headpose", st.poseAt)
		return true
	}
	return false
}

func (p *framePlan) ranPose(f *Frame, obs *Observation) {
	st := p.st
	main := MainFace(obs.Faces, 0)
	if st == nil || main < 0 || obs.Faces[main].Yaw == nil || obs.Faces[main].Pitch == nil || !st.curFit {
		if st != nil {
			st.pose = false
		}
		return
	}
	st.pose, st.poseAt = true, f.CapturedAt
	st.yaw, st.pitch = *obs.Faces[main].Yaw, *obs.Faces[main].Pitch
	st.fitYaw, st.fitPitch = st.curFitYaw, st.curFitPit
	st.poseBox, st.poseFaces = mainBox(obs), len(obs.Faces)
	st.poseThumb = st.poseThumb[:0]
	if p.still {
		st.poseThumb = append(st.poseThumb, st.curStill...)
	}
}

func abs32(x float32) float32 {
	if x < 0 {
		return -x
	}
	return x
}

// skipLooks decides the face detector's further looks on a frame whose first pass found no face
// (see ScheduleConfig.LooksEvery).
func (p *framePlan) skipLooks(f *Frame, obs *Observation) bool {
	st := p.state(f)
	if !p.sameSince(f, p.s.cfg.LooksEvery, st.emptyAt, st.emptyThumb) {
		return false
	}
	markCarried(obs, LooksStep, st.emptyAt)
	return true
}

// sameSince reports whether a main-camera frame may carry an answer given at `at` on a picture
// whose whole-frame thumbnail was ref: less than every ago, and the picture unchanged since.
func (p *framePlan) sameSince(f *Frame, every time.Duration, at time.Time, ref []uint8) bool {
	if every < 0 || f.Camera != CameraMain || !p.still {
		return false
	}
	age := f.CapturedAt.Sub(at)
	if age >= every {
		return p.quietSince(f, at, ref)
	}
	return !p.restart && len(ref) > 0 && age > 0 &&
		changedCells(ref, p.st.curStill, p.s.cfg.SceneDelta) < p.s.cfg.SceneCells
}

// markCarried notes in obs that the named analyzer's output was carried from a run at `at`.
func markCarried(obs *Observation, name string, at time.Time) {
	if obs.Carried == nil {
		obs.Carried = map[string]int64{}
	}
	obs.Carried[name] = at.UnixMilli()
}

// ranLooks records the further looks' answer: a reference picture for skipLooks when they found
// no face, none when they found one.
func (p *framePlan) ranLooks(f *Frame, obs *Observation) {
	st := p.state(f)
	if len(obs.Faces) > 0 || !p.still || f.Camera != CameraMain {
		st.emptyThumb = st.emptyThumb[:0]
		return
	}
	st.emptyAt = f.CapturedAt
	st.emptyThumb = append(st.emptyThumb[:0], st.curStill...)
}

// skipFaces decides the face detector on a main-camera frame (see ScheduleConfig.FacesEvery).
func (p *framePlan) skipFaces(f *Frame, obs *Observation) bool {
	st := p.state(f)
	if !p.sameSince(f, p.s.cfg.FacesEvery, st.oneAt, st.oneThumb) {
		return false
	}
	obs.Faces = []Face{st.one}
	obs.TopFaceScore = st.oneTop
	markCarried(obs, "faces", st.oneAt)
	return true
}

// ranFaces records the face detector's answer: a reference for skipFaces when it found exactly
// one face on a main-camera frame, none otherwise.
func (p *framePlan) ranFaces(f *Frame, obs *Observation) {
	st := p.state(f)
	if len(obs.Faces) != 1 || !p.still || f.Camera != CameraMain {
		st.oneThumb = st.oneThumb[:0]
		return
	}
	st.oneAt, st.oneTop = f.CapturedAt, obs.TopFaceScore
	st.one = Face{Box: obs.Faces[0].Box, Score: obs.Faces[0].Score}
	st.oneThumb = append(st.oneThumb[:0], st.curStill...)
}

func (p *framePlan) Ran(analyzer string, f *Frame, obs *Observation) {
	switch analyzer {
	case LooksStep:
		p.ranLooks(f, obs)
		return
	case IdentityStep:
		st := p.state(f)
		st.identityAt, st.identityThumb = f.CapturedAt, st.identityThumb[:0]
		if p.still {
			st.identityThumb = append(st.identityThumb, st.curStill...)
		}
		return
	case "faces":
		p.ranFaces(f, obs)
		return
	case "headpose":
		p.ranPose(f, obs)
		return
	}
	if analyzer != "persons" || p.st == nil || obs.Persons == nil || obs.Phones == nil {
		return
	}
	st := p.st
	st.persons, st.personsAt = true, f.CapturedAt
	st.nPersons, st.nPhones, st.objects = *obs.Persons, *obs.Phones, obs.Objects
	st.faces, st.faceBox = len(obs.Faces), mainBox(obs)
	if st.thumbValid {
		st.thumb = append(st.thumb[:0], st.curThumb...)
	} else {
		st.thumb = st.thumb[:0]
	}
}

func mainBox(obs *Observation) [4]float32 {
	if i := MainFace(obs.Faces, 0); i >= 0 {
		return obs.Faces[i].Box
	}
	return [4]float32{}
}

// stillThumb fills dst with the thumbW×thumbH grey thumbnail of a JPEG decoded at 1/8 scale
// (libjpeg then reads only the DC coefficients: a fraction of a full decode).
func stillThumb(data []byte, dst *[]uint8) error {
	img, err := gocv.IMDecode(data, gocv.IMReadReducedGrayscale8)
	if err != nil || img.Empty() || img.Type() != gocv.MatTypeCV8U {
		img.Close()
		return errNoThumb
	}
	defer img.Close()
	small := gocv.NewMat()
	defer small.Close()
	gocv.Resize(img, &small, image.Pt(thumbW, thumbH), 0, 0, gocv.InterpolationArea)
	b, err := small.DataPtrUint8()
	if err != nil || len(b) != thumbW*thumbH {
		return errNoThumb
	}
	*dst = append((*dst)[:0], b...)
	return nil
}

// changedCells counts the cells of two thumbnails that differ by delta or more (all of them when
// the thumbnails cannot be compared).
func changedCells(a, b []uint8, delta int) int {
	if len(a) != len(b) || len(a) == 0 {
		return thumbW * thumbH
	}
	n := 0
	for i := range a {
		if d := int(a[i]) - int(b[i]); d >= delta || -d >= delta {
			n++
		}
	}
	return n
}

// sceneThumb fills dst with a thumbW×thumbH grey thumbnail of the frame (area-averaged: sensor
// noise averages out).
func sceneThumb(f *Frame, dst *[]uint8) error {
	if f.Image.Empty() {
		return errNoThumb
	}
	small := gocv.NewMat()
	defer small.Close()
	gocv.Resize(f.Image, &small, image.Pt(thumbW, thumbH), 0, 0, gocv.InterpolationArea)
	grey := gocv.NewMat()
	defer grey.Close()
	gocv.CvtColor(small, &grey, gocv.ColorBGRToGray)
	b, err := grey.DataPtrUint8()
	if err != nil {
		return err
	}
	if len(b) != thumbW*thumbH {
		return errNoThumb
	}
	*dst = append((*dst)[:0], b...)
	return nil
}

var errNoThumb = errors.New("no scene thumbnail")

// sceneChanged reports whether the scene changed around the candidate: SceneCells thumbnail
// cells by SceneDelta outside both face boxes grown by a quarter (hair, shoulders), or by twice
// SceneDelta in that margin, or 2·SceneCells cells by three times SceneDelta inside the faces.
// The margin and the faces are watched less keenly, since hair, eyes and mouth move with the
// candidate, but a phone held to the ear, under the chin or up in front of the face lies mostly
// there (TestSceneTriggerOnMainCameraComposites: with the faces and margin left out, the detector
// waited for its floor on 14 of 62 phones in hand that it would have found).
func sceneChanged(a, b []uint8, f *Frame, box, prevBox [4]float32, cfg ScheduleConfig) bool {
	if len(a) != len(b) || len(a) != thumbW*thumbH || f.Width <= 0 || f.Height <= 0 {
		return true
	}
	sx, sy := float32(thumbW)/float32(f.Width), float32(thumbH)/float32(f.Height)
	// within reports whether cell x, y overlaps the face box bx grown by g of its size per side.
	within := func(x, y int, bx [4]float32, g float32) bool {
		gx, gy := bx[2]*g, bx[3]*g
		x0, y0 := (bx[0]-gx)*sx, (bx[1]-gy)*sy
		x1, y1 := (bx[0]+bx[2]+gx)*sx, (bx[1]+bx[3]+gy)*sy
		return float32(x+1) > x0 && float32(x) < x1 && float32(y+1) > y0 && float32(y) < y1
	}
	// zone is 0 outside the faces, 1 in their margin, 2 in a face.
	zone := func(x, y int) int {
		z := 0
		for _, bx := range [2][4]float32{box, prevBox} {
			switch {
			case bx[2] == 0:
			case within(x, y, bx, 0):
				return 2
			case within(x, y, bx, 0.25):
				z = 1
			}
		}
		return z
	}
	need := [3]int{cfg.SceneDelta, 2 * cfg.SceneDelta, 3 * cfg.SceneDelta}
	enough := [3]int{cfg.SceneCells, cfg.SceneCells, 2 * cfg.SceneCells}
	var n [3]int
	for y := range thumbH {
		for x := range thumbW {
			d := int(a[y*thumbW+x]) - int(b[y*thumbW+x])
			if d < 0 {
				d = -d
			}
			if d < need[0] {
				continue // below every zone's need: no need to place the cell
			}
			if z := zone(x, y); d >= need[z] {
				if n[z]++; n[z] >= enough[z] {
					return true
				}
			}
		}
	}
	return false
}
