package pipeline

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/segmentio/kafka-go"

	"proctor/store"
)

// Wire format, schema version 1. The message key is the session id: the
// producer hashes it to a partition, and Kafka keeps the order of one
// partition, so all messages of a session are consumed in the order the API
// produced them. The value is the raw payload (JPEG, PCM, JSON) with no
// envelope or base64; metadata travels in headers as ASCII decimal strings
// so that kcat and kafka-console-consumer print them readably.
const (
	SchemaVersion = "1"

	HeaderVersion    = "v"              // schema version, "1"
	HeaderKind       = "kind"           // "frame", "audio", "event" or "enroll"
	HeaderSeq        = "seq"            // per-session, per-stream sequence number
	HeaderCapturedAt = "captured-at-ms" // client clock, Unix ms
	HeaderReceivedAt = "received-at-ms" // API clock, Unix ms
	HeaderCamera     = "camera"         // frame: "main", "evidence", ...
	HeaderSampleRate = "sample-rate"    // audio: Hz
	HeaderType       = "type"           // event: event type

	KindFrame = "frame"
	KindAudio = "audio"
	KindEvent = "event"
	// KindEnroll asks the frame workers to enrol a new session's registration photo (frames
	// topic, no value): the photo is in the store, the message only says which session.
	KindEnroll = "enroll"
)

// Limits a decoded message must respect. They guard the analyzers (OpenCV
// aborts the process on some bad input) and catch a producer bug early.
const (
	maxSessionIDLen = 256
	minSampleRate   = 8000
	maxSampleRate   = 192000
)

// FrameMessage is one JPEG video frame of a session.
type FrameMessage struct {
	SessionID    string
	Camera       string // which client took it, e.g. "main" or "evidence"
	Seq          int64  // increases per session and camera
	CapturedAtMs int64  // client clock, Unix ms
	ReceivedAtMs int64  // API clock, Unix ms
	JPEG         []byte // starts with the JPEG SOI marker FF D8
}

// AudioMessage is one chunk of a session's microphone audio.
type AudioMessage struct {
	SessionID    string
	Seq          int64
	CapturedAtMs int64 // client clock of the first sample, Unix ms
	ReceivedAtMs int64
	SampleRate   int
	PCM          []byte // signed 16-bit little-endian mono samples
}

// EventMessage is one exam platform event (login, window switch, upload...).
type EventMessage struct {
	SessionID    string
	Seq          int64 // per-session event sequence, the event's identity for dedupe
	Type         string
	CapturedAtMs int64
	ReceivedAtMs int64
	Payload      []byte // JSON; empty means no payload
}

// EnrollMessage asks for a session's registration photo to be enrolled before its first frame.
// It travels on the frames topic under the session's key, so it is consumed before the frames.
type EnrollMessage struct {
	SessionID    string
	ReceivedAtMs int64 // API clock when the session was created, Unix ms
}

// Validate reports what is wrong with f, in words an API client can act on.
func (f FrameMessage) Validate() error {
	if err := validateCommon(f.SessionID, f.Seq, f.CapturedAtMs, f.ReceivedAtMs); err != nil {
		return err
	}
	if f.Camera == "" {
		return errors.New("camera is empty")
	}
	if len(f.JPEG) < 4 || f.JPEG[0] != 0xFF || f.JPEG[1] != 0xD8 {
		return fmt.Errorf("frame is not a JPEG (%d bytes, no FF D8 start marker)", len(f.JPEG))
	}
	return nil
}

// Validate reports what is wrong with a.
func (a AudioMessage) Validate() error {
	if err := validateCommon(a.SessionID, a.Seq, a.CapturedAtMs, a.ReceivedAtMs); err != nil {
		return err
	}
	if a.SampleRate < minSampleRate || a.SampleRate > maxSampleRate {
		return fmt.Errorf("sample rate %d Hz out of range [%d, %d]", a.SampleRate, minSampleRate, maxSampleRate)
	}
	if len(a.PCM) == 0 || len(a.PCM)%2 != 0 {
		return fmt.Errorf("PCM length %d bytes is not a positive multiple of 2 (s16le mono)", len(a.PCM))
	}
	return nil
}

// Validate reports what is wrong with e.
func (e EventMessage) Validate() error {
	if err := validateCommon(e.SessionID, e.Seq, e.CapturedAtMs, e.ReceivedAtMs); err != nil {
		return err
	}
	if e.Type == "" {
		return errors.New("event type is empty")
	}
	if err := store.CheckText("event type", e.Type, 64); err != nil {
		return err
	}
	if len(e.Payload) > 0 && !json.Valid(e.Payload) {
		return fmt.Errorf("event payload (%d bytes) is not valid JSON", len(e.Payload))
	}
	// json.Valid lets invalid UTF-8 through inside strings; PostgreSQL refuses it. The API
	// checks this too: this catches what reached the topic without passing the API.
	return store.CheckJSONText("event data", e.Payload, 0)
}

func validateCommon(session string, seq, captured, received int64) error {
	switch {
	case session == "":
		return errors.New("session id is empty")
	case len(session) > maxSessionIDLen:
		return fmt.Errorf("session id is %d bytes, at most %d allowed", len(session), maxSessionIDLen)
	case seq < 0:
		return fmt.Errorf("seq %d is negative", seq)
	case captured <= 0:
		return fmt.Errorf("captured-at %d is not a Unix time in ms", captured)
	case received <= 0:
		return fmt.Errorf("received-at %d is not a Unix time in ms", received)
	}
	// The key becomes a column: PostgreSQL refuses invalid UTF-8 and NUL.
	return store.CheckText("session id", session, 0)
}

// EncodeFrame turns f into a Kafka message (no topic set). Value aliases
// f.JPEG: do not modify it until the send returned.
func EncodeFrame(f FrameMessage) kafka.Message {
	var buf [3 * 20]byte
	num := buf[:0]
	num, seq := appendNum(num, f.Seq)
	num, capt := appendNum(num, f.CapturedAtMs)
	_, rec := appendNum(num, f.ReceivedAtMs)
	return kafka.Message{
		Key:   []byte(f.SessionID),
		Value: f.JPEG,
		Headers: []kafka.Header{
			{Key: HeaderVersion, Value: schemaVersionBytes},
			{Key: HeaderKind, Value: kindFrameBytes},
			{Key: HeaderSeq, Value: seq},
			{Key: HeaderCapturedAt, Value: capt},
			{Key: HeaderReceivedAt, Value: rec},
			{Key: HeaderCamera, Value: []byte(f.Camera)},
		},
	}
}

// EncodeAudio turns a into a Kafka message (no topic set). Value aliases a.PCM.
func EncodeAudio(a AudioMessage) kafka.Message {
	var buf [4 * 20]byte
	num := buf[:0]
	num, seq := appendNum(num, a.Seq)
	num, capt := appendNum(num, a.CapturedAtMs)
	num, rec := appendNum(num, a.ReceivedAtMs)
	_, rate := appendNum(num, int64(a.SampleRate))
	return kafka.Message{
		Key:   []byte(a.SessionID),
		Value: a.PCM,
		Headers: []kafka.Header{
			{Key: HeaderVersion, Value: schemaVersionBytes},
			{Key: HeaderKind, Value: kindAudioBytes},
			{Key: HeaderSeq, Value: seq},
			{Key: HeaderCapturedAt, Value: capt},
			{Key: HeaderReceivedAt, Value: rec},
			{Key: HeaderSampleRate, Value: rate},
		},
	}
}

// EncodeEvent turns e into a Kafka message (no topic set). Value aliases
// e.Payload.
func EncodeEvent(e EventMessage) kafka.Message {
	var buf [3 * 20]byte
	num := buf[:0]
	num, seq := appendNum(num, e.Seq)
	num, capt := appendNum(num, e.CapturedAtMs)
	_, rec := appendNum(num, e.ReceivedAtMs)
	return kafka.Message{
		Key:   []byte(e.SessionID),
		Value: e.Payload,
		Headers: []kafka.Header{
			{Key: HeaderVersion, Value: schemaVersionBytes},
			{Key: HeaderKind, Value: kindEventBytes},
			{Key: HeaderSeq, Value: seq},
			{Key: HeaderCapturedAt, Value: capt},
			{Key: HeaderReceivedAt, Value: rec},
			{Key: HeaderType, Value: []byte(e.Type)},
		},
	}
}

// EncodeEnroll turns e into a Kafka message for the frames topic (no topic set). Seq and
// captured-at are the common headers every kind carries: 0 and the creation time.
func EncodeEnroll(e EnrollMessage) kafka.Message {
	at := []byte(strconv.FormatInt(e.ReceivedAtMs, 10))
	return kafka.Message{
		Key: []byte(e.SessionID),
		Headers: []kafka.Header{
			{Key: HeaderVersion, Value: schemaVersionBytes},
			{Key: HeaderKind, Value: kindEnrollBytes},
			{Key: HeaderSeq, Value: []byte("0")},
			{Key: HeaderCapturedAt, Value: at},
			{Key: HeaderReceivedAt, Value: at},
		},
	}
}

// Shared read-only header values. kafka-go only reads header values when it
// encodes a batch, so sharing them between messages is safe.
var (
	schemaVersionBytes = []byte(SchemaVersion)
	kindFrameBytes     = []byte(KindFrame)
	kindAudioBytes     = []byte(KindAudio)
	kindEventBytes     = []byte(KindEvent)
	kindEnrollBytes    = []byte(KindEnroll)
)

// appendNum appends n in decimal to buf and returns the grown buffer and the
// digits just written. The caller sizes buf's array so nothing reallocates
// and the heap copy of buf holds every number of the message: one
// allocation per message instead of one per header.
func appendNum(buf []byte, n int64) ([]byte, []byte) {
	start := len(buf)
	buf = strconv.AppendInt(buf, n, 10)
	return buf, buf[start:len(buf):len(buf)]
}

// DecodeFrame parses a message of the frames topic. The returned JPEG aliases
// m.Value. Errors are Permanent: the message can never be decoded.
func DecodeFrame(m kafka.Message) (FrameMessage, error) {
	var f FrameMessage
	h, err := readHeaders(m, KindFrame)
	if err == nil {
		f = FrameMessage{
			SessionID: string(m.Key), Seq: h.seq, CapturedAtMs: h.captured, ReceivedAtMs: h.received,
			Camera: string(h.extra), JPEG: m.Value,
		}
		if h.extra == nil {
			err = missingHeader(HeaderCamera)
		} else {
			err = f.Validate()
		}
	}
	if err != nil {
		return FrameMessage{}, decodeError(KindFrame, m, err)
	}
	return f, nil
}

// DecodeAudio parses a message of the audio topic. The returned PCM aliases
// m.Value. Errors are Permanent.
func DecodeAudio(m kafka.Message) (AudioMessage, error) {
	var a AudioMessage
	h, err := readHeaders(m, KindAudio)
	if err == nil {
		var rate int64
		if h.extra == nil {
			err = missingHeader(HeaderSampleRate)
		} else if rate, err = parseNum(HeaderSampleRate, h.extra); err == nil {
			if rate > math.MaxInt32 {
				rate = math.MaxInt32 // rejected by Validate with the value in the message
			}
			a = AudioMessage{
				SessionID: string(m.Key), Seq: h.seq, CapturedAtMs: h.captured, ReceivedAtMs: h.received,
				SampleRate: int(rate), PCM: m.Value,
			}
			err = a.Validate()
		}
	}
	if err != nil {
		return AudioMessage{}, decodeError(KindAudio, m, err)
	}
	return a, nil
}

// DecodeEvent parses a message of the events topic. The returned Payload
// aliases m.Value. Errors are Permanent.
func DecodeEvent(m kafka.Message) (EventMessage, error) {
	var e EventMessage
	h, err := readHeaders(m, KindEvent)
	if err == nil {
		e = EventMessage{
			SessionID: string(m.Key), Seq: h.seq, CapturedAtMs: h.captured, ReceivedAtMs: h.received,
			Type: string(h.extra), Payload: m.Value,
		}
		if h.extra == nil {
			err = missingHeader(HeaderType)
		} else {
			err = e.Validate()
		}
	}
	if err != nil {
		return EventMessage{}, decodeError(KindEvent, m, err)
	}
	return e, nil
}

// DecodeEnroll parses an enrol message of the frames topic. Errors are Permanent.
func DecodeEnroll(m kafka.Message) (EnrollMessage, error) {
	h, err := readHeaders(m, KindEnroll)
	e := EnrollMessage{SessionID: string(m.Key), ReceivedAtMs: h.received}
	if err == nil {
		err = validateCommon(e.SessionID, h.seq, h.captured, h.received)
	}
	if err == nil && len(m.Value) > 0 {
		err = fmt.Errorf("enroll message carries %d bytes; it has no value", len(m.Value))
	}
	if err != nil {
		return EnrollMessage{}, decodeError(KindEnroll, m, err)
	}
	return e, nil
}

// Kind is the message's kind header ("" when absent): how a topic that carries more than one
// kind (frames and enrol requests) tells them apart before decoding.
func Kind(m kafka.Message) string {
	kind := ""
	for _, hd := range m.Headers {
		if hd.Key == HeaderKind {
			kind = string(hd.Value) // a repeated header keeps its last value, as in readHeaders
		}
	}
	return kind
}

// commonHeaders are the headers every kind carries, plus the one header that
// is specific to the kind (camera, sample-rate or type) in extra.
type commonHeaders struct {
	seq, captured, received int64
	extra                   []byte // nil when absent
}

func readHeaders(m kafka.Message, kind string) (commonHeaders, error) {
	var h commonHeaders
	var version, gotKind, seq, captured, received []byte
	extraKey := kindHeader(kind)
	for _, hd := range m.Headers {
		// A repeated header keeps its last value, as in most Kafka tooling.
		switch hd.Key {
		case HeaderVersion:
			version = nonNil(hd.Value)
		case HeaderKind:
			gotKind = nonNil(hd.Value)
		case HeaderSeq:
			seq = nonNil(hd.Value)
		case HeaderCapturedAt:
			captured = nonNil(hd.Value)
		case HeaderReceivedAt:
			received = nonNil(hd.Value)
		case extraKey:
			h.extra = nonNil(hd.Value)
		}
	}
	switch {
	case version == nil:
		return h, missingHeader(HeaderVersion)
	case string(version) != SchemaVersion:
		return h, fmt.Errorf("unsupported schema version %s=%q, this build reads %q", HeaderVersion, version, SchemaVersion)
	case gotKind == nil:
		return h, missingHeader(HeaderKind)
	case string(gotKind) != kind:
		return h, fmt.Errorf("header %s=%q, want %q (message on the wrong topic?)", HeaderKind, gotKind, kind)
	}
	var err error
	if h.seq, err = requireNum(HeaderSeq, seq); err != nil {
		return h, err
	}
	if h.captured, err = requireNum(HeaderCapturedAt, captured); err != nil {
		return h, err
	}
	if h.received, err = requireNum(HeaderReceivedAt, received); err != nil {
		return h, err
	}
	return h, nil
}

// kindHeader is the header specific to a message kind.
func kindHeader(kind string) string {
	switch kind {
	case KindFrame:
		return HeaderCamera
	case KindAudio:
		return HeaderSampleRate
	default:
		return HeaderType
	}
}

// nonNil makes a present but empty header distinguishable from a missing one.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func missingHeader(key string) error { return fmt.Errorf("missing header %q", key) }

func requireNum(key string, v []byte) (int64, error) {
	if v == nil {
		return 0, missingHeader(key)
	}
	return parseNum(key, v)
}

// parseNum parses a decimal int64 without converting v to a string (which
// would allocate on the per-frame path).
func parseNum(key string, v []byte) (int64, error) {
	bad := func() (int64, error) {
		return 0, fmt.Errorf("header %s=%q is not a decimal integer", key, v)
	}
	if len(v) == 0 || len(v) > 20 {
		return bad()
	}
	neg := v[0] == '-'
	digits := v
	if neg {
		digits = v[1:]
		if len(digits) == 0 {
			return bad()
		}
	}
	var n int64
	for _, c := range digits {
		if c < '0' || c > '9' {
			return bad()
		}
		d := int64(c - '0')
		if n > (math.MaxInt64-d)/10 {
			return bad()
		}
		n = n*10 + d
	}
	if neg {
		return -n, nil
	}
	return n, nil
}

func decodeError(kind string, m kafka.Message, err error) error {
	return Permanent(fmt.Errorf("decode %s message (session %q, %s[%d]@%d): %w",
		kind, m.Key, m.Topic, m.Partition, m.Offset, err))
}
