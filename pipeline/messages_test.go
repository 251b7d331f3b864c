package pipeline

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"reflect"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go"
)

// testJPEG encodes a small real JPEG so that the payload is what the API
// would carry.
func testJPEG(t testing.TB, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), uint8(x + y), 255})
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 80}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	frame := FrameMessage{SessionID: "sess-1", Camera: "main", Seq: 42, CapturedAtMs: 1764150000123, ReceivedAtMs: 1764150000200, JPEG: testJPEG(t, 32, 24)}
	audio := AudioMessage{SessionID: "sess-1", Seq: 7, CapturedAtMs: 1764150000000, ReceivedAtMs: 1764150000300, SampleRate: 16000, PCM: []byte{1, 0, 0xff, 0x7f}}
	event := EventMessage{SessionID: "sess-1", Seq: 0, Type: "window_blur", CapturedAtMs: 1764150000000, ReceivedAtMs: 1764150000001, Payload: []byte(`{"focused":false}`)}

	gotF, err := DecodeFrame(EncodeFrame(frame))
	if err != nil || !reflect.DeepEqual(gotF, frame) {
		t.Errorf("frame round trip: got %+v, %v; want %+v", gotF, err, frame)
	}
	gotA, err := DecodeAudio(EncodeAudio(audio))
	if err != nil || !reflect.DeepEqual(gotA, audio) {
		t.Errorf("audio round trip: got %+v, %v; want %+v", gotA, err, audio)
	}
	gotE, err := DecodeEvent(EncodeEvent(event))
	if err != nil || !reflect.DeepEqual(gotE, event) {
		t.Errorf("event round trip: got %+v, %v; want %+v", gotE, err, event)
	}

	enrol := EnrollMessage{SessionID: "sess-1", ReceivedAtMs: 1764150000400}
	gotN, err := DecodeEnroll(EncodeEnroll(enrol))
	if err != nil || gotN != enrol {
		t.Errorf("enrol round trip: got %+v, %v; want %+v", gotN, err, enrol)
	}
	for m, want := range map[*kafka.Message]string{ptr(EncodeFrame(frame)): KindFrame, ptr(EncodeEnroll(enrol)): KindEnroll, {}: ""} {
		if got := Kind(*m); got != want {
			t.Errorf("Kind = %q, want %q", got, want)
		}
	}

	m := EncodeFrame(frame)
	if string(m.Key) != "sess-1" || header(m, HeaderVersion) != "1" || header(m, HeaderSeq) != "42" ||
		header(m, HeaderCapturedAt) != "1764150000123" || header(m, HeaderCamera) != "main" || header(m, HeaderKind) != "frame" {
		t.Errorf("frame headers not as documented: key %q headers %v", m.Key, m.Headers)
	}
}

func TestDecodeErrorsArePermanentAndSayWhy(t *testing.T) {
	good := EncodeFrame(FrameMessage{SessionID: "s", Camera: "main", Seq: 1, CapturedAtMs: 1, ReceivedAtMs: 2, JPEG: []byte{0xFF, 0xD8, 0xFF, 0xD9}})
	without := func(key string) kafka.Message {
		m := good
		m.Headers = nil
		for _, h := range good.Headers {
			if h.Key != key {
				m.Headers = append(m.Headers, h)
			}
		}
		return m
	}
	with := func(key, value string) kafka.Message {
		m := without(key)
		m.Headers = append(m.Headers, kafka.Header{Key: key, Value: []byte(value)})
		return m
	}
	tests := []struct {
		name string
		msg  kafka.Message
		want string
	}{
		{"no headers", kafka.Message{Key: []byte("s"), Value: good.Value}, `missing header "v"`},
		{"missing seq", without(HeaderSeq), `missing header "seq"`},
		{"missing camera", without(HeaderCamera), `missing header "camera"`},
		{"missing captured-at", without(HeaderCapturedAt), `missing header "captured-at-ms"`},
		{"seq not a number", with(HeaderSeq, "4x"), `header seq="4x" is not a decimal integer`},
		{"seq empty", with(HeaderSeq, ""), `header seq="" is not a decimal integer`},
		{"seq overflows", with(HeaderSeq, "99999999999999999999"), `is not a decimal integer`},
		{"seq negative", with(HeaderSeq, "-3"), `seq -3 is negative`},
		{"future schema", with(HeaderVersion, "2"), `unsupported schema version v="2"`},
		{"wrong kind", with(HeaderKind, "audio"), `header kind="audio", want "frame"`},
		{"no session", func() kafka.Message { m := good; m.Key = nil; return m }(), `session id is empty`},
		{"not a jpeg", func() kafka.Message { m := good; m.Value = []byte("PNG....."); return m }(), `not a JPEG`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeFrame(tt.msg)
			if err == nil {
				t.Fatal("decoded a bad message without error")
			}
			if !IsPermanent(err) {
				t.Errorf("error %v is not Permanent", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}

	// A frame is not an enrol request, nor the other way round; an enrol request has no value.
	if _, err := DecodeEnroll(good); err == nil || !IsPermanent(err) || !strings.Contains(err.Error(), `header kind="frame", want "enroll"`) {
		t.Errorf("frame decoded as an enrol request: %v", err)
	}
	enrol := EncodeEnroll(EnrollMessage{SessionID: "s", ReceivedAtMs: 5})
	if _, err := DecodeFrame(enrol); err == nil || !strings.Contains(err.Error(), `want "frame"`) {
		t.Errorf("enrol request decoded as a frame: %v", err)
	}
	enrol.Value = []byte{1}
	if _, err := DecodeEnroll(enrol); err == nil || !strings.Contains(err.Error(), "it has no value") {
		t.Errorf("enrol request with a value: %v", err)
	}
	if _, err := DecodeEnroll(EncodeEnroll(EnrollMessage{SessionID: "s"})); err == nil || !strings.Contains(err.Error(), "not a Unix time") {
		t.Errorf("enrol request without a time: %v", err)
	}

	audio := EncodeAudio(AudioMessage{SessionID: "s", Seq: 1, CapturedAtMs: 1, ReceivedAtMs: 1, SampleRate: 16000, PCM: []byte{1}})
	if _, err := DecodeAudio(audio); err == nil || !strings.Contains(err.Error(), "multiple of 2") {
		t.Errorf("odd PCM length: got %v", err)
	}
	event := EncodeEvent(EventMessage{SessionID: "s", Seq: 1, Type: "x", CapturedAtMs: 1, ReceivedAtMs: 1, Payload: []byte("{not json")})
	if _, err := DecodeEvent(event); err == nil || !strings.Contains(err.Error(), "not valid JSON") {
		t.Errorf("bad JSON: got %v", err)
	}
}

func TestPermanent(t *testing.T) {
	base := fmt.Errorf("bad frame")
	err := fmt.Errorf("analyse: %w", Permanent(base))
	if !IsPermanent(err) {
		t.Error("wrapped Permanent not detected")
	}
	if IsPermanent(base) || Permanent(nil) != nil {
		t.Error("Permanent misclassifies")
	}
	if p := Permanent(err); p != err {
		t.Error("Permanent double-wrapped an already permanent error")
	}
}

func TestDecodeFrameAllocations(t *testing.T) {
	m := EncodeFrame(FrameMessage{SessionID: "session-0001", Camera: "main", Seq: 123456, CapturedAtMs: 1764150000123, ReceivedAtMs: 1764150000200, JPEG: testJPEG(t, 16, 16)})
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := DecodeFrame(m); err != nil {
			t.Fatal(err)
		}
	})
	// Two strings: session id and camera.
	if allocs > 2 {
		t.Errorf("DecodeFrame allocates %.0f times per call, want <= 2", allocs)
	}
}

func BenchmarkEncodeDecodeFrame(b *testing.B) {
	f := FrameMessage{SessionID: "session-0001", Camera: "main", Seq: 123456, CapturedAtMs: 1764150000123, ReceivedAtMs: 1764150000200, JPEG: testJPEG(b, 64, 48)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeFrame(EncodeFrame(f)); err != nil {
			b.Fatal(err)
		}
	}
}

func ptr[T any](v T) *T { return &v }
