package analyzers

import (
	"bytes"
	"errors"
	"fmt"
	"image/jpeg"
	"io"

	"gocv.io/x/gocv"
)

// Limits on the frames we accept. Below MinSide no analyzer has anything to look at; above
// MaxSide a single full decode would need hundreds of MB (8192² × 3 bytes ≈ 200 MB).
const (
	MinSide = 32
	MaxSide = 8192
)

// Errors a posted frame can fail with. All of them are the client's fault (HTTP 4xx); wrap-check
// them with errors.Is. Each message says what was wrong.
var (
	ErrNotJPEG     = errors.New("not a JPEG image (must start with the JPEG SOI marker FF D8)")
	ErrTruncated   = errors.New("JPEG is truncated (no end-of-image marker FF D9 at the end): upload the whole file")
	ErrCorruptJPEG = errors.New("JPEG header is corrupt")
	ErrUnsupported = errors.New("JPEG uses an unsupported feature (e.g. arithmetic coding or 12-bit samples): re-encode as baseline or progressive 8-bit JPEG")
	ErrTooSmall    = fmt.Errorf("image is smaller than %dx%d pixels", MinSide, MinSide)
	ErrTooLarge    = fmt.Errorf("image is larger than %dx%d pixels: scale it down before posting", MaxSide, MaxSide)
	ErrDecode      = errors.New("JPEG could not be decoded")
)

// maxTrailingPad is how many zero bytes after the EOI marker we tolerate: some encoders and
// transports pad a file to a block size; anything else after EOI (or missing EOI) means a cut
// upload.
const maxTrailingPad = 64

// ValidateJPEG checks, in pure Go and without decoding pixels, that data is a complete JPEG
// within the size limits, and returns its width and height. It reads the markers up to the frame
// header (image/jpeg.DecodeConfig) and the last bytes of the file, so it costs microseconds; the
// HTTP API calls it to reject bad uploads before they are queued, and DecodeJPEG calls it before
// handing anything to OpenCV (whose errors abort the process).
func ValidateJPEG(data []byte) (w, h int, err error) {
	if len(data) < 4 || data[0] != 0xFF || data[1] != 0xD8 || data[2] != 0xFF {
		return 0, 0, ErrNotJPEG
	}
	end := len(data)
	for pad := 0; end > 2 && data[end-1] == 0 && pad < maxTrailingPad; pad++ {
		end--
	}
	if end < 4 || data[end-2] != 0xFF || data[end-1] != 0xD9 {
		return 0, 0, ErrTruncated
	}
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(data[:end]))
	if err != nil {
		var unsupported jpeg.UnsupportedError
		switch {
		case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
			return 0, 0, ErrTruncated
		case errors.As(err, &unsupported):
			return 0, 0, fmt.Errorf("%w: %v", ErrUnsupported, err)
		default:
			return 0, 0, fmt.Errorf("%w: %v", ErrCorruptJPEG, err)
		}
	}
	w, h = cfg.Width, cfg.Height
	if w < MinSide || h < MinSide {
		return w, h, fmt.Errorf("%w (got %dx%d)", ErrTooSmall, w, h)
	}
	if w > MaxSide || h > MaxSide {
		return w, h, fmt.Errorf("%w (got %dx%d)", ErrTooLarge, w, h)
	}
	return w, h, nil
}

// DecodeJPEG validates data (see ValidateJPEG) and decodes it to an 8-bit BGR image.
//
// needSide is the longest side the analyzers need. When the image is at least twice as large,
// libjpeg decodes it directly at 1/2, 1/4 or 1/8 scale (IMREAD_REDUCED_COLOR_*: the DCT is
// scaled, so it is ~2x faster than a full decode and no resize is needed afterwards); the factor
// is the largest that keeps the longest side >= needSide. needSide <= 0 decodes at full size.
//
// The returned Frame has Width/Height of the original JPEG (swapped when an EXIF orientation
// rotated it upright) and Image possibly smaller; the caller sets Camera and must Close f.Image.
// On error f.Image is the zero Mat: nothing to close, and calling any method on it (even Empty)
// would crash in OpenCV.
func DecodeJPEG(data []byte, needSide int) (Frame, error) {
	w, h, err := ValidateJPEG(data)
	if err != nil {
		return Frame{}, err
	}
	factor := ReducedFactor(w, h, needSide)
	flag := gocv.IMReadColor
	switch factor {
	case 2:
		flag = gocv.IMReadReducedColor2
	case 4:
		flag = gocv.IMReadReducedColor4
	case 8:
		flag = gocv.IMReadReducedColor8
	}
	img, err := gocv.IMDecode(data, flag)
	if err != nil {
		img.Close()
		return Frame{}, fmt.Errorf("%w: %v", ErrDecode, err)
	}
	// libjpeg scales to ceil(side/factor); anything else means OpenCV read something other than
	// what image/jpeg saw in the header (e.g. a second embedded image) and boxes would be wrong.
	wantW, wantH := (w+factor-1)/factor, (h+factor-1)/factor
	if img.Empty() || img.Type() != gocv.MatTypeCV8UC3 {
		img.Close()
		return Frame{}, fmt.Errorf("%w: OpenCV returned no 8-bit BGR image", ErrDecode)
	}
	switch gotW, gotH := img.Cols(), img.Rows(); {
	case gotW == wantW && gotH == wantH:
	case gotW == wantH && gotH == wantW:
		// OpenCV applied an EXIF orientation of 90° or 270° (phones do this): the frame the
		// candidate's camera saw is h×w, and boxes must be in that upright frame.
		w, h = h, w
	default:
		img.Close()
		return Frame{}, fmt.Errorf("%w: expected %dx%d at 1/%d scale, got %dx%d", ErrDecode, wantW, wantH, factor, gotW, gotH)
	}
	return Frame{Image: img, Width: w, Height: h}, nil
}

// ReducedFactor is the JPEG decode scale DecodeJPEG uses: the largest of 8, 4, 2 that keeps
// max(w,h)/factor >= needSide, else 1.
func ReducedFactor(w, h, needSide int) int {
	if needSide <= 0 {
		return 1
	}
	long := max(w, h)
	for _, f := range []int{8, 4, 2} {
		if long/f >= needSide {
			return f
		}
	}
	return 1
}
