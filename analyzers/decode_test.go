package analyzers

import (
	"bytes"
	"encoding/binary"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"testing"
)

// testJPEG encodes a w×h gradient (pure Go, no cache needed).
func testJPEG(t testing.TB, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.RGBA{uint8(x * 255 / w), uint8(y * 255 / h), 128, 255})
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// withSOFSize rewrites the dimensions in the frame header, the cheap way to get a header that
// claims a huge image without encoding one.
func withSOFSize(t testing.TB, data []byte, w, h int) []byte {
	t.Helper()
	out := bytes.Clone(data)
	for i := 2; i+9 < len(out); {
		if out[i] != 0xFF {
			t.Fatal("marker expected")
		}
		marker := out[i+1]
		n := int(binary.BigEndian.Uint16(out[i+2:]))
		if marker == 0xC0 || marker == 0xC2 {
			binary.BigEndian.PutUint16(out[i+5:], uint16(h))
			binary.BigEndian.PutUint16(out[i+7:], uint16(w))
			return out
		}
		i += 2 + n
	}
	t.Fatal("no SOF marker")
	return nil
}

// withEXIFOrientation inserts an APP1 Exif segment whose only tag is Orientation (0x0112).
func withEXIFOrientation(data []byte, orientation uint16) []byte {
	tiff := []byte{'M', 'M', 0, 42, 0, 0, 0, 8, // big-endian TIFF header, IFD0 at offset 8
		0, 1, // one entry
		0x01, 0x12, 0, 3, 0, 0, 0, 1, byte(orientation >> 8), byte(orientation), 0, 0, // SHORT
		0, 0, 0, 0} // no next IFD
	payload := append([]byte("Exif\x00\x00"), tiff...)
	seg := []byte{0xFF, 0xE1, 0, 0}
	binary.BigEndian.PutUint16(seg[2:], uint16(len(payload)+2))
	out := append([]byte{0xFF, 0xD8}, seg...)
	out = append(out, payload...)
	return append(out, data[2:]...)
}

func TestValidateJPEG(t *testing.T) {
	good := testJPEG(t, 640, 480)
	var pngBuf bytes.Buffer
	png.Encode(&pngBuf, image.NewRGBA(image.Rect(0, 0, 64, 64)))
	badHeader := []byte{0xFF, 0xD8, 0xFF, 0x01, 0x00, 0x04, 0x00, 0x00, 0xFF, 0xD9}    // marker 0x01 does not exist
	oddSOF := []byte{0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x05, 0x08, 0x00, 0x10, 0xFF, 0xD9} // 0 components

	tests := []struct {
		name  string
		data  []byte
		want  error
		wantW int
		wantH int
	}{
		{"good", good, nil, 640, 480},
		{"trailing zero padding", append(bytes.Clone(good), 0, 0, 0, 0), nil, 640, 480},
		{"empty", nil, ErrNotJPEG, 0, 0},
		{"png", pngBuf.Bytes(), ErrNotJPEG, 0, 0},
		{"text", []byte("GET / HTTP/1.1\r\n"), ErrNotJPEG, 0, 0},
		{"cut in half", good[:len(good)/2], ErrTruncated, 0, 0},
		{"last byte missing", good[:len(good)-1], ErrTruncated, 0, 0},
		{"junk after EOI", append(bytes.Clone(good), "trailer"...), ErrTruncated, 0, 0},
		{"header only", good[:200], ErrTruncated, 0, 0},
		{"SOI and EOI only", []byte{0xFF, 0xD8, 0xFF, 0xD9}, ErrCorruptJPEG, 0, 0},
		{"corrupt header", badHeader, ErrCorruptJPEG, 0, 0},
		{"unsupported frame header", oddSOF, ErrUnsupported, 0, 0},
		{"too small", testJPEG(t, 16, 16), ErrTooSmall, 16, 16},
		{"too narrow", testJPEG(t, 31, 200), ErrTooSmall, 31, 200},
		{"too large", withSOFSize(t, good, 9000, 9000), ErrTooLarge, 9000, 9000},
		{"largest allowed", withSOFSize(t, good, MaxSide, MaxSide), nil, MaxSide, MaxSide},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, h, err := ValidateJPEG(tt.data)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if w != tt.wantW || h != tt.wantH {
				t.Errorf("size %dx%d, want %dx%d", w, h, tt.wantW, tt.wantH)
			}
		})
	}
}

func TestReducedFactor(t *testing.T) {
	tests := []struct{ w, h, need, want int }{
		{1920, 1080, 320, 4}, // 480x270
		{1920, 1080, 640, 2}, // 960x540
		{1920, 1080, 0, 1},
		{640, 480, 320, 2},
		{639, 480, 320, 1}, // 319 would be too small
		{480, 640, 320, 2}, // portrait: longest side counts
		{4000, 3000, 320, 8},
		{320, 240, 320, 1},
	}
	for _, tt := range tests {
		if got := ReducedFactor(tt.w, tt.h, tt.need); got != tt.want {
			t.Errorf("ReducedFactor(%d, %d, %d) = %d, want %d", tt.w, tt.h, tt.need, got, tt.want)
		}
	}
}

func TestDecodeJPEG(t *testing.T) {
	big := testJPEG(t, 1920, 1080)
	tests := []struct {
		name         string
		data         []byte
		need         int
		imgW, imgH   int
		origW, origH int
	}{
		{"full", big, 0, 1920, 1080, 1920, 1080},
		{"quarter", big, 320, 480, 270, 1920, 1080},
		{"half", big, 640, 960, 540, 1920, 1080},
		{"odd size rounds up", testJPEG(t, 645, 483), 160, 162, 121, 645, 483},
		{"exif rotated 90", withEXIFOrientation(testJPEG(t, 640, 480), 6), 0, 480, 640, 480, 640},
		{"exif rotated 90 reduced", withEXIFOrientation(testJPEG(t, 640, 480), 6), 320, 240, 320, 480, 640},
		{"exif flip keeps size", withEXIFOrientation(testJPEG(t, 640, 480), 2), 0, 640, 480, 640, 480},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := DecodeJPEG(tt.data, tt.need)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Image.Close()
			if f.Image.Cols() != tt.imgW || f.Image.Rows() != tt.imgH || f.Image.Channels() != 3 {
				t.Errorf("image %dx%dx%d, want %dx%dx3", f.Image.Cols(), f.Image.Rows(), f.Image.Channels(), tt.imgW, tt.imgH)
			}
			if f.Width != tt.origW || f.Height != tt.origH {
				t.Errorf("original %dx%d, want %dx%d", f.Width, f.Height, tt.origW, tt.origH)
			}
		})
	}
}

func TestDecodeJPEGGreyscaleBecomesBGR(t *testing.T) {
	img := image.NewGray(image.Rect(0, 0, 64, 48))
	for i := range img.Pix {
		img.Pix[i] = uint8(i)
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, nil); err != nil {
		t.Fatal(err)
	}
	f, err := DecodeJPEG(b.Bytes(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Image.Close()
	if f.Image.Channels() != 3 || f.Width != 64 || f.Height != 48 {
		t.Errorf("got %dx%d with %d channels", f.Width, f.Height, f.Image.Channels())
	}
}

// A truncated upload must come back as an error, never reach OpenCV in a state that aborts the
// process. Cutting at many points covers headers, tables and entropy-coded data.
func TestDecodeJPEGTruncatedNeverCrashes(t *testing.T) {
	good := testJPEG(t, 320, 240)
	for cut := 0; cut < len(good); cut += max(1, len(good)/97) {
		if _, err := DecodeJPEG(good[:cut], 0); err == nil {
			t.Fatalf("cut at %d of %d: no error", cut, len(good))
		}
	}
	f, err := DecodeJPEG(good[:len(good)/2], 0)
	if !errors.Is(err, ErrTruncated) {
		t.Errorf("cut in half: err = %v, want ErrTruncated", err)
	}
	if f.Image.Ptr() != nil {
		t.Error("cut in half: returned an image") // (calling Empty() on the zero Mat would crash)
	}
	// Cut in half but with an EOI marker glued back on passes the cheap checks; libjpeg then
	// sees the data end early, warns and fills the rest. That must decode or fail cleanly.
	glued := append(bytes.Clone(good[:len(good)/2]), 0xFF, 0xD9)
	if f, err := DecodeJPEG(glued, 0); err == nil {
		if f.Image.Cols() != 320 || f.Image.Rows() != 240 {
			t.Errorf("glued: %dx%d", f.Image.Cols(), f.Image.Rows())
		}
		f.Image.Close()
	}
}

// Fuzzing the decoder looks for inputs that pass validation and then make OpenCV abort.
// `go test` runs only the seeds; run `go test -fuzz FuzzDecodeJPEG ./analyzers/` to search.
func FuzzDecodeJPEG(f *testing.F) {
	good := testJPEG(f, 64, 48)
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add(withEXIFOrientation(good, 6))
	f.Add(withSOFSize(f, good, 4000, 3000))
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := DecodeJPEG(data, 32)
		if err == nil {
			fr.Image.Close()
		}
	})
}

func BenchmarkDecodeJPEG(b *testing.B) {
	for _, tc := range []struct {
		name string
		w, h int
		need int
	}{
		{"640x480/full", 640, 480, 0},
		{"640x480/reduced2", 640, 480, 320},
		{"1280x720/full", 1280, 720, 0},
		{"1280x720/reduced2", 1280, 720, 320},
		{"1920x1080/full", 1920, 1080, 0},
		{"1920x1080/reduced4", 1920, 1080, 320},
	} {
		b.Run(tc.name, func(b *testing.B) {
			data := testJPEG(b, tc.w, tc.h)
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				f, err := DecodeJPEG(data, tc.need)
				if err != nil {
					b.Fatal(err)
				}
				f.Image.Close()
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/frame")
		})
	}
}

func BenchmarkValidateJPEG(b *testing.B) {
	data := testJPEG(b, 1280, 720)
	for b.Loop() {
		if _, _, err := ValidateJPEG(data); err != nil {
			b.Fatal(err)
		}
	}
}
