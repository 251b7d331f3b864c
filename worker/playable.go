package worker

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"

	"proctor/analyzers"
	"proctor/store"
)

// makePlayable writes the browser-playable copy of a recording (store.PlayablePath): MP4 with
// H.264 video and AAC audio, the index first (+faststart) so a player can seek by HTTP range
// requests without reading the whole file. H.264 is copied as it is (a phone's recording
// usually is H.264 already: a remux takes seconds); anything else is encoded with libx264.
// Position 0 of the copy is the first video frame, as in the frames' capture times
// (started_at + position), so the page seeks to a flag at flag time − started_at.
//
// A copy that cannot be made is a note on the recording, never a failure: its frames and
// audio are analysed, and the filmstrip with the stored audio is the reviewer's playback.
func (p *RecordingProcessor) makePlayable(ctx context.Context, rec *store.Recording, src string,
	info analyzers.VideoInfo, log *slog.Logger) {
	note := func(msg string) {
		if rec.Note != "" {
			rec.Note += "; "
		}
		rec.Note += msg
	}
	ffmpeg := p.cfg.Tools.FFmpegPath()
	if ffmpeg == "" {
		note("no playable copy: ffmpeg is not installed on the worker")
		return
	}
	dst := store.PlayablePath(p.cfg.Dir, rec.ID)
	if _, err := os.Stat(dst); err == nil {
		return // made before a crash, or by a previous processing of the same file
	}
	in, err := analyzers.FileURL(src)
	if err != nil {
		note("no playable copy: " + err.Error())
		return
	}
	tmp := dst + ".tmp"
	video := []string{"-c:v", "copy"}
	if info.Codec != "h264" {
		// veryfast/CRF 26: a reviewer's copy, ~4× real time per core at 720p; even sizes for 4:2:0.
		video = []string{"-c:v", "libx264", "-preset", "veryfast", "-crf", "26", "-pix_fmt", "yuv420p",
			"-vf", "scale=trunc(iw/2)*2:trunc(ih/2)*2"}
	}
	args := append([]string{"-nostdin", "-v", "error", "-y", "-i", in, "-map", "0:v:0", "-map", "0:a:0?"}, video...)
	args = append(args, "-c:a", "aac", "-b:a", "64k", "-ac", "1", "-movflags", "+faststart",
		"-avoid_negative_ts", "make_zero", "-f", "mp4", "file:"+tmp)
	cmd := exec.CommandContext(ctx, ffmpeg, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		_ = os.Remove(tmp)
		if ctx.Err() != nil {
			return
		}
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 300 {
			msg = msg[len(msg)-300:]
		}
		log.Warn("playable copy failed", "err", err, "ffmpeg", msg)
		note(fmt.Sprintf("no playable copy: ffmpeg failed (%v: %s)", err, msg))
		return
	}
	if err := os.Rename(tmp, dst); err != nil {
		_ = os.Remove(tmp)
		note("no playable copy: " + err.Error())
		return
	}
	log.Debug("playable copy made", "path", dst)
}
