package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"proctor/analyzers"
)

// serviceAnalyzers is the default of --analyzers for serve, worker, demo and bench: the face
// count, identity and head-pose checks, mask/occlusion, the person/phone detector, and the
// evidence camera's A4-sheet and camera-motion (room scan) checks.
var serviceAnalyzers = []string{"faces", "landmarks", "identity", "headpose", "attire", "persons", "sheet", "cameramotion"}

// imageAnalyzers is what `proctor analyze image` runs by default: every face check, then the
// mask/occlusion classifier and the person/phone detector.
var imageAnalyzers = []string{"faces", "landmarks", "identity", "headpose", "attire", "persons", "sheet"}

// imageConfig is the analyzer configuration of `proctor analyze image` and `proctor eval vision`:
// the named analyzers, with pose and landmarks for every face (the service limits them to the
// faces its rules read).
func imageConfig(names string) analyzers.Config {
	var cfg analyzers.Config
	for _, n := range strings.Split(names, ",") {
		if n = strings.TrimSpace(n); n != "" {
			cfg.Analyzers = append(cfg.Analyzers, n)
		}
	}
	cfg.Landmarks.MaxFaces = 32
	cfg.HeadPose.MaxFaces = 32
	cfg.Identity.AllFaces = true
	return cfg
}

// enrollFile computes the reference embedding of a registration photo; nil for path "".
func enrollFile(ctx context.Context, set *analyzers.Set, path string) (*analyzers.Enrollment, error) {
	if path == "" {
		return nil, nil
	}
	data, err := readImageJPEG(path)
	if err != nil {
		return nil, usageError{fmt.Errorf("--enroll %s: %w", path, err)}
	}
	e, err := set.Enroll(ctx, data)
	switch {
	case errors.Is(err, analyzers.ErrNoEnroller):
		return nil, usageError{errors.New("--enroll needs the identity analyzer (and faces, landmarks before it) in --analyzers")}
	case err != nil:
		return nil, fmt.Errorf("--enroll %s: %w", path, err)
	}
	return &e, nil
}
