package wav

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"testing"
)

// build writes a WAV file with the given fmt fields and data (little-endian unless riff says
// "RIFX").
func build(riff string, tag, channels, bits, rate int, data []byte) []byte {
	h := append([]byte(riff), 0, 0, 0, 0)
	binary.LittleEndian.PutUint32(h[4:], uint32(36+len(data)))
	h = append(h, "WAVEfmt "...)
	h = binary.LittleEndian.AppendUint32(h, 16)
	h = binary.LittleEndian.AppendUint16(h, uint16(tag))
	h = binary.LittleEndian.AppendUint16(h, uint16(channels))
	h = binary.LittleEndian.AppendUint32(h, uint32(rate))
	h = binary.LittleEndian.AppendUint32(h, uint32(rate*channels*bits/8))
	h = binary.LittleEndian.AppendUint16(h, uint16(channels*bits/8))
	h = binary.LittleEndian.AppendUint16(h, uint16(bits))
	h = append(h, "data"...)
	h = binary.LittleEndian.AppendUint32(h, uint32(len(data)))
	return append(h, data...)
}

// extensible writes a WAVE_FORMAT_EXTENSIBLE header (40-byte fmt chunk) with sub-format sub.
func extensible(sub, channels, bits, rate int, data []byte) []byte {
	h := []byte("RIFF\x00\x00\x00\x00WAVEfmt ")
	h = binary.LittleEndian.AppendUint32(h, 40)
	h = binary.LittleEndian.AppendUint16(h, formatExtensible)
	h = binary.LittleEndian.AppendUint16(h, uint16(channels))
	h = binary.LittleEndian.AppendUint32(h, uint32(rate))
	h = binary.LittleEndian.AppendUint32(h, uint32(rate*channels*bits/8))
	h = binary.LittleEndian.AppendUint16(h, uint16(channels*bits/8))
	h = binary.LittleEndian.AppendUint16(h, uint16(bits))
	h = binary.LittleEndian.AppendUint16(h, 22)           // cbSize
	h = binary.LittleEndian.AppendUint16(h, uint16(bits)) // valid bits
	h = binary.LittleEndian.AppendUint32(h, 0)            // channel mask
	h = binary.LittleEndian.AppendUint16(h, uint16(sub))
	h = append(h, make([]byte, 14)...) // rest of the sub-format GUID
	h = append(h, "data"...)
	h = binary.LittleEndian.AppendUint32(h, uint32(len(data)))
	return append(h, data...)
}

func s16(v ...int16) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint16(b, uint16(x))
	}
	return b
}

func TestReadPCM16(t *testing.T) {
	pcm := s16(1, -2, 3, -4)
	good := build("RIFF", 1, 1, 16, 16000, pcm)
	for _, tc := range []struct {
		name     string
		in       []byte
		wantRate int
		wantPCM  []byte
		wantErr  string // part of the message; "" for success
	}{
		{"16 kHz mono", good, 16000, pcm, ""},
		{"8 kHz", build("RIFF", 1, 1, 16, 8000, pcm), 8000, pcm, ""},
		{"48 kHz", build("RIFF", 1, 1, 16, 48000, pcm), 48000, pcm, ""},
		{"extensible PCM", extensible(formatPCM, 1, 16, 16000, pcm), 16000, pcm, ""},
		{"data size unset (streaming writer)", append(good[:40:40], append([]byte{0xff, 0xff, 0xff, 0xff}, pcm...)...), 16000, pcm, ""},
		{"odd data byte dropped", build("RIFF", 1, 1, 16, 16000, append(pcm, 9)), 16000, pcm, ""},
		{"big-endian RIFX", build("RIFX", 1, 1, 16, 16000, pcm), 0, nil, "big-endian (RIFX)"},
		{"not RIFF", []byte("OggS\x00\x02 and more bytes"), 0, nil, "no RIFF header"},
		{"RIFF but AVI", []byte("RIFF\x10\x00\x00\x00AVI LIST"), 0, nil, "RIFF file is not WAVE"},
		{"header only", []byte("RIFF"), 0, nil, "RIFF file is not WAVE"},
		{"truncated fmt chunk", good[:30], 0, nil, `WAV chunk "fmt " is truncated`},
		{"no data chunk", good[:36], 0, nil, "no data chunk"},
		{"empty data", build("RIFF", 1, 1, 16, 16000, nil), 0, nil, "no samples"},
		{"8 bits", build("RIFF", 1, 1, 8, 16000, pcm), 0, nil, "1 channel(s) at 8 bits; send mono 16-bit PCM"},
		{"24 bits", build("RIFF", 1, 1, 24, 16000, append(pcm, 0, 0)), 0, nil, "at 24 bits"},
		{"stereo", build("RIFF", 1, 2, 16, 16000, pcm), 0, nil, "2 channel(s) at 16 bits; send mono"},
		{"float", build("RIFF", 3, 1, 32, 16000, pcm), 0, nil, "WAV format 3 is not PCM"},
		{"extensible float", extensible(formatFloat, 1, 32, 16000, pcm), 0, nil, "WAV format 3 is not PCM"},
		{"rate too low", build("RIFF", 1, 1, 16, 4000, pcm), 0, nil, "4000 Hz is outside 8000..48000"},
		{"rate too high", build("RIFF", 1, 1, 16, 96000, pcm), 0, nil, "96000 Hz is outside 8000..48000"},
		{"data before fmt", []byte("RIFF\x00\x00\x00\x00WAVEdata\x02\x00\x00\x00\x01\x00"), 0, nil, "data chunk before fmt chunk"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, rate, err := ReadPCM16(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || rate != tc.wantRate || !bytes.Equal(got, tc.wantPCM) {
				t.Fatalf("got %v at %d Hz, %v; want %v at %d Hz", got, rate, err, tc.wantPCM, tc.wantRate)
			}
		})
	}
	if _, _, err := ReadPCM16(build("RIFX", 1, 1, 16, 16000, pcm)); !errors.Is(err, ErrBigEndian) {
		t.Errorf("RIFX: %v, want ErrBigEndian", err)
	}
}

func TestDecode(t *testing.T) {
	// Two frames: (0.5, -0.5) and (0.25, 0.25); channels are averaged to 0 and 0.25.
	frames := [][]float64{{0.5, -0.5}, {0.25, 0.25}}
	encode := func(tag, bits int) []byte {
		var data []byte
		for _, f := range frames {
			for _, v := range f {
				switch {
				case tag == formatFloat:
					data = binary.LittleEndian.AppendUint32(data, math.Float32bits(float32(v)))
				case bits == 8:
					data = append(data, byte(int(v*127)+128))
				case bits == 16:
					data = binary.LittleEndian.AppendUint16(data, uint16(int16(v*32767)))
				case bits == 24:
					x := int32(v * 8388607)
					data = append(data, byte(x), byte(x>>8), byte(x>>16))
				case bits == 32:
					data = binary.LittleEndian.AppendUint32(data, uint32(int32(v*2147483647)))
				}
			}
		}
		return data
	}
	for _, tc := range []struct {
		name    string
		in      []byte
		wantErr string
	}{
		{"u8 stereo", build("RIFF", 1, 2, 8, 22050, encode(1, 8)), ""},
		{"s16 stereo", build("RIFF", 1, 2, 16, 22050, encode(1, 16)), ""},
		{"s24 stereo", build("RIFF", 1, 2, 24, 22050, encode(1, 24)), ""},
		{"s32 stereo", build("RIFF", 1, 2, 32, 22050, encode(1, 32)), ""},
		{"f32 stereo", build("RIFF", 3, 2, 32, 22050, encode(3, 32)), ""},
		{"extensible s16 stereo", extensible(formatPCM, 2, 16, 22050, encode(1, 16)), ""},
		{"big-endian RIFX", build("RIFX", 1, 2, 16, 22050, encode(1, 16)), "big-endian (RIFX)"},
		{"truncated", build("RIFF", 1, 2, 16, 22050, encode(1, 16))[:20], "truncated"},
		{"no chunks", []byte("RIFF....WAVEjunk"), "no data chunk"},
		{"f64", build("RIFF", 3, 2, 64, 22050, make([]byte, 32)), "format 3 at 64 bits unsupported"},
		{"12 bits", build("RIFF", 1, 1, 12, 22050, make([]byte, 8)), "format 1 at 12 bits unsupported"},
		{"no channels", build("RIFF", 1, 0, 16, 22050, make([]byte, 8)), "0 channels"},
		{"rate 500 Hz", build("RIFF", 1, 1, 16, 500, make([]byte, 8)), "at 500 Hz"},
		{"less than one frame", build("RIFF", 1, 2, 16, 22050, make([]byte, 2)), "no samples"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, rate, err := Decode(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || rate != 22050 || len(s) != 2 || math.Abs(float64(s[0])) > 1e-2 || math.Abs(float64(s[1])-0.25) > 1e-2 {
				t.Fatalf("%v at %d Hz, %v; want channels averaged: [0 0.25] at 22050 Hz", s, rate, err)
			}
		})
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		rate int
		pcm  []byte
	}{{16000, s16(0, 1, -1, 32767, -32768)}, {8000, s16(100)}, {48000, nil}} {
		b := Encode(tc.pcm, tc.rate)
		if len(b) != 44+len(tc.pcm) {
			t.Errorf("%d Hz: %d bytes, want a 44-byte header and the samples", tc.rate, len(b))
		}
		if len(tc.pcm) == 0 {
			continue
		}
		got, rate, err := ReadPCM16(b)
		if err != nil || rate != tc.rate || !bytes.Equal(got, tc.pcm) {
			t.Errorf("%d Hz: read back %v at %d Hz, %v", tc.rate, got, rate, err)
		}
		s, rate, err := Decode(b)
		if err != nil || rate != tc.rate || len(s) != len(tc.pcm)/2 || s[0] != float32(int16(binary.LittleEndian.Uint16(tc.pcm)))/32768 {
			t.Errorf("%d Hz: decoded %v at %d Hz, %v", tc.rate, s, rate, err)
		}
	}
}

func TestIsWAV(t *testing.T) {
	for in, want := range map[string]bool{"RIFF....": true, "RIFX....": true, "RIF": false, "\x00\x01\x02\x03": false} {
		if IsWAV([]byte(in)) != want {
			t.Errorf("IsWAV(%q) = %v", in, !want)
		}
	}
}
