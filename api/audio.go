package api

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// parseAudio accepts a WAV file (RIFF, PCM 16-bit mono, 8–48 kHz) or raw PCM s16le mono at
// 16 kHz and returns the PCM samples and their rate.
func parseAudio(b []byte) (pcm []byte, rate int, err error) {
	if len(b) >= 4 && string(b[:4]) == "RIFF" {
		return parseWAV(b)
	}
	if len(b)%2 != 0 {
		return nil, 0, errors.New("raw PCM must be s16le (an even number of bytes); for other formats send a WAV file")
	}
	return b, 16000, nil
}

func parseWAV(b []byte) ([]byte, int, error) {
	if len(b) < 12 || string(b[8:12]) != "WAVE" {
		return nil, 0, errors.New("RIFF file is not WAVE")
	}
	var (
		rate, channels, bits, format int
		haveFmt                      bool
	)
	for p := 12; p+8 <= len(b); {
		id := string(b[p : p+4])
		size := int(binary.LittleEndian.Uint32(b[p+4 : p+8]))
		body := b[p+8:]
		if size > len(body) {
			if id == "data" { // streaming writers leave the size unset; take what is there
				size = len(body)
			} else {
				return nil, 0, fmt.Errorf("WAV chunk %q is truncated", id)
			}
		}
		switch id {
		case "fmt ":
			if size < 16 {
				return nil, 0, errors.New("WAV fmt chunk is too short")
			}
			format = int(binary.LittleEndian.Uint16(body[0:2]))
			channels = int(binary.LittleEndian.Uint16(body[2:4]))
			rate = int(binary.LittleEndian.Uint32(body[4:8]))
			bits = int(binary.LittleEndian.Uint16(body[14:16]))
			haveFmt = true
		case "data":
			if !haveFmt {
				return nil, 0, errors.New("WAV data chunk before fmt chunk")
			}
			// 0xFFFE is WAVE_FORMAT_EXTENSIBLE, which ffmpeg and sox write for plain PCM too.
			if format != 1 && format != 0xFFFE {
				return nil, 0, fmt.Errorf("WAV format %d is not PCM", format)
			}
			if channels != 1 || bits != 16 {
				return nil, 0, fmt.Errorf("WAV is %d channel(s) at %d bits; send mono 16-bit PCM", channels, bits)
			}
			if rate < 8000 || rate > 48000 {
				return nil, 0, fmt.Errorf("WAV sample rate %d Hz is outside 8000..48000", rate)
			}
			data := body[:size&^1]
			if len(data) == 0 {
				return nil, 0, errors.New("WAV has no samples")
			}
			return data, rate, nil
		}
		p += 8 + size + size&1 // chunks are padded to even sizes
	}
	return nil, 0, errors.New("WAV has no data chunk")
}
