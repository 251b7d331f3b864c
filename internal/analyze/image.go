// Package analyze runs the analyzers on local files for `proctor analyze`: images, WAV files
// and videos, with the same analyzers (and, for videos, the same frame handler and rules) the
// service runs.
package analyze

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	_ "image/png" // analyze accepts PNG files too; the service itself takes JPEG only
	"os"
	"strings"

	"proctor/analyzers"
)

// ImageResult is one line of `proctor analyze image`. Field names are stable: other tools read
// them.
type ImageResult struct {
	File string `json:"file"`
	analyzers.Observation
}

// ImageAnalyzers is what `proctor analyze image` runs by default: every face check, then the
// mask/occlusion classifier, the ears (visible, covered, not in view; earphones), the
// person/phone detector and the A4 sheet.
var ImageAnalyzers = []string{"faces", "landmarks", "identity", "headpose", "attire", "ears", "persons", "sheet"}

// ImageConfig is the analyzer configuration of `proctor analyze image`: the named analyzers
// (comma-separated), with pose and landmarks for every face (the service limits them to the
// faces its rules read).
func ImageConfig(names string) analyzers.Config {
	var cfg analyzers.Config
	for _, n := range strings.Split(names, ",") {
		if n = strings.TrimSpace(n); n != "" {
			cfg.Analyzers = append(cfg.Analyzers, n)
		}
	}
	cfg.Landmarks.MaxFaces = 32
	cfg.HeadPose.MaxFaces = 32
	cfg.Ears.MaxFaces = 32
	cfg.Identity.AllFaces = true
	return cfg
}

// Image analyses one JPEG or PNG file.
func Image(ctx context.Context, set *analyzers.Set, path string, meta analyzers.FrameMeta) (analyzers.Observation, error) {
	data, err := ReadImageJPEG(path)
	if err != nil {
		return analyzers.Observation{}, err
	}
	return set.AnalyzeFrameJPEG(ctx, data, meta)
}

// ReadImageJPEG reads a JPEG or PNG file as JPEG bytes.
func ReadImageJPEG(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if _, _, err := analyzers.ValidateJPEG(data); errors.Is(err, analyzers.ErrNotJPEG) {
		// Not a JPEG: decode it with Go's own (memory-safe) decoders and re-encode, so OpenCV
		// only ever sees validated JPEG bytes.
		img, format, derr := image.Decode(bytes.NewReader(data))
		if derr != nil {
			return nil, fmt.Errorf("not a JPEG or PNG image: %v", derr)
		}
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 95}); err != nil {
			return nil, fmt.Errorf("re-encode %s: %v", format, err)
		}
		data = buf.Bytes()
	}
	return data, nil
}

// ErrNoEnroller is returned by Enroll when the set cannot embed a reference photo.
var ErrNoEnroller = analyzers.ErrNoEnroller

// Enroll embeds reference photos into one enrollment: the first is the registration photo,
// the others form the gallery the service builds from verified login frames (each face is
// compared with the best of all). No paths: nil.
func Enroll(ctx context.Context, set *analyzers.Set, paths []string) (*analyzers.Enrollment, error) {
	var out *analyzers.Enrollment
	for _, p := range paths {
		data, err := ReadImageJPEG(p)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		e, err := set.Enroll(ctx, data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		if out == nil {
			out = &e
		} else {
			out.Gallery = append(out.Gallery, e.Vector)
		}
	}
	return out, nil
}
