// Package store keeps sessions, per-frame results, flags, verdicts, API keys and the audit log
// with gorm: SQLite by default, PostgreSQL in production. Unique keys make every write that a
// Kafka redelivery can repeat idempotent.
package store

import (
	"encoding/json"
	"time"
)

// Organisation owns sessions, keys and reviewers; nobody sees another organisation's data.
type Organisation struct {
	ID        string `gorm:"primaryKey;size:64"`
	Name      string `gorm:"size:200"`
	CreatedAt time.Time
}

// Session is one candidate's exam.
//
// Session ids are the platform's, scoped per organisation: ID is the global key (the Kafka key,
// the foreign key of every row about the session) and is the platform's id whenever that id was
// free; when another organisation already holds it, ID is ScopedSessionID(org, id) and
// PlatformID keeps the platform's id, which the API shows and resolves (see CreatePlatformSession).
type Session struct {
	ID             string    `gorm:"primaryKey;size:64" json:"id"`
	PlatformID     string    `gorm:"size:64" json:"-"`
	OrgID          string    `gorm:"size:64;index" json:"org_id"`
	ExamID         string    `gorm:"size:128;index" json:"exam_id"`
	CandidateID    string    `gorm:"size:128" json:"candidate_id"`
	ScheduledStart time.Time `json:"scheduled_start"`
	DurationSec    int       `json:"duration_sec"`
	Questions      int       `json:"questions"`
	// Attachments is how many exam attachments must be read before entering (0 = not checked).
	Attachments       int    `json:"attachments"`
	RegistrationPhoto []byte `json:"-"`
	// Phase is the exam phase now (see rules.Phase*); Phases the JSON of every phase's start.
	Phase  string `gorm:"size:16" json:"phase"`
	Phases string `json:"-"`
	// NextCheckAtMs is when the timing rules must run for this session next (ms since epoch, 0 =
	// nothing pending): set when events or evidence frames arrive and at the exam's deadlines.
	NextCheckAtMs int64 `gorm:"index" json:"-"`
	// RiskScore is maintained on every flag or verdict change so the reviewer queue sorts by an
	// indexed column instead of aggregating flags per request.
	RiskScore  float64   `gorm:"index" json:"risk_score"`
	OpenFlags  int       `json:"open_flags"`
	TotalFlags int       `json:"total_flags"`
	Frames     int64     `json:"frames_analyzed"`
	CreatedAt  time.Time `json:"created_at"`

	// FaceEmbedding is the registration photo's face embedding (little-endian float32, unit
	// length), computed by a worker on the API's enrol request at creation, or by the first
	// worker that needs it when that request was lost; FaceEmbeddingModel names the model
	// (name@version) — another model's vector does not compare. A model with an empty embedding
	// means the photo showed no usable face: identity is then not checked.
	FaceEmbedding      []byte `json:"-"`
	FaceEmbeddingModel string `gorm:"size:128" json:"face_embedding_model,omitempty"`
	// RegistrationFace says what the enrolment found in the registration photo: "found", "none"
	// (no usable face: identity cannot be checked, and the identity-login check says so), or
	// empty while it has not been enrolled. The platform reads it to ask for another photo.
	RegistrationFace string `gorm:"size:8" json:"registration_face,omitempty"`
	// LoginFaceFrames counts main-camera frames before answering whose face passed the identity
	// quality gate and was not in the mismatch band (rules.LoginFace), LoginFaceMatches those that
	// matched the registration photo (or came after the platform's own face login):
	// rules/check_identity.go judges the login from them.
	LoginFaceFrames  int `gorm:"not null;default:0" json:"login_face_frames"`
	LoginFaceMatches int `gorm:"not null;default:0" json:"login_face_matches"`
}

// FrameResult is one analysed frame. The unique key (session, camera, seq) is what makes a
// redelivered or re-posted frame a no-op.
type FrameResult struct {
	ID           uint   `gorm:"primaryKey"`
	SessionID    string `gorm:"size:64;uniqueIndex:frame_key,priority:1;index:frame_time,priority:1"`
	Camera       string `gorm:"size:16;uniqueIndex:frame_key,priority:2;index:frame_time,priority:2"`
	Seq          int64  `gorm:"uniqueIndex:frame_key,priority:3"`
	CapturedAtMs int64  `gorm:"index:frame_time,priority:3"`
	ReceivedAtMs int64  // when the API accepted it
	StoredAtMs   int64  // when this row was written: StoredAtMs-ReceivedAtMs is the pipeline latency
	// Phase of the exam when the frame was captured (restamped when late events move phases).
	Phase string `gorm:"size:16"`
	// Signals is what each check keeps of the frame for its rules over time: JSON
	// {"check": {"name": value}} (rules.Signal). A check that measured nothing is absent.
	Signals string
	// Observation is the analyzers' JSON for this frame (see analyzers.Observation).
	Observation string
}

// Flag severities: reviewers look at alerts first.
const (
	SeverityAlert     = "alert"     // likely integrity breach
	SeverityDetection = "detection" // worth a look
)

// Flag statuses.
const (
	StatusOpen      = "open"
	StatusConfirmed = "confirmed"
	StatusDismissed = "dismissed"
)

// Flag is one rule violation over a time span. A span that grows as more frames arrive updates
// the same row; (session, type, camera, start) is unique so a redelivery can never add a second.
type Flag struct {
	ID           uint    `gorm:"primaryKey" json:"id"`
	SessionID    string  `gorm:"size:64;uniqueIndex:flag_key,priority:1;index:flag_time,priority:1" json:"session_id"`
	Type         string  `gorm:"size:48;uniqueIndex:flag_key,priority:2" json:"type"`
	Camera       string  `gorm:"size:16;uniqueIndex:flag_key,priority:3" json:"camera"`
	StartMs      int64   `gorm:"uniqueIndex:flag_key,priority:4;index:flag_time,priority:2" json:"start_ms"`
	EndMs        int64   `json:"end_ms"`
	Severity     string  `gorm:"size:16" json:"severity"`
	Confidence   float64 `json:"confidence"`
	ModelVersion string  `gorm:"size:1024" json:"model_version"` // every analyzer, model and thresholds: ~300 chars for six (PostgreSQL enforces the size)
	Status       string  `gorm:"size:16;index" json:"status"`
	Phase        string  `gorm:"size:16" json:"phase"`
	EvidenceSeq  int64   `json:"evidence_seq"`
	// Details is rule-specific JSON (frame count, thresholds in force).
	Details   string    `json:"details"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `gorm:"index" json:"updated_at"` // indexed: the live feed polls by it
}

// Evidence is the JPEG of the frame that raised a flag, kept apart so listing flags stays cheap.
type Evidence struct {
	FlagID       uint `gorm:"primaryKey"`
	Camera       string
	Seq          int64
	CapturedAtMs int64
	JPEG         []byte
}

// Verdict is one reviewer decision on a flag; the latest one sets the flag's status.
type Verdict struct {
	ID        uint      `gorm:"primaryKey" json:"id"`
	FlagID    uint      `gorm:"index" json:"flag_id"`
	Verdict   string    `gorm:"size:16" json:"verdict"`
	Note      string    `json:"note"`
	Reviewer  string    `gorm:"size:320" json:"reviewer"`
	CreatedAt time.Time `json:"created_at"`
	// Previous is the flag's status before this verdict (what an undo restores); Batch groups
	// the verdicts of one bulk action; Undone marks a verdict taken back (see store/review.go).
	Previous string `gorm:"size:16" json:"previous"`
	Batch    string `gorm:"size:32;index" json:"batch,omitempty"`
	Undone   bool   `gorm:"not null;default:false" json:"undone"`
}

// APIKey authenticates the platform and reviewers. Only the SHA-256 of the secret is stored:
// keys are 256-bit random, so a fast hash is enough (no dictionary to attack).
type APIKey struct {
	ID         string `gorm:"primaryKey;size:32"` // public prefix, shown in logs and audit
	SecretHash string `gorm:"size:64"`
	Name       string `gorm:"size:200"`
	OrgID      string `gorm:"size:64;index"`
	Scopes     string `gorm:"size:200"` // comma-separated: ingest, review, data, admin
	CreatedAt  time.Time
	RevokedAt  *time.Time
}

// AuditEntry records who did what, when, from where. Rows are only ever inserted.
type AuditEntry struct {
	ID       uint      `gorm:"primaryKey" json:"id"`
	At       time.Time `gorm:"index" json:"at"`
	OrgID    string    `gorm:"size:64;index" json:"org_id"`
	Actor    string    `gorm:"size:320" json:"actor"`
	Action   string    `gorm:"size:64" json:"action"`
	Target   string    `gorm:"size:320" json:"target"`
	Detail   string    `json:"detail"`
	RemoteIP string    `gorm:"size:64" json:"remote_ip"`
}

// Event is one exam-flow or client event as the platform sent it.
type Event struct {
	ID           uint   `gorm:"primaryKey" json:"id"`
	SessionID    string `gorm:"size:64;uniqueIndex:event_key,priority:1" json:"session_id"`
	Seq          int64  `gorm:"uniqueIndex:event_key,priority:2" json:"seq"`
	Type         string `gorm:"size:48" json:"type"`
	CapturedAtMs int64  `gorm:"index" json:"captured_at"`
	ReceivedAtMs int64  `json:"received_at"`
	Payload      string `json:"payload"`
}

// AudioChunk records one accepted audio chunk; the PCM itself stays in the Kafka topic until the
// audio analyzers consume it.
type AudioChunk struct {
	ID           uint   `gorm:"primaryKey"`
	SessionID    string `gorm:"size:64;uniqueIndex:audio_key,priority:1"`
	Seq          int64  `gorm:"uniqueIndex:audio_key,priority:2"`
	CapturedAtMs int64
	ReceivedAtMs int64
	DurationMs   int64
	SampleRate   int
	// RMS of the chunk in dBFS: a cheap level check until voice activity detection lands.
	LevelDBFS float64
}

func allModels() []any {
	return []any{&Organisation{}, &Session{}, &FrameResult{}, &Flag{}, &Evidence{}, &Verdict{},
		&APIKey{}, &AuditEntry{}, &Event{}, &AudioChunk{},
		&AudioStretch{}, &SpeechSegment{}, &PhraseDetection{}, &AnswerSegment{}, &VoiceWindow{},
		&User{}, &WebSession{}, &ExamSetting{}, &Recording{},
		&Label{}, &ModelVersion{}, &ShadowObservation{}, &AudioSample{}, &PseudonymKey{}, &Export{},
		&DeadLetter{}, &GalleryFace{}, &FrameImage{},
		&DeletedSession{}, &RetentionMark{}, &RetentionSetting{}, &AuditPurge{}}
}

// MarshalJSON shows the platform's id as the session's id: a session whose id another
// organisation held is shown as the platform created it.
func (s Session) MarshalJSON() ([]byte, error) {
	type plain Session // no methods: no recursion
	p := plain(s)
	if p.PlatformID != "" {
		p.ID = p.PlatformID
	}
	return json.Marshal(p)
}
