package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"proctor/analyzers"
	"proctor/internal/analyze"
	"proctor/internal/scenario"
)

// TestAnalyzeVideo runs `proctor analyze video` on the scenario's main camera recorded as a video:
// the flags come out as JSON lines with the video's own times, the progress line goes to stderr.
func TestAnalyzeVideo(t *testing.T) {
	demo, err := scenario.DemoDir()
	if err != nil {
		t.Skipf("sample photos unavailable (%v): run scripts/setup.sh", err)
	}
	set, err := analyzers.NewSet(analyzers.Config{})
	if err != nil {
		t.Skipf("models unavailable (%v): run scripts/setup.sh", err)
	}
	frames, err := scenario.Build(context.Background(), set, demo)
	set.Close()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	video := filepath.Join(dir, "main.avi")
	if err := scenario.WriteVideo(video, scenario.RecordingTimeline(frames), 2); err != nil {
		t.Fatal(err)
	}

	var stdout, stderr bytes.Buffer
	const start = 1_790_000_000_000
	if err := runAnalyzeVideo(context.Background(), []string{"--progress", "--start", "1790000000000", video}, &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	t.Logf("stderr:\n%s", strings.ReplaceAll(stderr.String(), "\r", "\n"))
	if !strings.Contains(stderr.String(), "100% 27/27 frames") {
		t.Errorf("no final progress line on stderr: %q", stderr.String())
	}
	want := map[string][2]int64{"FACE_ABSENT": {10000, 17000}, "MULTIPLE_FACES": {18000, 22000}}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	got := map[string]analyze.VideoFlag{}
	for _, l := range lines {
		var f analyze.VideoFlag
		if err := json.Unmarshal([]byte(l), &f); err != nil {
			t.Fatalf("stdout line %q is not JSON: %v", l, err)
		}
		got[f.Type] = f
	}
	for typ, span := range want {
		f, ok := got[typ]
		if !ok {
			t.Errorf("no %s in %s", typ, stdout.String())
			continue
		}
		if f.StartOffsetMs != span[0] || f.EndOffsetMs != span[1] || f.StartMs != start+span[0] || f.EndMs != start+span[1] {
			t.Errorf("%s: %+v, want offsets %v from %d", typ, f, span, int64(start))
		}
	}

	// Table format; no progress line when stderr is not a terminal.
	stdout.Reset()
	stderr.Reset()
	if err := runAnalyzeVideo(context.Background(), []string{"--format", "table", "--fps", "2", video}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), "FACE_ABSENT") || !strings.Contains(stdout.String(), "0:10.000") || strings.Contains(stderr.String(), "\r") {
		t.Errorf("table:\n%s\nstderr: %q", stdout.String(), stderr.String())
	}

	// A file that is not a video: an error that says so.
	junk := filepath.Join(dir, "notes.mp4")
	os.WriteFile(junk, []byte("not a video, just notes"), 0o644)
	err = runAnalyzeVideo(context.Background(), []string{junk}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "not a decodable video") {
		t.Errorf("junk file: %v", err)
	}
}
