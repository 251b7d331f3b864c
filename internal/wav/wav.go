// Package wav reads and writes WAV files: the API's audio uploads (ReadPCM16), recordings and
// evaluation clips of any PCM layout (Decode), and the 16-bit snippets of exports and tests
// (Encode). Only little-endian RIFF files are read; a big-endian RIFX file is refused rather
// than mistaken for raw PCM.
package wav

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// The sample rates the API accepts in a WAV upload (and documents): telephone to studio.
// Files outside the range are refused by ReadPCM16; Decode reads them and leaves resampling to
// the caller.
const (
	MinRate = 8000
	MaxRate = 48000
)

// Format tags of the fmt chunk.
const (
	formatPCM        = 1
	formatFloat      = 3
	formatExtensible = 0xFFFE // WAVE_FORMAT_EXTENSIBLE, which ffmpeg and sox write for plain PCM too
)

// ErrBigEndian is returned for a RIFX (big-endian) file.
var ErrBigEndian = errors.New("WAV is big-endian (RIFX), which is not supported: convert it to little-endian 16-bit PCM, e.g. ffmpeg -i in.wav -c:a pcm_s16le out.wav")

// IsWAV reports whether b starts like a WAV file (RIFF or RIFX), as opposed to raw PCM.
func IsWAV(b []byte) bool {
	return len(b) >= 4 && (string(b[:4]) == "RIFF" || string(b[:4]) == "RIFX")
}

// format is what the fmt chunk says about the samples.
type format struct {
	tag, channels, rate, bits int
}

// parse walks the chunks of a RIFF/WAVE file and returns the fmt chunk and the data chunk's
// bytes. A data chunk longer than the file is cut to what is there: streaming writers leave its
// size unset.
func parse(b []byte) (format, []byte, error) {
	var f format
	switch {
	case len(b) >= 4 && string(b[:4]) == "RIFX":
		return f, nil, ErrBigEndian
	case len(b) < 4 || string(b[:4]) != "RIFF":
		return f, nil, errors.New("not a WAV file (no RIFF header)")
	case len(b) < 12 || string(b[8:12]) != "WAVE":
		return f, nil, errors.New("RIFF file is not WAVE")
	}
	haveFmt := false
	for p := 12; p+8 <= len(b); {
		id := string(b[p : p+4])
		size := int(binary.LittleEndian.Uint32(b[p+4 : p+8]))
		body := b[p+8:]
		if size > len(body) {
			if id != "data" {
				return f, nil, fmt.Errorf("WAV chunk %q is truncated", id)
			}
			size = len(body)
		}
		switch id {
		case "fmt ":
			if size < 16 {
				return f, nil, errors.New("WAV fmt chunk is too short")
			}
			f.tag = int(binary.LittleEndian.Uint16(body[0:2]))
			f.channels = int(binary.LittleEndian.Uint16(body[2:4]))
			f.rate = int(binary.LittleEndian.Uint32(body[4:8]))
			f.bits = int(binary.LittleEndian.Uint16(body[14:16]))
			if f.tag == formatExtensible && size >= 26 { // the sub-format's first 2 bytes
				f.tag = int(binary.LittleEndian.Uint16(body[24:26]))
			}
			haveFmt = true
		case "data":
			if !haveFmt {
				return f, nil, errors.New("WAV data chunk before fmt chunk")
			}
			return f, body[:size], nil
		}
		p += 8 + size + size&1 // chunks are padded to even sizes
	}
	return f, nil, errors.New("WAV has no data chunk")
}

// ReadPCM16 reads the WAV files the API accepts: 16-bit integer PCM, mono, MinRate..MaxRate.
// It returns the s16le samples (a slice of b) and the rate. Its errors say what to send instead.
func ReadPCM16(b []byte) (pcm []byte, rate int, err error) {
	f, data, err := parse(b)
	if err != nil {
		return nil, 0, err
	}
	if f.tag != formatPCM && f.tag != formatExtensible {
		return nil, 0, fmt.Errorf("WAV format %d is not PCM", f.tag)
	}
	if f.channels != 1 || f.bits != 16 {
		return nil, 0, fmt.Errorf("WAV is %d channel(s) at %d bits; send mono 16-bit PCM", f.channels, f.bits)
	}
	if f.rate < MinRate || f.rate > MaxRate {
		return nil, 0, fmt.Errorf("WAV sample rate %d Hz is outside %d..%d", f.rate, MinRate, MaxRate)
	}
	data = data[:len(data)&^1]
	if len(data) == 0 {
		return nil, 0, errors.New("WAV has no samples")
	}
	return data, f.rate, nil
}

// Decode reads a WAV file of any common PCM layout (8, 16, 24 or 32-bit integer or 32-bit
// float, any channel count: channels are averaged, 1 to 192 kHz) and returns the samples
// (-1..1) and the rate. It is how a recording's audio track enters the analyzers (the CLI,
// evaluation, uploaded recordings).
func Decode(b []byte) ([]float32, int, error) {
	f, data, err := parse(b)
	if err != nil {
		return nil, 0, err
	}
	if f.channels < 1 || f.rate < 1000 || f.rate > 192000 {
		return nil, 0, fmt.Errorf("WAV has %d channels at %d Hz", f.channels, f.rate)
	}
	if !(f.tag == formatPCM && (f.bits == 8 || f.bits == 16 || f.bits == 24 || f.bits == 32)) &&
		!(f.tag == formatFloat && f.bits == 32) {
		return nil, 0, fmt.Errorf("WAV format %d at %d bits unsupported (want integer PCM or 32-bit float)", f.tag, f.bits)
	}
	bps := f.bits / 8
	frames := len(data) / (bps * f.channels)
	if frames == 0 {
		return nil, 0, errors.New("WAV has no samples")
	}
	out := make([]float32, frames)
	for i := range frames {
		var sum float32
		for c := range f.channels {
			o := (i*f.channels + c) * bps
			var v float32
			switch {
			case f.tag == formatFloat:
				v = math.Float32frombits(binary.LittleEndian.Uint32(data[o:]))
			case f.bits == 8:
				v = (float32(data[o]) - 128) / 128
			case f.bits == 16:
				v = float32(int16(binary.LittleEndian.Uint16(data[o:]))) / 32768
			case f.bits == 24:
				v = float32(int32(uint32(data[o])<<8|uint32(data[o+1])<<16|uint32(data[o+2])<<24)>>8) / 8388608
			default:
				v = float32(int32(binary.LittleEndian.Uint32(data[o:]))) / 2147483648
			}
			sum += v
		}
		out[i] = sum / float32(f.channels)
	}
	return out, f.rate, nil
}

// Encode writes s16le mono samples at rate as a 16-bit PCM WAV file.
func Encode(pcm []byte, rate int) []byte {
	pcm = pcm[:len(pcm)&^1]
	b := make([]byte, 0, 44+len(pcm))
	b = append(b, "RIFF"...)
	b = binary.LittleEndian.AppendUint32(b, uint32(36+len(pcm)))
	b = append(b, "WAVEfmt "...)
	b = binary.LittleEndian.AppendUint32(b, 16) // fmt chunk size
	b = binary.LittleEndian.AppendUint16(b, formatPCM)
	b = binary.LittleEndian.AppendUint16(b, 1) // channels
	b = binary.LittleEndian.AppendUint32(b, uint32(rate))
	b = binary.LittleEndian.AppendUint32(b, uint32(rate*2)) // bytes per second
	b = binary.LittleEndian.AppendUint16(b, 2)              // bytes per frame
	b = binary.LittleEndian.AppendUint16(b, 16)             // bits per sample
	b = append(b, "data"...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(pcm)))
	return append(b, pcm...)
}
