package api

import (
	"errors"

	"proctor/internal/wav"
)

// parseAudio accepts a WAV file (RIFF, PCM 16-bit mono, 8–48 kHz) or raw PCM s16le mono at
// 16 kHz and returns the PCM samples and their rate.
func parseAudio(b []byte) (pcm []byte, rate int, err error) {
	if wav.IsWAV(b) {
		return wav.ReadPCM16(b)
	}
	if len(b)%2 != 0 {
		return nil, 0, errors.New("raw PCM must be s16le (an even number of bytes); for other formats send a WAV file")
	}
	return b, 16000, nil
}
