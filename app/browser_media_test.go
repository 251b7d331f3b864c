package app

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"proctor/store"
)

// TestBrowserReviewMedia drives the playback panel in headless Chromium on a session built from
// a real uploaded recording (the sample photos as a 27 s video, speech as its sound track): it
// plays the recording at a flag (the video's currentTime moves and its decoded frames grow),
// plays answer 2's audio with its key, steps the filmstrip with ←/→ and toggles the overlays
// with o, and seeks from the timeline. Screenshots of each step go to artifacts/browser/.
func TestBrowserReviewMedia(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not installed (scripts/setup.sh installs it)")
	}
	b := startBrowser(t)
	a := startApp(t, backend{name: "embedded"}, func(c *Config) { c.Recordings.Poll = 100 * time.Millisecond })
	rr := uploadReviewRecording(t, a, "org-media-ui")
	// The evidence phone started recording 2 s after the laptop: its player runs 2 s behind.
	const evidenceLagMs = 2000
	uploadEvidenceRecording(t, a, rr, rr.ingestKey, evidenceLagMs)
	ctx := context.Background()
	email, password := "reviewer@org-media-ui.example.com", "correct horse battery media"
	if _, err := a.Store.CreateUser(ctx, "org-media-ui", email, store.RoleReviewer, password, false); err != nil {
		t.Fatal(err)
	}
	// The answers' audio is stored once the worker analysed the recording's sound track.
	var answers struct {
		Answers []store.AnswerSegment `json:"answers"`
	}
	waitFor(t, func() bool {
		code, _, body := reviewGet(t, a, rr.reviewKey, "/v1/sessions/"+rr.sessionID+"/answers")
		if code != http.StatusOK || json.Unmarshal(body, &answers) != nil || len(answers.Answers) < 2 {
			return false
		}
		a2 := answers.Answers[1]
		code, _, _ = reviewGet(t, a, rr.reviewKey, fmt.Sprintf("/v1/sessions/%s/audio/peaks?from=%d&to=%d", rr.sessionID, a2.StartMs, a2.StartMs+3000))
		return code == http.StatusOK
	}, "answer 2 and its stored audio")
	var detail struct {
		Flags []store.Flag `json:"flags"`
	}
	if code, _, body := reviewGet(t, a, rr.reviewKey, "/v1/sessions/"+rr.sessionID); code != 200 || json.Unmarshal(body, &detail) != nil || len(detail.Flags) == 0 {
		t.Fatalf("session: %d %s", code, body)
	}
	flag := detail.Flags[0]
	for _, f := range detail.Flags {
		if f.Type == "FACE_ABSENT" {
			flag = f
		}
	}
	t.Logf("flag %s at %.1f s of the video; answer 2 %d–%d ms (%s)", flag.Type, float64(flag.StartMs-rr.videoStart.UnixMilli())/1000,
		answers.Answers[1].StartMs-rr.videoStart.UnixMilli(), answers.Answers[1].EndMs-rr.videoStart.UnixMilli(), answers.Answers[1].Status)

	num := func(js string) float64 {
		t.Helper()
		v, err := chromedp.Run(b.ctx, chromedp.Evaluate[float64](js))
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		return v
	}
	// until waits for a JavaScript condition (polled by chromedp; a step's limit is the hang detector).
	until := func(js string) step {
		return chromedp.Poll[chromedp.Void](js, chromedp.WithPollingInterval(100*time.Millisecond))
	}

	b.signIn(a.URL, email, password, false, `#qrows tr[data-id]`)
	b.run("open the session",
		chromedp.Navigate(a.URL+"/ui/#/session/"+rr.sessionID),
		b.visible(`#review-media`), until(`document.querySelector('#rv-video-main') !== null`),
		chromedp.ScrollIntoView(css(`#review-media`)),
		b.shot("media-01-session.png"))
	// Select the flag (it may not be the first open one) and check the player sits at its time.
	b.run("select the flag", b.click(fmt.Sprintf(`#flags tr[data-flag="%d"] td:nth-child(3)`, flag.ID)),
		b.visible(fmt.Sprintf(`#flags tr.sel[data-flag="%d"]`, flag.ID)),
		b.visible(`#rv-video-main`),
		until(`document.querySelector('#rv-video-main').readyState >= 2 && !document.querySelector('#rv-video-main').seeking`),
		chromedp.ScrollIntoView(css(`#review-media`)))
	atFlag := float64(flag.StartMs-rr.videoStart.UnixMilli()) / 1000
	if got := num(`document.querySelector('#rv-video-main').currentTime`); math.Abs(got-atFlag) > 0.3 {
		t.Fatalf("the player is at %.2f s, want the flag's %.2f s", got, atFlag)
	}

	// Play the recording at the flag: currentTime advances and frames are decoded.
	frames0 := num(`document.querySelector('#rv-video-main').getVideoPlaybackQuality().totalVideoFrames`)
	b.run("play the recording at the flag",
		b.key("p"),
		until(fmt.Sprintf(`document.querySelector('#rv-video-main').currentTime > %f`, atFlag+1.5)),
		until(fmt.Sprintf(`document.querySelector('#rv-video-main').getVideoPlaybackQuality().totalVideoFrames > %f`, frames0+2)),
		until(fmt.Sprintf(`Number(document.querySelector('#rv-time').dataset.t) > %d`, flag.StartMs+1000)),
		until(`!document.querySelector('#rv-video-evidence').paused`),
		b.shot("media-02-playing-at-flag.png"),
		b.key("p"),
		until(`document.querySelector('#rv-video-main').paused`))
	// Both cameras' players stay together: the evidence video runs evidenceLagMs behind.
	if d := num(`document.querySelector('#rv-video-main').currentTime - document.querySelector('#rv-video-evidence').currentTime`); math.Abs(d-evidenceLagMs/1000.0) > 0.4 {
		t.Errorf("main − evidence player = %.2f s, want %.2f s (synchronised by capture time)", d, evidenceLagMs/1000.0)
	}
	t.Logf("video at %.2f s after playing from %.2f s; %v frames decoded", num(`document.querySelector('#rv-video-main').currentTime`), atFlag,
		num(`document.querySelector('#rv-video-main').getVideoPlaybackQuality().totalVideoFrames`)-frames0)

	// Answer 2's audio with its key: the audio element plays answer 2's span, its waveform drawn.
	a2 := answers.Answers[1]
	b.run("play answer 2",
		b.visible(`#rv-wave-2[data-state="drawn"]`),
		chromedp.ScrollIntoView(css(`#rv-wave-2`)),
		b.key("2"),
		until(fmt.Sprintf(`(() => { const a = document.querySelector('#rv-audio'); return !a.paused && a.currentTime > 0.5 && a.src.includes('from=%d'); })()`, a2.StartMs)),
		b.shot("media-03-answer-2-audio.png"),
		b.key("p"),
		until(`document.querySelector('#rv-audio').paused`))

	// An audio flag loads the audio around it (5 s either side) into the player.
	silence := store.Flag{SessionID: rr.sessionID, Type: "LONG_SILENCE", Camera: "main", StartMs: rr.videoStart.UnixMilli() + 18000,
		EndMs: rr.videoStart.UnixMilli() + 24000, Severity: store.SeverityDetection, Confidence: 1, Status: store.StatusOpen, ModelVersion: "vad"}
	if err := a.Store.DB.Create(&silence).Error; err != nil {
		t.Fatal(err)
	}
	b.run("an audio flag", chromedp.Reload(), b.visible(fmt.Sprintf(`#flags tr[data-flag="%d"]`, silence.ID)),
		b.click(fmt.Sprintf(`#flags tr[data-flag="%d"] td:nth-child(3)`, silence.ID)),
		until(fmt.Sprintf(`document.querySelector('#rv-audio').src.includes('from=%d&to=%d')`, silence.StartMs-5000, silence.EndMs+5000)),
		chromedp.ScrollIntoView(css(`#review-media`)), b.shot("media-03b-audio-flag.png"))

	// The filmstrip with the keyboard: → twice moves two analysed frames on, ← one back; o
	// toggles the overlays on the frame shown.
	b.run("back to the flag", b.click(fmt.Sprintf(`#flags tr[data-flag="%d"] td:nth-child(3)`, flag.ID)))
	b.run("select another flag and back", b.key("j"), b.key("k"), b.visible(fmt.Sprintf(`#flags tr.sel[data-flag="%d"]`, flag.ID)),
		until(`document.querySelector('#rv-strip .rv-col.sel') !== null`))
	col0 := num(`Number(document.querySelector('#rv-strip .rv-col.sel').dataset.i)`)
	t0 := num(`Number(document.querySelector('#rv-time').dataset.t)`)
	b.run("step the filmstrip",
		b.key(kb.ArrowRight), b.key(kb.ArrowRight),
		until(fmt.Sprintf(`Number(document.querySelector('#rv-strip .rv-col.sel').dataset.i) === %d`, int(col0)+2)),
		chromedp.ScrollIntoView(css(`#review-media`)),
		b.shot("media-04-filmstrip-stepped.png"),
		b.key(kb.ArrowLeft),
		until(fmt.Sprintf(`Number(document.querySelector('#rv-strip .rv-col.sel').dataset.i) === %d`, int(col0)+1)))
	if t1 := num(`Number(document.querySelector('#rv-time').dataset.t)`); t1 < t0+500 || t1 > t0+2500 {
		t.Errorf("one frame on is %.0f ms after %.0f, want about a second", t1, t0)
	}
	if want := t0 + 1000; math.Abs(num(`document.querySelector('#rv-video-main').currentTime`)-(want-float64(rr.videoStart.UnixMilli()))/1000) > 0.6 {
		t.Errorf("stepping the filmstrip did not move the player")
	}
	ovl := num(`document.querySelectorAll('#review-media .rv-ovl').length`)
	b.run("overlays off with o", b.key("o"), until(`document.querySelectorAll('#review-media .rv-ovl').length === 0`),
		b.shot("media-05-overlays-off.png"), b.key("o"))
	t.Logf("overlays shown before o: %.0f", ovl)

	// Seek from the timeline: a click on the phases lane where the video is at 20 s moves the
	// review time there, and the player and the filmstrip with it.
	b.run("scroll to the timeline", chromedp.ScrollIntoView(css(`#timeline`)))
	type rect struct{ X, Y, W, Lo, Hi float64 }
	lane, err := chromedp.Run(b.ctx, chromedp.Evaluate[rect](`(() => { const r = document.querySelector('#timeline .lane').getBoundingClientRect(); return {X: r.left, Y: r.top + r.height / 2, W: r.width, Lo: S.rv.tl.lo, Hi: S.rv.tl.hi}; })()`))
	if err != nil {
		t.Fatal(err)
	}
	target := float64(rr.videoStart.UnixMilli() + 20000)
	x := lane.X + lane.W*(target-lane.Lo)/(lane.Hi-lane.Lo)
	perPixel := (lane.Hi - lane.Lo) / lane.W
	before := num(`Number(document.querySelector('#rv-time').dataset.t)`)
	b.run("seek from the timeline",
		chromedp.MouseClickXY(x, lane.Y),
		until(fmt.Sprintf(`Number(document.querySelector('#rv-time').dataset.t) !== %f`, before)),
		until(`document.querySelector('#rv-strip .rv-col.sel') !== null && !document.querySelector('#rv-video-main').seeking`),
		b.fullShot("media-06-timeline-seek.png"))
	after := num(`Number(document.querySelector('#rv-time').dataset.t)`)
	if math.Abs(after-target) > 2*perPixel+1 {
		t.Errorf("the timeline click at %.0f moved the review time to %.0f (%.0f ms per pixel)", target, after, perPixel)
	}
	if v := num(`document.querySelector('#rv-video-main').currentTime`); math.Abs(v-(after-float64(rr.videoStart.UnixMilli()))/1000) > 0.3 {
		t.Errorf("after the timeline seek the player is at %.2f s, want %.2f s", v, (after-float64(rr.videoStart.UnixMilli()))/1000)
	}
	if col := num(`Number(document.querySelector('#rv-strip .rv-col.sel').dataset.t)`); math.Abs(col-after) > 1000 {
		t.Errorf("after the timeline seek the filmstrip is at %.0f, want about %.0f", col, after)
	}
	t.Logf("timeline click (%.0f ms per pixel) moved the review time from %.0f to %.0f (target %.0f)", perPixel, before, after, target)
}
