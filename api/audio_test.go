package api

import (
	"strings"
	"testing"

	"proctor/internal/wav"
)

// parseAudio: WAV by its header (a big-endian RIFX file is refused, not taken for raw PCM),
// anything else is raw s16le at 16 kHz.
func TestParseAudio(t *testing.T) {
	pcm := []byte{1, 0, 2, 0, 3, 0}
	riff := wav.Encode(pcm, 8000)
	rifx := append([]byte("RIFX"), riff[4:]...)
	for _, tc := range []struct {
		name     string
		in       []byte
		wantRate int
		wantErr  string
	}{
		{"WAV 8 kHz", riff, 8000, ""},
		{"raw PCM", pcm, 16000, ""},
		{"raw PCM, odd length", pcm[:5], 0, "an even number of bytes"},
		{"RIFX", rifx, 0, "big-endian (RIFX)"},
		{"RIFF, not WAVE", []byte("RIFF\x00\x00\x00\x00AVI "), 0, "RIFF file is not WAVE"},
	} {
		got, rate, err := parseAudio(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.wantErr)
			}
			continue
		}
		if err != nil || rate != tc.wantRate || string(got) != string(pcm) {
			t.Errorf("%s: %v at %d Hz, %v", tc.name, got, rate, err)
		}
	}
}
