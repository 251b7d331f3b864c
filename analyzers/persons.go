package analyzers

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"proctor/models"
)

func init() {
	Register("persons", func(cfg *Config) (Analyzer, error) { return NewPersons(cfg.Persons) })
}

// PersonsConfig configures the "persons" analyzer. Zero values take the defaults noted; score
// defaults live in the model's manifest (models/manifests/nanodet-coco.json, vision.scores).
type PersonsConfig struct {
	// Model is the manifest name of the main camera's COCO detector. Default
	// "nanodet-coco-int8" (static int8 with the high-resolution convolutions in float, ~60% of
	// the float model's CPU): on main-camera scenes it finds what the float model finds (a second
	// person behind the candidate, near or distant, phones in hand and none behind;
	// docs/vision.md, "The person detector per camera").
	Model string `json:"model,omitempty"`
	// EvidenceModel is the evidence camera's detector. Default "nanodet-coco" (float): that
	// camera sees the room from behind, where people are small and low in contrast (a person on
	// the laptop screen, someone at the far wall), and the int8 model finds a few fewer of them
	// (67 vs 72 of 96 screens; models/cards/nanodet-coco.md).
	EvidenceModel string `json:"evidence_model,omitempty"`
	// PersonScore and PhoneScore override the manifest's score thresholds of the "person" and
	// "cell phone" classes. Raising PersonScore loses people seen from behind or cut by the frame
	// edge; lowering it lets coats on chairs and posters through (models/cards/nanodet-coco.md).
	PersonScore float32 `json:"person_score,omitempty"`
	PhoneScore  float32 `json:"phone_score,omitempty"`
	// Every runs the detector on one frame in Every per session and camera (the first one always)
	// and carries its counts over to the frames in between. Default 1 (every frame): the detector
	// costs ~15 ms per frame on one core (docs/vision.md), 5× the face detector; at 1 frame/s per
	// camera that is affordable, at higher frame rates set Every so it runs about once a second.
	// Carried counts are only as fresh as the last run: a second person must stay in view a little
	// longer than the rule's threshold plus Every frames to be flagged.
	Every int `json:"every,omitempty"`
	// DecodeSide is the longest side this analyzer wants frames decoded at. Default 416 (the
	// model's input).
	DecodeSide int `json:"decode_side,omitempty"`
	// Threads is the intra-op thread count of the model session. Default 1.
	Threads int `json:"threads,omitempty"`
}

// The detectors used when PersonsConfig.Model and EvidenceModel are empty.
const (
	DefaultPersonsModel         = "nanodet-coco-int8"
	DefaultEvidencePersonsModel = "nanodet-coco"
)

// COCO class names the persons analyzer reports.
const (
	ClassPerson = "person"
	ClassPhone  = "cell phone"
)

// maxCarried bounds the per-session memory of the Every>1 carry-over (the oldest half is dropped).
const maxCarried = 4096

// Persons counts people and mobile phones with a COCO detector: it fills Observation.Persons,
// Phones and Objects. A body detector sees people whose face is hidden or turned away (the
// evidence camera films the candidate from behind). Not safe for concurrent use.
type Persons struct {
	det        *models.ObjectDetector // the main camera's
	evidence   *models.ObjectDetector // the evidence camera's: det itself when the same model
	last       *models.ObjectDetector // the one that ran last (ModelInput)
	version    string
	decodeSide int
	every      int
	buf        []models.ObjectBox
	// carried holds, per session/camera, the last measured result and frames seen since.
	carried map[string]*carried
	order   []string
	// phonesAt holds, per session/camera, the phones of the detector's last run that found any.
	phonesAt   map[string][]Object
	phoneOrder []string
}

type carried struct {
	seen    int
	objects []Object
	persons int
	phones  int
}

// NewPersons loads (and checksums) the models and builds their detectors.
func NewPersons(cfg PersonsConfig) (*Persons, error) {
	mainName, evName := cmp.Or(cfg.Model, DefaultPersonsModel), cmp.Or(cfg.EvidenceModel, DefaultEvidencePersonsModel)
	det, side, version, err := newPersonDetector(mainName, cfg)
	if err != nil {
		return nil, err
	}
	a := &Persons{det: det, evidence: det, last: det, decodeSide: side, every: max(cfg.Every, 1), version: version,
		buf: make([]models.ObjectBox, 0, 16), carried: map[string]*carried{}, phonesAt: map[string][]Object{}}
	if evName != mainName {
		ev, evSide, evVersion, err := newPersonDetector(evName, cfg)
		if err != nil {
			det.Close()
			return nil, err
		}
		a.evidence, a.decodeSide = ev, max(side, evSide)
		a.version += ", evidence " + evVersion
	}
	if cfg.DecodeSide > 0 {
		a.decodeSide = cfg.DecodeSide
	}
	a.version += fmt.Sprintf(" every=%d", a.every)
	return a, nil
}

// newPersonDetector loads one detector model; it returns the detector, its input's longest
// side and its version: name@version and the score thresholds in effect.
func newPersonDetector(name string, cfg PersonsConfig) (*models.ObjectDetector, int, string, error) {
	m, err := models.Load(name)
	if err != nil {
		return nil, 0, "", fmt.Errorf("persons analyzer: %w", err)
	}
	scores := map[string]float32{}
	if cfg.PersonScore != 0 {
		scores[ClassPerson] = cfg.PersonScore
	}
	if cfg.PhoneScore != 0 {
		scores[ClassPhone] = cfg.PhoneScore
	}
	det, err := models.NewObjectDetector(m, models.ObjectOptions{
		SessionOptions: models.SessionOptions{IntraOpThreads: cfg.Threads}, Scores: scores})
	if err != nil {
		return nil, 0, "", fmt.Errorf("persons analyzer: %w", err)
	}
	th := det.Scores()
	parts := []string{m.ID()}
	for _, c := range []string{ClassPerson, ClassPhone} {
		if s, ok := th[c]; ok {
			parts = append(parts, fmt.Sprintf("%s=%g", strings.ReplaceAll(c, " ", "_"), s))
		}
	}
	return det, max(m.Input.Width, m.Input.Height), strings.Join(parts, " "), nil
}

// Name implements Analyzer.
func (a *Persons) Name() string { return "persons" }

// Version implements Analyzer: model name@version, thresholds and rate.
func (a *Persons) Version() string { return a.version }

// ModelInput is the tensor the detector's latest run fed the model; valid until the next run. For
// calibration tools.
func (a *Persons) ModelInput() []float32 { return a.last.Input() }

// DecodeSide implements SideNeeder.
func (a *Persons) DecodeSide() int { return a.decodeSide }

// Analyze implements Analyzer.
func (a *Persons) Analyze(_ context.Context, f *Frame, obs *Observation) error {
	var c *carried
	if a.every > 1 {
		key := f.Session + "\x00" + f.Camera
		c = a.carried[key]
		if c != nil {
			c.seen++
			if c.seen%a.every != 0 {
				persons, phones := c.persons, c.phones
				obs.Persons, obs.Phones, obs.Objects = &persons, &phones, c.objects
				return nil
			}
		} else {
			c = &carried{}
			if len(a.order) >= maxCarried {
				for _, k := range a.order[:maxCarried/2] {
					delete(a.carried, k)
				}
				a.order = slices.Delete(a.order, 0, maxCarried/2)
			}
			a.carried[key] = c
			a.order = append(a.order, key)
		}
	}
	a.last = a.det
	if f.Camera == CameraEvidence {
		a.last = a.evidence
	}
	var err error
	a.buf, err = a.last.Detect(a.buf[:0], f.Image, f.Width, f.Height)
	if err != nil {
		return fmt.Errorf("persons: %w", err)
	}
	persons, phones := 0, 0
	var objects []Object
	if len(a.buf) > 0 {
		// The observation outlives the frame (it is stored), so it gets its own slice.
		objects = make([]Object, len(a.buf))
		for i, b := range a.buf {
			objects[i] = Object{Class: b.Class, Box: [4]float32{b.X, b.Y, b.W, b.H}, Score: b.Score}
			switch b.Class {
			case ClassPerson:
				persons++
			case ClassPhone:
				phones++
			}
		}
	}
	if phones > 0 && f.Session != "" {
		a.markStill(f.Session+"\x00"+f.Camera, objects)
	}
	if persons >= 2 {
		// Only a second person can raise a flag, and only then is the frame searched for screens.
		if quads, scale := screenRects(f.Image); len(quads) > 0 {
			sx := scale * float32(f.Image.Cols()) / float32(f.Width)
			for i := range objects {
				if objects[i].Class == ClassPerson && onScreen(quads, sx, objects[i].Box) {
					objects[i].OnScreen = true
				}
			}
		}
	}
	obs.Persons, obs.Phones, obs.Objects = &persons, &phones, objects
	if c != nil {
		c.persons, c.phones, c.objects = persons, phones, objects
	}
	return nil
}

// markStill sets Still on the phones of objects found where a phone was on this session and
// camera's last run that saw one — within half the phone's size, at about the same size — and
// remembers these phones for the next run.
func (a *Persons) markStill(key string, objects []Object) {
	prev := a.phonesAt[key]
	for i := range objects {
		o := &objects[i]
		if o.Class != ClassPhone {
			continue
		}
		for _, p := range prev {
			if samePlace(p.Box, o.Box) {
				o.Still = true
				break
			}
		}
	}
	if _, ok := a.phonesAt[key]; !ok {
		if len(a.phoneOrder) >= maxCarried {
			for _, k := range a.phoneOrder[:maxCarried/2] {
				delete(a.phonesAt, k)
			}
			a.phoneOrder = slices.Delete(a.phoneOrder, 0, maxCarried/2)
		}
		a.phoneOrder = append(a.phoneOrder, key)
	}
	cur := prev[:0]
	for _, o := range objects {
		if o.Class == ClassPhone {
			cur = append(cur, o)
		}
	}
	a.phonesAt[key] = cur
}

// samePlace: box b is where box a was, give or take half of a's size, and of about its size.
func samePlace(a, b [4]float32) bool {
	sa, sb := max(a[2], a[3]), max(b[2], b[3])
	if sa <= 0 || sb <= 0 || sb > 1.5*sa || sa > 1.5*sb {
		return false
	}
	dx := (a[0] + a[2]/2) - (b[0] + b[2]/2)
	dy := (a[1] + a[3]/2) - (b[1] + b[3]/2)
	return dx*dx+dy*dy <= sa*sa/4
}

// Close implements Analyzer.
func (a *Persons) Close() error {
	if a.evidence != a.det {
		return errors.Join(a.det.Close(), a.evidence.Close())
	}
	return a.det.Close()
}

// SecondBest returns the score of the second most confident object of class (0 with fewer
// than two): how sure the detector is that there is more than one.
func SecondBest(objects []Object, class string) float32 {
	var a, b float32
	for _, o := range objects {
		if o.Class != class {
			continue
		}
		if o.Score > a {
			a, b = o.Score, a
		} else if o.Score > b {
			b = o.Score
		}
	}
	return b
}

// Best returns the score of the most confident object of class (0 when none).
func Best(objects []Object, class string) float32 {
	var a float32
	for _, o := range objects {
		if o.Class == class {
			a = max(a, o.Score)
		}
	}
	return a
}
