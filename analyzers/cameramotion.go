package analyzers

import (
	"context"
	"sync"
	"time"
)

func init() {
	Register("cameramotion", func(cfg *Config) (Analyzer, error) { return NewCameraMotion(cfg.CameraMotion) })
}

// CameraMotionConfig configures the "cameramotion" analyzer.
type CameraMotionConfig struct {
	RoomScan RoomScanConfig `json:"room_scan"`
	// Thumbs holds each session's previous evidence thumbnail. Every analyzer set of a process
	// must share one (sets are pooled, and consecutive frames of a session may land on different
	// sets); nil gives the set a private store, which is right for one-set tools.
	Thumbs *ThumbStore `json:"-"`
}

// ThumbStore keeps the latest evidence-camera thumbnail per session (12 KB each), bounded by
// dropping the stalest when full: a session evicted loses one yaw step, nothing else.
type ThumbStore struct {
	mu   sync.Mutex
	max  int
	byID map[string]*Thumb
}

// NewThumbStore holds up to max sessions (default 4096, ~50 MB).
func NewThumbStore(max int) *ThumbStore {
	if max <= 0 {
		max = 4096
	}
	return &ThumbStore{max: max, byID: make(map[string]*Thumb)}
}

// swap stores cur as the session's latest thumbnail if it is newer, returning the previous one
// (a copy the caller owns) and whether it is earlier than cur.
func (s *ThumbStore) swap(session string, cur *Thumb, prev *Thumb) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.byID[session]
	if ok && !old.At.Before(cur.At) {
		// A late frame (after a reconnect) is older than what we hold: measuring it against a
		// later frame would invent a turn, so it contributes nothing.
		return false
	}
	if ok {
		prev.Pix = append(prev.Pix[:0], old.Pix...)
		prev.W, prev.H, prev.Focal, prev.At = old.W, old.H, old.Focal, old.At
	} else {
		if len(s.byID) >= s.max {
			s.evictStalest()
		}
		old = &Thumb{}
		s.byID[session] = old
	}
	old.Pix = append(old.Pix[:0], cur.Pix...)
	old.W, old.H, old.Focal, old.At = cur.W, cur.H, cur.Focal, cur.At
	return ok
}

func (s *ThumbStore) evictStalest() {
	var stalest string
	var at time.Time
	for id, t := range s.byID {
		if stalest == "" || t.At.Before(at) {
			stalest, at = id, t.At
		}
	}
	delete(s.byID, stalest)
}

// CameraMotion measures how far the evidence camera turned between a session's consecutive
// frames (room-scan coverage is the sum of these steps; see rules.NoRoomScan).
type CameraMotion struct {
	scan      *RoomScan
	thumbs    *ThumbStore
	cur, prev Thumb
}

// NewCameraMotion builds the analyzer.
func NewCameraMotion(cfg CameraMotionConfig) (*CameraMotion, error) {
	scan, err := NewRoomScan(cfg.RoomScan)
	if err != nil {
		return nil, err
	}
	thumbs := cfg.Thumbs
	if thumbs == nil {
		thumbs = NewThumbStore(0)
	}
	return &CameraMotion{scan: scan, thumbs: thumbs}, nil
}

func (a *CameraMotion) Name() string    { return "cameramotion" }
func (a *CameraMotion) Version() string { return "phasecorr-orb-yaw@2" }

// Analyze sets obs.CameraYaw for evidence frames of a session with a known capture time.
func (a *CameraMotion) Analyze(_ context.Context, f *Frame, obs *Observation) error {
	if f.Camera != CameraEvidence || f.Session == "" || f.CapturedAt.IsZero() {
		return nil
	}
	if err := a.scan.Thumb(f, f.CapturedAt, &a.cur); err != nil {
		return err
	}
	if !a.thumbs.swap(f.Session, &a.cur, &a.prev) {
		return nil
	}
	yaw, confidence := a.scan.YawBetween(&a.prev, &a.cur)
	obs.CameraYaw = &yaw
	// YawBetween's contract: a still camera is 0° with confidence 1; 0° with less is a pair it
	// could not measure (too little overlap, too far apart in time).
	obs.CameraYawLost = yaw == 0 && confidence < 1
	return nil
}

func (a *CameraMotion) Close() error { return a.scan.Close() }
