package scenario

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"

	"gocv.io/x/gocv"

	"proctor/analyzers"
)

// RecordingTimeline is 27 s of the main camera as a recording shows it, one shot per second: the
// candidate for 10 s, an empty room for 8 s (FACE_ABSENT from 10 s), a group for 5 s
// (MULTIPLE_FACES from 18 s) and the candidate again for 4 s.
func RecordingTimeline(f *Frames) []Shot {
	var out []Shot
	add := func(label string, pool [][]byte, n int) {
		for i := range n {
			out = append(out, Shot{label, pool[i%len(pool)]})
		}
	}
	add("candidate", f.Candidate, 10)
	add("nobody", f.Nobody, 8)
	add("group", f.Group, 5)
	add("candidate", f.Candidate, 4)
	return out
}

// WriteVideo writes shots as a Motion-JPEG AVI (what OpenCV writes without extra codecs) at fps
// frames per second, each shot held for one second, so frame i is at i*1000/fps ms.
func WriteVideo(path string, shots []Shot, fps int) error {
	if len(shots) == 0 || fps <= 0 {
		return errors.New("write video: no shots or no frame rate")
	}
	w, err := gocv.VideoWriterFile(path, "MJPG", float64(fps), FrameSize, FrameSize*3/4, true)
	if err != nil {
		return fmt.Errorf("open video writer: %w", err)
	}
	if !w.IsOpened() {
		w.Close()
		return errors.New("OpenCV cannot write MJPG AVI files here")
	}
	for i, s := range shots {
		fr, err := analyzers.DecodeJPEG(s.JPEG, 0)
		if err != nil {
			w.Close()
			return fmt.Errorf("shot %d: %w", i, err)
		}
		if fr.Image.Cols() != FrameSize || fr.Image.Rows() != FrameSize*3/4 {
			fr.Image.Close()
			w.Close()
			return fmt.Errorf("shot %d is %dx%d, want %dx%d", i, fr.Image.Cols(), fr.Image.Rows(), FrameSize, FrameSize*3/4)
		}
		for range fps {
			if err := w.Write(fr.Image); err != nil {
				fr.Image.Close()
				w.Close()
				return err
			}
		}
		fr.Image.Close()
	}
	return w.Close()
}

// MuxAudio writes out: the video stream of video (copied) with pcm (s16le mono at rate Hz) as its
// audio track, using ffmpeg.
func MuxAudio(ctx context.Context, video string, pcm []byte, rate int, out string) error {
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		return fmt.Errorf("ffmpeg not installed: %w", err)
	}
	raw := filepath.Join(filepath.Dir(out), "audio.s16le")
	if err := os.WriteFile(raw, pcm, 0o644); err != nil {
		return err
	}
	defer os.Remove(raw)
	cmd := exec.CommandContext(ctx, ffmpeg, "-nostdin", "-v", "error", "-y", "-i", video,
		"-f", "s16le", "-ar", strconv.Itoa(rate), "-ac", "1", "-i", raw,
		"-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy", "-c:a", "pcm_s16le", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("ffmpeg mux: %v: %s", err, b)
	}
	return nil
}
