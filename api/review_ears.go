package api

import (
	"bytes"
	"context"
	"image"
	"sync"

	"gocv.io/x/gocv"

	"proctor/analyzers"
	"proctor/models"
)

// earStrip draws the two ear crops of an evidence frame's main face side by side (left ear of the
// image on the left, the right one un-mirrored), each enlarged 3×, as PNG: what the ears analyzer
// judged, for the reviewer of an EARS_COVERED or EARPHONES flag. The faces and landmarks models
// load on first use and are shared by every request (one at a time: a Set is not concurrent).
type earStrip struct {
	mu   sync.Mutex
	set  *analyzers.Set
	crop *models.EarCropper
	err  error
}

// errNoEars: no face (or no landmarks) on the frame; the page then shows the frame alone.
var errNoEars = errorString("no face with ears on the evidence frame")

type errorString string

func (e errorString) Error() string { return string(e) }

func (e *earStrip) png(ctx context.Context, jpeg []byte) ([]byte, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.set == nil && e.err == nil {
		e.set, e.err = analyzers.NewSet(analyzers.Config{Analyzers: []string{"faces", "landmarks", "earstrip"}, Catalog: e.catalog()})
	}
	if e.err != nil {
		return nil, e.err
	}
	f, err := analyzers.DecodeJPEG(jpeg, e.set.DecodeSide())
	if err != nil {
		return nil, errNoEars
	}
	defer f.Image.Close()
	var out []byte
	ctx = context.WithValue(ctx, earStripKey{}, &out)
	if _, err := e.set.Analyze(ctx, &f); err != nil {
		return nil, err
	}
	if out == nil {
		return nil, errNoEars
	}
	return out, nil
}

type earStripKey struct{}

// catalog is the built-in analyzers plus "earstrip", which renders the main face's ears while
// the frame's landmarks are at hand.
func (e *earStrip) catalog() *analyzers.Catalog {
	c := analyzers.NewCatalog()
	e.crop = models.NewEarCropper()
	c.Replace("earstrip", func(*analyzers.Config) (analyzers.Analyzer, error) { return earStripAnalyzer{e.crop}, nil })
	return c
}

type earStripAnalyzer struct{ crop *models.EarCropper }

func (earStripAnalyzer) Name() string       { return "earstrip" }
func (earStripAnalyzer) Version() string    { return "1" }
func (earStripAnalyzer) Requires() []string { return []string{"faces", "landmarks"} }
func (earStripAnalyzer) Close() error       { return nil }

func (a earStripAnalyzer) Analyze(ctx context.Context, f *analyzers.Frame, obs *analyzers.Observation) error {
	dst, _ := ctx.Value(earStripKey{}).(*[]byte)
	i := analyzers.MainFace(obs.Faces, len(f.FaceLandmarks))
	if dst == nil || i < 0 {
		return nil
	}
	regions, err := models.EarRegions(&f.FaceLandmarks[i])
	if err != nil {
		return nil
	}
	const k = 3
	strip := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(40, 40, 40, 0), k*models.EarCropH, 2*k*models.EarCropW+8, gocv.MatTypeCV8UC3)
	defer strip.Close()
	crop, big := gocv.NewMat(), gocv.NewMat()
	defer crop.Close()
	defer big.Close()
	for side, r := range regions {
		if err := a.crop.Crop(f.Image, r, &crop); err != nil {
			return err
		}
		gocv.Resize(crop, &big, image.Pt(k*models.EarCropW, k*models.EarCropH), 0, 0, gocv.InterpolationLinear)
		x := 0
		if side == models.EarRight {
			gocv.Flip(big, &big, 1) // the crop is mirrored for the classifier; show it as in the frame
			x = k*models.EarCropW + 8
		}
		roi := strip.Region(image.Rect(x, 0, x+k*models.EarCropW, k*models.EarCropH))
		big.CopyTo(&roi)
		roi.Close()
	}
	buf, err := gocv.IMEncode(gocv.PNGFileExt, strip)
	if err != nil {
		return err
	}
	defer buf.Close()
	*dst = bytes.Clone(buf.GetBytes())
	return nil
}
