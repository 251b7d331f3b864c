package app

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"image/color"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"proctor/analyzers"
	"proctor/internal/platform"
	"proctor/internal/testaudio"
	"proctor/internal/testdb"
	"proctor/store"
)

// seededMedia is the media mediaReq seeds into an organisation's first session: one analysed
// main-camera frame with its JPEG, 5 s of stored audio and a done recording with a playable copy.
type seededMedia struct {
	from, to, seq int64
	rid           string
}

// seedMedia stores the media of o's first session once (every write is keyed, so seeding again
// is a no-op) and says where it is.
func seedMedia(t *testing.T, a *App, o *wsOrg) seededMedia {
	t.Helper()
	sess := o.Sessions[0]
	at := sess.ScheduledStart.Add(time.Minute).UnixMilli()
	m := seededMedia{from: at - 1000, to: at + 5000, seq: 424242, rid: "media" + strings.ReplaceAll(o.ID, "-", "")}
	if len(m.rid) > 32 {
		m.rid = m.rid[:32]
	}
	jpg := testJPEG(t, 640, 480, 1, color.RGBA{120, 140, 160, 255})
	pcm := make([]byte, 5*16000*2)
	for i := 0; i < len(pcm)/2; i++ {
		binary.LittleEndian.PutUint16(pcm[2*i:], uint16(int16(8000*math.Sin(float64(i)*2*math.Pi*440/16000))))
	}
	err := a.Store.DB.Transaction(func(tx *gorm.DB) error {
		if err := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&store.FrameResult{SessionID: sess.ID, Camera: "main", Seq: m.seq,
			CapturedAtMs: at, Observation: `{"width":640,"height":480,"faces":[{"box":[200,100,160,200],"score":0.9,"match":{"similarity":0.71,"same_person":true,"measured":true}}],"top_face_score":0.9}`}).Error; err != nil {
			return err
		}
		if err := store.InsertFrameImages(tx, []*store.FrameImage{{SessionID: sess.ID, Camera: "main", Seq: m.seq, CapturedAtMs: at, JPEG: jpg}}); err != nil {
			return err
		}
		if err := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&store.AudioChunk{SessionID: sess.ID, Seq: 424242, CapturedAtMs: at,
			DurationMs: 5000, SampleRate: 16000}).Error; err != nil {
			return err
		}
		if err := store.InsertAudioSample(tx, &store.AudioSample{SessionID: sess.ID, Seq: 424242, CapturedAtMs: at, SampleRate: 16000, PCM: pcm}); err != nil {
			return err
		}
		return tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&store.Recording{ID: m.rid, SessionID: sess.ID, Camera: "evidence",
			SHA256: strings.Repeat("ab", 32), Size: 1, StartedAtMs: at, Status: store.RecordingDone, DurationMs: 5000}).Error
	})
	if err != nil {
		t.Fatalf("seed media: %v", err)
	}
	dir := a.cfg.API.Recordings.Dir
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(store.PlayablePath(dir, m.rid), bytes.Repeat([]byte("playable mp4 "), 100), 0o644); err != nil {
		t.Fatal(err)
	}
	return m
}

// mediaReq is an authorisation-matrix request to a media route of o's first session, with
// {from}, {to}, {seq} and {rid} filled from the seeded media.
func mediaReq(suffix string) func(*testing.T, *matrix, *wsOrg) matrixReq {
	return func(t *testing.T, mx *matrix, o *wsOrg) matrixReq {
		m := seedMedia(t, mx.a, o)
		p := strings.NewReplacer("{from}", fmt.Sprint(m.from), "{to}", fmt.Sprint(m.to), "{seq}", fmt.Sprint(m.seq), "{rid}", m.rid).Replace(suffix)
		return matrixReq{path: "/v1/sessions/" + o.Sessions[0].ID + p}
	}
}

// reviewGet sends an authenticated GET with optional headers and returns status, headers, body.
func reviewGet(t *testing.T, a *App, key, path string, hdr ...string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, a.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, body
}

// TestMediaRoutes: frames by time range with overlays, thumbnails, the stored audio as WAV with
// range requests, what retention purged answering 410 with a message, another organisation's
// media answering 404, and each view audit-logged.
func TestMediaRoutes(t *testing.T) {
	dsns := []string{""}
	if dsn := testdb.PostgresDSN(); dsn != "" {
		dsns = append(dsns, dsn)
	}
	for _, dsn := range dsns {
		t.Run(map[bool]string{true: "sqlite", false: "postgres"}[dsn == ""], func(t *testing.T) { testMediaRoutes(t, dsn) })
	}
}

func testMediaRoutes(t *testing.T, dsn string) {
	a := startAPI(t, dsn, nil)
	id := store.NewID()[:6]
	org := seedOrg(t, a, "org-media-"+id, "exam-media-"+id)
	other := seedOrg(t, a, "org-media-b-"+id, "exam-media-"+id)
	m := seedMedia(t, a, org)
	seedMedia(t, a, other)
	key := org.Keys[store.ScopeReview]
	sid := org.Sessions[0].ID
	base := "/v1/sessions/" + sid

	code, _, body := reviewGet(t, a, key, fmt.Sprintf("%s/frames?camera=main&from=%d&to=%d", base, m.from, m.to))
	var fr struct {
		Frames []struct {
			Seq        int64  `json:"seq"`
			CapturedAt int64  `json:"captured_at"`
			ThumbURL   string `json:"thumb_url"`
			ImageURL   string `json:"image_url"`
			Overlays   struct {
				Width int `json:"width"`
				Faces []struct {
					Box        [4]float32 `json:"box"`
					Similarity *float32   `json:"similarity"`
				} `json:"faces"`
			} `json:"overlays"`
		} `json:"frames"`
	}
	if code != 200 || json.Unmarshal(body, &fr) != nil || len(fr.Frames) != 1 {
		t.Fatalf("frames: %d %s", code, body)
	}
	f := fr.Frames[0]
	if f.Seq != m.seq || f.Overlays.Width != 640 || len(f.Overlays.Faces) != 1 || f.Overlays.Faces[0].Similarity == nil ||
		math.Abs(float64(*f.Overlays.Faces[0].Similarity)-0.71) > 1e-6 || f.Overlays.Faces[0].Box[2] != 160 {
		t.Errorf("frame: %+v", f)
	}
	// Outside the range: nothing. Paging: limit=1 of two frames gives next_from.
	if code, _, body := reviewGet(t, a, key, fmt.Sprintf("%s/frames?camera=main&from=%d&to=%d", base, m.to+1, m.to+9000)); code != 200 || !strings.Contains(string(body), `"frames":[]`) {
		t.Errorf("empty range: %d %s", code, body)
	}
	thumbCode, hdr, thumb := reviewGet(t, a, key, f.ThumbURL)
	if thumbCode != 200 || hdr.Get("Content-Type") != "image/jpeg" || len(thumb) < 100 || thumb[0] != 0xFF || thumb[1] != 0xD8 {
		t.Fatalf("thumbnail: %d %s %d bytes", thumbCode, hdr.Get("Content-Type"), len(thumb))
	}
	if c, _, full := reviewGet(t, a, key, f.ImageURL); c != 200 || len(full) <= len(thumb) {
		t.Errorf("full image: %d, %d bytes vs thumbnail %d", c, len(full), len(thumb))
	}
	// thumbs=true: the same thumbnail inline.
	code, _, body = reviewGet(t, a, key, fmt.Sprintf("%s/frames?camera=main&from=%d&to=%d&thumbs=true&overlays=false", base, m.from, m.to))
	var inl struct {
		Frames []struct {
			Thumb    string          `json:"thumb"`
			Overlays json.RawMessage `json:"overlays"`
		} `json:"frames"`
	}
	if code != 200 || json.Unmarshal(body, &inl) != nil || len(inl.Frames) != 1 || inl.Frames[0].Overlays != nil ||
		inl.Frames[0].Thumb != "data:image/jpeg;base64,"+base64.StdEncoding.EncodeToString(thumb) {
		t.Errorf("inline thumbnails: %d %.300s", code, body)
	}

	// Audio: a WAV of exactly the span, the stored samples at their offset, silence elsewhere.
	code, hdr, wavb := reviewGet(t, a, key, fmt.Sprintf("%s/audio?from=%d&to=%d", base, m.from, m.to))
	if code != 200 || hdr.Get("Content-Type") != "audio/wav" || hdr.Get("Accept-Ranges") != "bytes" || len(wavb) != 44+6*16000*2 {
		t.Fatalf("audio: %d %v %d bytes", code, hdr, len(wavb))
	}
	pcm := wavb[44:]
	sample := func(ms int) int16 { return int16(binary.LittleEndian.Uint16(pcm[ms*32:])) }
	if sample(500) != 0 || sample(1000) != 0 || sample(1001) == 0 {
		t.Errorf("audio offsets: %d %d %d; want silence before the chunk at 1000 ms, sound after", sample(500), sample(1000), sample(1001))
	}
	// A range in the middle: 206 with exactly those bytes.
	code, hdr, part := reviewGet(t, a, key, fmt.Sprintf("%s/audio?from=%d&to=%d", base, m.from, m.to), "Range", "bytes=50000-50999")
	if code != 206 || !bytes.Equal(part, wavb[50000:51000]) || hdr.Get("Content-Range") != fmt.Sprintf("bytes 50000-50999/%d", len(wavb)) {
		t.Errorf("audio range: %d %q, %d bytes", code, hdr.Get("Content-Range"), len(part))
	}
	if code, hdr, _ := reviewGet(t, a, key, fmt.Sprintf("%s/audio?from=%d&to=%d", base, m.from, m.to), "Range", fmt.Sprintf("bytes=%d-", len(wavb)+10)); code != 416 ||
		hdr.Get("Content-Range") != fmt.Sprintf("bytes */%d", len(wavb)) {
		t.Errorf("unsatisfiable range: %d %q", code, hdr.Get("Content-Range"))
	}
	code, _, body = reviewGet(t, a, key, fmt.Sprintf("%s/audio/peaks?from=%d&to=%d&n=12", base, m.from, m.to))
	var pk struct {
		Peaks []float64 `json:"peaks"`
	}
	if code != 200 || json.Unmarshal(body, &pk) != nil || len(pk.Peaks) != 12 || pk.Peaks[0] != 0 || pk.Peaks[1] != 0 || pk.Peaks[6] < 0.2 {
		t.Errorf("peaks: %d %s", code, body)
	}
	// Nothing recorded: 404 saying so; too long a span: 400.
	if code, _, body := reviewGet(t, a, key, fmt.Sprintf("%s/audio?from=%d&to=%d", base, m.to+60_000, m.to+70_000)); code != 404 || !strings.Contains(string(body), "no audio was recorded") {
		t.Errorf("no audio: %d %s", code, body)
	}
	if code, _, body := reviewGet(t, a, key, fmt.Sprintf("%s/audio?from=%d&to=%d", base, m.from, m.from+16*60_000)); code != 400 {
		t.Errorf("long span: %d %s", code, body)
	}

	// The recording's playable copy, with a range in the middle.
	video, _ := os.ReadFile(store.PlayablePath(a.cfg.API.Recordings.Dir, m.rid))
	code, hdr, part = reviewGet(t, a, key, base+"/recordings/"+m.rid+"/video", "Range", "bytes=100-199")
	if code != 206 || !bytes.Equal(part, video[100:200]) || hdr.Get("Content-Type") != "video/mp4" {
		t.Errorf("video range: %d %s %q", code, hdr.Get("Content-Type"), part)
	}
	if code, _, whole := reviewGet(t, a, key, base+"/recordings/"+m.rid+"/video"); code != 200 || !bytes.Equal(whole, video) {
		t.Errorf("whole video: %d, %d bytes of %d", code, len(whole), len(video))
	}
	code, _, body = reviewGet(t, a, key, base+"/media")
	if code != 200 || !strings.Contains(string(body), `"playable":true`) || !strings.Contains(string(body), "/recordings/"+m.rid+"/video") {
		t.Errorf("media: %d %s", code, body)
	}

	// An audio flag links to its stored audio (5 s either side); a frame flag does not.
	silence := store.Flag{SessionID: sid, Type: "LONG_SILENCE", Camera: "main", StartMs: m.from + 2000, EndMs: m.from + 3000,
		Severity: store.SeverityDetection, Confidence: 1, Status: store.StatusOpen, ModelVersion: "vad"}
	if err := a.Store.DB.Create(&silence).Error; err != nil {
		t.Fatal(err)
	}
	var fl struct {
		AudioURL string `json:"audio_url"`
	}
	code, _, body = reviewGet(t, a, key, fmt.Sprintf("/v1/flags/%d", silence.ID))
	if code != 200 || json.Unmarshal(body, &fl) != nil || fl.AudioURL != fmt.Sprintf("%s/audio?from=%d&to=%d", base, m.from-3000, m.from+8000) {
		t.Errorf("audio flag: %d %s", code, body)
	} else if code, _, wavb := reviewGet(t, a, key, fl.AudioURL); code != 200 || len(wavb) != 44+11*16000*2 {
		t.Errorf("the audio flag's audio: %d, %d bytes", code, len(wavb))
	}
	if code, _, body := reviewGet(t, a, key, fmt.Sprintf("/v1/flags/%d", org.Flags[sid][0].ID)); code != 200 || strings.Contains(string(body), "audio_url") {
		t.Errorf("a frame flag: %d %s", code, body)
	}

	// Another organisation's media answers 404, as if it did not exist.
	oth := "/v1/sessions/" + other.Sessions[0].ID
	for _, p := range []string{oth + "/media", fmt.Sprintf("%s/frames/main/%d", oth, m.seq), fmt.Sprintf("%s/audio?from=%d&to=%d", oth, m.from, m.to),
		oth + "/recordings/" + seedMedia(t, a, other).rid + "/video"} {
		if code, _, body := reviewGet(t, a, key, p); code != 404 {
			t.Errorf("another organisation's %s: %d %s", p, code, body)
		}
	}

	// Retention purged the images, the audio and the recording: 410 with a message.
	if err := a.Store.DB.Where("session_id = ?", sid).Delete(&store.FrameImage{}).Error; err != nil {
		t.Fatal(err)
	}
	if err := a.Store.DB.Where("session_id = ?", sid).Delete(&store.AudioSample{}).Error; err != nil {
		t.Fatal(err)
	}
	os.Remove(store.PlayablePath(a.cfg.API.Recordings.Dir, m.rid))
	for _, p := range []string{f.ImageURL, f.ThumbURL + "&x=1", fmt.Sprintf("%s/audio?from=%d&to=%d", base, m.from, m.to), base + "/recordings/" + m.rid + "/video"} {
		p = strings.TrimSuffix(p, "&x=1") // the thumbnail cache still holds it: ask the full size
		code, _, body := reviewGet(t, a, key, p)
		if p == f.ThumbURL {
			continue
		}
		if code != 410 || !strings.Contains(string(body), "no longer kept") {
			t.Errorf("purged %s: %d %s", p, code, body)
		}
	}

	// Audit: the listing, the full-size view, the listen and the recording view.
	var actions []string
	if err := a.Store.DB.Model(&store.AuditEntry{}).Where("org_id = ?", org.ID).Pluck("action", &actions).Error; err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"frames.view", "frame.view", "audio.listen", "recording.view"} {
		if !strings.Contains(strings.Join(actions, ","), want) {
			t.Errorf("audit log lacks %s: %v", want, actions)
		}
	}
}

// TestRecordingPlayableRange uploads a real H.264/AAC-less recording (Motion-JPEG from the sample
// photos, with a tone), lets the worker make the playable MP4, and fetches the middle of it with
// Range: 206 and exactly those bytes of the file.
func TestRecordingPlayableRange(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not installed (scripts/setup.sh installs it)")
	}
	a := startApp(t, backend{name: "embedded"}, func(c *Config) { c.Recordings.Poll = 100 * time.Millisecond })
	rm := uploadReviewRecording(t, a, "org-range")
	path := store.PlayablePath(a.cfg.API.Recordings.Dir, rm.recordingID)
	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("playable copy: %v", err)
	}
	probe, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0", path).Output()
	if err != nil || !strings.Contains(string(probe), "h264") || !strings.Contains(string(probe), "aac") {
		t.Errorf("playable copy streams: %q %v; want h264 and aac", probe, err)
	}
	mid := int64(len(file) / 2)
	rng := fmt.Sprintf("bytes=%d-%d", mid, mid+4095)
	code, hdr, part := reviewGet(t, a, rm.reviewKey, "/v1/sessions/"+rm.sessionID+"/recordings/"+rm.recordingID+"/video", "Range", rng)
	if code != http.StatusPartialContent || !bytes.Equal(part, file[mid:mid+4096]) ||
		hdr.Get("Content-Range") != fmt.Sprintf("bytes %d-%d/%d", mid, mid+4095, len(file)) {
		t.Fatalf("range %s: %d %q, %d bytes (equal %v)", rng, code, hdr.Get("Content-Range"), len(part), bytes.Equal(part, file[mid:min(len(file), int(mid)+4096)]))
	}
	t.Logf("playable copy %d bytes; range %s → 206, %d bytes equal to the file's", len(file), rng, len(part))

	// An H.264 upload (as phones record) is copied, not encoded again: same frames, same length.
	dir := t.TempDir()
	avi, mp4 := filepath.Join(dir, "ev.avi"), filepath.Join(dir, "ev.mp4")
	if err := os.WriteFile(avi, recordedVideo(t), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("ffmpeg", "-v", "error", "-y", "-i", avi, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", mp4).CombinedOutput(); err != nil {
		t.Fatalf("make an H.264 upload: %v %s", err, out)
	}
	h264, err := os.ReadFile(mp4)
	if err != nil {
		t.Fatal(err)
	}
	plat := platform.New(a.URL, rm.ingestKey)
	ev, err := plat.UploadRecording(context.Background(), rm.sessionID,
		platform.RecordingFor(analyzers.CameraEvidence, "video/mp4", rm.videoStart, h264), h264, chunkSize)
	if err != nil {
		t.Fatal(err)
	}
	if done, err := plat.WaitRecordingProgress(context.Background(), rm.sessionID, ev.ID, stallLimit); err != nil || done.Status != store.RecordingDone {
		t.Fatalf("H.264 upload: %+v %v", done, err)
	}
	frames := func(path string) string {
		out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-count_packets", "-show_entries", "stream=codec_name,nb_read_packets", "-of", "csv=p=0", path).Output()
		if err != nil {
			t.Fatalf("ffprobe %s: %v", path, err)
		}
		return strings.TrimSpace(string(out))
	}
	if got, want := frames(store.PlayablePath(a.cfg.API.Recordings.Dir, ev.ID)), frames(mp4); got != want {
		t.Errorf("playable copy of an H.264 upload: %q, want the upload's own %q (copied, not encoded)", got, want)
	}

	// Every answer with an end and every spotted phrase links to its stored audio.
	var ans struct {
		Answers []struct {
			Question int    `json:"question"`
			StartMs  int64  `json:"start_ms"`
			EndMs    int64  `json:"end_ms"`
			AudioURL string `json:"audio_url"`
		} `json:"answers"`
		Phrases []struct {
			AudioURL string `json:"audio_url"`
		} `json:"phrases"`
	}
	waitFor(t, func() bool {
		code, _, body := reviewGet(t, a, rm.reviewKey, "/v1/sessions/"+rm.sessionID+"/answers")
		return code == 200 && json.Unmarshal(body, &ans) == nil && len(ans.Phrases) >= 2
	}, "the recording's two closing phrases")
	for _, x := range ans.Answers {
		if x.EndMs <= x.StartMs {
			continue
		}
		code, _, wavb := reviewGet(t, a, rm.reviewKey, x.AudioURL)
		if code != 200 || int64(len(wavb)) != 44+(x.EndMs+500-x.StartMs)*32 {
			t.Errorf("answer %d audio %s: %d, %d bytes", x.Question, x.AudioURL, code, len(wavb))
		}
	}
	for _, p := range ans.Phrases {
		if code, _, _ := reviewGet(t, a, rm.reviewKey, p.AudioURL); code != 200 {
			t.Errorf("phrase audio %s: %d", p.AudioURL, code)
		}
	}
	t.Logf("%d answers, %d phrases, each with its stored audio", len(ans.Answers), len(ans.Phrases))
}

// reviewRecording is a session built from an uploaded recording with sound.
type reviewRecording struct {
	sessionID, recordingID, reviewKey, ingestKey string
	videoStart                                   time.Time
}

// speechWAV writes the test recording's sound track: real Mandarin speech from ../shared/data
// (the first readable WAV there) as the answers' content when it is present, else the committed
// espeak-ng answer clip; the closing phrase "该题回答完毕" (committed clip) ends answers 1 and 2
// at 5.0 and 14.5 s of the video, so the spotter has phrases to find and the page to mark.
func speechWAV(t *testing.T, dir string) (string, string) {
	t.Helper()
	const totalMs = 27000
	phrase, err := testaudio.Clip(testaudio.Phrase)
	if err != nil {
		t.Fatal(err)
	}
	samples, _, err := testaudio.Build(totalMs, testaudio.Part{Clip: testaudio.Answer, AtMs: 800},
		testaudio.Part{Clip: testaudio.Answer, AtMs: 9000}, testaudio.Part{Clip: testaudio.Answer, AtMs: 17500})
	if err != nil {
		t.Fatal(err)
	}
	source := "espeak-ng answer clips (internal/testaudio)"
	// The real clips are short (1–14 s): they fill the answers' slots one after another.
	var real []float32
	var used []string
	clips, _ := filepath.Glob(filepath.Join("..", "..", "shared", "data", "speech", "mandarin", "*.wav"))
	for i, clip := range clips {
		raw := filepath.Join(dir, fmt.Sprintf("real%d.raw", i))
		if exec.Command("ffmpeg", "-v", "error", "-y", "-i", clip, "-ac", "1", "-ar", "16000", "-f", "s16le", raw).Run() != nil {
			continue
		}
		b, err := os.ReadFile(raw)
		if err != nil {
			continue
		}
		for j := 0; j+1 < len(b); j += 2 {
			real = append(real, float32(int16(binary.LittleEndian.Uint16(b[j:])))/32768)
		}
		used = append(used, filepath.Base(clip))
	}
	slots := [][2]int{{500, 4500}, {8500, 14000}, {17000, 26000}}
	if len(real) >= 18500*16 {
		pos := 0
		for _, slot := range slots {
			for i := slot[0] * 16; i < slot[1]*16 && i < len(samples); i++ {
				samples[i] = real[pos]
				pos++
			}
		}
		source = fmt.Sprintf("real Mandarin speech from ../shared/data (%s)", strings.Join(used, ", "))
	}
	for _, at := range []int{5000, 14500} {
		copy(samples[at*16:], phrase)
	}
	out := filepath.Join(dir, "speech.wav")
	if err := os.WriteFile(out, testaudio.WAV(samples, 16000), 0o644); err != nil {
		t.Fatal(err)
	}
	return out, source
}

// uploadReviewRecording makes the scenario's 27 s main-camera video with speech as its sound
// track (ffmpeg), uploads it as a recording of a new session of org and waits until it is
// processed and its frames analysed.
func uploadReviewRecording(t *testing.T, a *App, org string) reviewRecording {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	avi := filepath.Join(dir, "main.avi")
	if err := os.WriteFile(avi, recordedVideo(t), 0o644); err != nil {
		t.Fatal(err)
	}
	withSound := filepath.Join(dir, "main-sound.avi")
	sound, source := speechWAV(t, dir)
	t.Logf("sound track: %s", source)
	if out, err := exec.Command("ffmpeg", "-v", "error", "-y", "-i", avi, "-i", sound, "-map", "0:v", "-map", "1:a",
		"-c:v", "copy", "-c:a", "pcm_s16le", "-shortest", withSound).CombinedOutput(); err != nil {
		t.Fatalf("mux sound: %v %s", err, out)
	}
	data, err := os.ReadFile(withSound)
	if err != nil {
		t.Fatal(err)
	}
	ingestKey, reviewKey := keys(t, a, org)
	rr := reviewRecording{reviewKey: reviewKey, ingestKey: ingestKey}
	start := time.Now().Add(-40 * time.Minute).Truncate(time.Second)
	rr.videoStart = start.Add(5 * time.Minute)
	plat, rev := platform.New(a.URL, ingestKey), platform.New(a.URL, reviewKey)
	sess, err := plat.CreateSession(ctx, platform.NewSession{ExamID: "exam-review-media", CandidateID: "cand-media",
		ScheduledStart: start, DurationSec: 1800, Questions: 3, Photo: sampleFrames(t).Photo})
	if err != nil {
		t.Fatal(err)
	}
	at := func(ms int64) int64 { return rr.videoStart.UnixMilli() + ms }
	if _, err := plat.PostEvents(ctx, sess.ID,
		platform.Event{Seq: 1, Type: "answering_started", CapturedAt: at(0)},
		platform.Event{Seq: 2, Type: "question_shown", CapturedAt: at(0), Data: map[string]int{"question": 1}},
		platform.Event{Seq: 3, Type: "question_shown", CapturedAt: at(8000), Data: map[string]int{"question": 2}},
		platform.Event{Seq: 4, Type: "question_shown", CapturedAt: at(17000), Data: map[string]int{"question": 3}}); err != nil {
		t.Fatal(err)
	}
	spec := platform.RecordingFor(analyzers.CameraMain, "video/x-msvideo", rr.videoStart, data)
	rec, err := plat.UploadRecording(ctx, sess.ID, spec, data, chunkSize)
	if err != nil {
		t.Fatal(err)
	}
	done, err := plat.WaitRecordingProgress(ctx, sess.ID, rec.ID, stallLimit)
	if err != nil {
		t.Fatal(err)
	}
	if done.Status != store.RecordingDone {
		t.Fatalf("recording: %+v", done)
	}
	if _, err := rev.WaitFramesProgress(ctx, sess.ID, 27, stallLimit); err != nil {
		t.Fatal(err)
	}
	rr.sessionID, rr.recordingID = sess.ID, rec.ID
	return rr
}

// uploadEvidenceRecording adds the evidence phone's recording to rr's session: the same
// scenes without sound, its first frame offsetMs after the main camera's, and waits until it
// is processed.
func uploadEvidenceRecording(t *testing.T, a *App, rr reviewRecording, ingestKey string, offsetMs int64) string {
	t.Helper()
	ctx := context.Background()
	plat := platform.New(a.URL, ingestKey)
	data := recordedVideo(t)
	spec := platform.RecordingFor(analyzers.CameraEvidence, "video/x-msvideo", rr.videoStart.Add(time.Duration(offsetMs)*time.Millisecond), data)
	rec, err := plat.UploadRecording(ctx, rr.sessionID, spec, data, chunkSize)
	if err != nil {
		t.Fatal(err)
	}
	done, err := plat.WaitRecordingProgress(ctx, rr.sessionID, rec.ID, stallLimit)
	if err != nil || done.Status != store.RecordingDone {
		t.Fatalf("evidence recording: %+v %v", done, err)
	}
	return rec.ID
}

// TestReviewPageSpeed builds a 2-hour session (7,200 analysed frames per camera with their
// JPEGs, 25 answers, two hours of stored audio) and prints how long the session page's data
// takes, and the filmstrip's and an answer's audio's first bytes. The page's requests are those
// app.js makes when a session opens (in parallel there); no request carries the session's frames.
func TestReviewPageSpeed(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 2-hour session (~1 min): skipped with -short")
	}
	a := startAPI(t, "", nil)
	org := seedOrg(t, a, "org-speed", "exam-speed")
	sess := org.Sessions[0]
	key := org.Keys[store.ScopeReview]
	t0 := sess.ScheduledStart.UnixMilli()
	built := time.Now()
	jpg := testJPEG(t, 640, 480, 1, color.RGBA{90, 110, 130, 255})
	obs := `{"width":640,"height":480,"faces":[{"box":[200,100,160,200],"score":0.93,"landmarks":[[240,170],[320,170],[280,210],[250,250],[310,250]],"match":{"similarity":0.74,"same_person":true,"measured":true},"yaw":3.1,"pitch":-2.2,"mask":{"score":0.02,"present":false},"occluded":{"score":0.05,"present":false}}],"top_face_score":0.93,"persons":1,"phones":0,"objects":[{"class":"person","box":[120,60,400,420],"score":0.88}]}`
	pcm := make([]byte, 5*16000*2)
	for i := 0; i < len(pcm)/2; i++ {
		binary.LittleEndian.PutUint16(pcm[2*i:], uint16(int16(6000*math.Sin(float64(i)*0.05))))
	}
	err := a.Store.DB.Transaction(func(tx *gorm.DB) error {
		for _, cam := range []string{"main", "evidence"} {
			var rows []*store.FrameResult
			var imgs []*store.FrameImage
			for i := range int64(7200) {
				at := t0 + i*1000
				rows = append(rows, &store.FrameResult{SessionID: sess.ID, Camera: cam, Seq: 1_000_000 + i, CapturedAtMs: at, Observation: obs, Signals: "{}"})
				imgs = append(imgs, &store.FrameImage{SessionID: sess.ID, Camera: cam, Seq: 1_000_000 + i, CapturedAtMs: at, JPEG: jpg})
			}
			if err := tx.CreateInBatches(rows, 100).Error; err != nil {
				return err
			}
			if err := store.InsertFrameImages(tx, imgs); err != nil {
				return err
			}
		}
		var answers []store.AnswerSegment
		for q := range 25 {
			s := t0 + int64(q)*288_000
			answers = append(answers, store.AnswerSegment{Question: q + 1, StartMs: s, EndMs: s + 280_000, ClosedByPhrase: true,
				PhraseScore: 0.9, SpeechMs: 200_000, Status: store.AnswerClosed, Source: "question_shown"})
		}
		if err := store.ReplaceAnswers(tx, sess.ID, answers); err != nil {
			return err
		}
		for i := range int64(1440) {
			at := t0 + i*5000
			if err := tx.Create(&store.AudioChunk{SessionID: sess.ID, Seq: 5_000_000 + i, CapturedAtMs: at, DurationMs: 5000, SampleRate: 16000}).Error; err != nil {
				return err
			}
			if err := store.InsertAudioSample(tx, &store.AudioSample{SessionID: sess.ID, Seq: 5_000_000 + i, CapturedAtMs: at, SampleRate: 16000, PCM: pcm}); err != nil {
				return err
			}
		}
		return tx.Create(&store.AudioStretch{SessionID: sess.ID, StartSeq: 5_000_000, NextSeq: 5_001_440, StartMs: t0, EndMs: t0 + 7_200_000}).Error
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("built a 2-hour session (2 × 7,200 frames with JPEGs, 25 answers, 2 h of audio) in %s", time.Since(built).Round(time.Millisecond))
	base := "/v1/sessions/" + sess.ID
	get := func(p string, hdr ...string) (time.Duration, int) {
		began := time.Now()
		code, _, body := reviewGet(t, a, key, p, hdr...)
		if code != 200 && code != 206 {
			t.Fatalf("GET %s: %d %s", p, code, body)
		}
		return time.Since(began), len(body)
	}
	// Warm once (connections, SQLite page cache), then measure the median of 5 openings.
	page := []string{base + "/timeline", base, base + "/labels", base + "/answers", base + "/gallery", base + "/media"}
	measure := func(what string, paths func(i int) []string, budget time.Duration) {
		var runs []time.Duration
		for i := range 6 {
			began := time.Now()
			done := make(chan int, 8)
			ps := paths(i)
			for _, p := range ps {
				go func(p string) { _, n := get(p); done <- n }(p)
			}
			bytesIn := 0
			for range ps {
				bytesIn += <-done
			}
			if i > 0 {
				runs = append(runs, time.Since(began))
			}
			if i == 5 {
				fmt.Printf("review page speed: %-40s median %7.1f ms (budget %s), %d KB\n", what, median(runs), budget, bytesIn>>10)
			}
		}
	}
	flagAt := t0 + 3_600_000
	measure("session page data (6 requests)", func(int) []string { return page }, time.Second)
	measure("filmstrip: ±10 s of both cameras + thumbs", func(i int) []string {
		at := flagAt + int64(i)*60_000
		return []string{fmt.Sprintf("%s/frames?camera=main&from=%d&to=%d&thumbs=true", base, at-10_000, at+10_000),
			fmt.Sprintf("%s/frames?camera=evidence&from=%d&to=%d&thumbs=true", base, at-10_000, at+10_000)}
	}, 300*time.Millisecond)
	measure("filmstrip: first thumbnails (both cameras)", func(i int) []string {
		seq := 1_000_000 + 3600 + int64(i)*60
		return []string{fmt.Sprintf("%s/frames/main/%d?size=thumb", base, seq), fmt.Sprintf("%s/frames/evidence/%d?size=thumb", base, seq)}
	}, 300*time.Millisecond)
	// Audio start: what a player needs before it plays — the response's first 64 KB (2 s).
	var starts, whole []time.Duration
	for i := range 6 {
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s%s/audio?from=%d&to=%d", a.URL, base, t0+288_000+int64(i), t0+568_000), nil)
		req.Header.Set("Authorization", "Bearer "+key)
		began := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("audio: %v %v", resp, err)
		}
		if _, err := io.ReadFull(resp.Body, make([]byte, 64<<10)); err != nil {
			t.Fatal(err)
		}
		first := time.Since(began)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if i > 0 {
			starts, whole = append(starts, first), append(whole, time.Since(began))
		}
	}
	fmt.Printf("review page speed: %-40s median %7.1f ms (budget 300ms); the whole 8.75 MB in %.1f ms\n",
		"answer 2 audio (280 s): first 64 KB", median(starts), median(whole))
	measure("answer 2 waveform (peaks)", func(i int) []string {
		return []string{fmt.Sprintf("%s/audio/peaks?from=%d&to=%d&n=%d", base, t0+288_000, t0+568_000, 120+i)}
	}, 300*time.Millisecond)

	// In Chromium (when installed): from the queue to the session page shown, and to the
	// filmstrip's thumbnails of both cameras loaded, as a reviewer opens it.
	if findChromium() == "" {
		t.Log("no Chromium: the in-browser timing is skipped")
		return
	}
	b := startBrowser(t)
	b.signIn(a.URL, org.Users[store.RoleReviewer], org.Password, false, `#qrows tr[data-id]`)
	ready := `document.querySelector('#flags tr.sel') !== null && document.querySelector('#timeline .mark') !== null`
	strip := `(() => { const im = [...document.querySelectorAll('#rv-strip img')]; return im.length >= 30 && im.every((i) => i.complete && i.naturalWidth > 0); })()`
	var shown, filmstrip []time.Duration
	for i := range 4 {
		b.run("back to the queue", chromedp.Navigate(a.URL+"/ui/#/queue"), b.visible(`#qrows tr[data-id]`))
		began := time.Now()
		b.run("open the 2-hour session",
			b.eval(`location.hash = '#/session/`+sess.ID+`'`),
			chromedp.Poll[chromedp.Void](ready, chromedp.WithPollingInterval(5*time.Millisecond)))
		if i > 0 {
			shown = append(shown, time.Since(began))
		}
		b.run("filmstrip loaded", chromedp.Poll[chromedp.Void](strip, chromedp.WithPollingInterval(5*time.Millisecond)))
		if i > 0 {
			filmstrip = append(filmstrip, time.Since(began))
		}
	}
	// The filmstrip somewhere new (nothing cached: other frames, other thumbnails): seek the
	// review time 10 minutes on, five times.
	var seeks []time.Duration
	for i := range 5 {
		at := t0 + int64(i+2)*600_000
		began := time.Now()
		b.run("seek the filmstrip", b.eval(fmt.Sprintf(`rvPause(); rvSeek(%d)`, at)),
			chromedp.Poll[chromedp.Void](fmt.Sprintf(`S.rv.win && S.rv.win.from === %d && Number((document.querySelector('#rv-strip .rv-col') || {dataset: {}}).dataset.t) >= %d && %s`,
				at-10_000, at-10_000, strip), chromedp.WithPollingInterval(5*time.Millisecond)))
		seeks = append(seeks, time.Since(began))
		if os.Getenv("PROCTOR_SPEED_DEBUG") != "" {
			timing, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`JSON.stringify(performance.getEntriesByType('resource').slice(-50).map((e) => [e.name.replace(/^.*\/v1\/sessions\/[^/]+/, '').slice(0, 40), Math.round(e.startTime), Math.round(e.requestStart - e.startTime), Math.round(e.responseStart - e.requestStart), Math.round(e.duration)]))`))
			t.Logf("resources: %s", timing)
			b.run("clear", b.eval(`performance.clearResourceTimings()`))
		}
	}
	// No recording in this session: p plays the stored audio and the filmstrip follows it.
	b.run("play without a recording", b.eval(fmt.Sprintf(`rvPause(); rvSeek(%d)`, t0+1_800_000)), b.key("p"),
		chromedp.Poll[chromedp.Void](fmt.Sprintf(`S.rv.driver === 'audio' && !document.querySelector('#rv-audio').paused && Number(document.querySelector('#rv-time').dataset.t) > %d && Number(document.querySelector('#rv-strip .rv-col.sel').dataset.t) > %d`,
			t0+1_801_000, t0+1_800_400), chromedp.WithPollingInterval(20*time.Millisecond)),
		b.key("p"))

	// An answer's audio: its key pressed → the audio element playing.
	var plays []time.Duration
	if os.Getenv("PROCTOR_SPEED_DEBUG") != "" {
		b.run("audio events", b.eval(`window.__ev = []; for (const e of ['loadstart','loadedmetadata','loadeddata','canplay','playing','timeupdate','waiting','seeking','seeked']) document.querySelector('#rv-audio').addEventListener(e, () => window.__ev.push([e, Math.round(performance.now())]))`))
	}
	for _, n := range []int{2, 3, 4, 5, 6} {
		if os.Getenv("PROCTOR_SPEED_DEBUG") != "" {
			b.run("mark", b.eval(`window.__ev = [['key', Math.round(performance.now())]]`))
		}
		began := time.Now()
		b.run("play an answer", b.key(fmt.Sprint(n)),
			chromedp.Poll[chromedp.Void](fmt.Sprintf(`(() => { const a = document.querySelector('#rv-audio'); return S.rv.playingQ === %d && !a.paused && a.currentTime > 0; })()`, n),
				chromedp.WithPollingInterval(5*time.Millisecond)))
		plays = append(plays, time.Since(began))
		if os.Getenv("PROCTOR_SPEED_DEBUG") != "" {
			timing, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`JSON.stringify(performance.getEntriesByType('resource').filter((e) => e.name.includes('/audio')).map((e) => [e.name.slice(-30), e.initiatorType, Math.round(e.startTime), Math.round(e.requestStart - e.startTime), Math.round(e.responseStart - e.requestStart), Math.round(e.duration), e.transferSize]))`))
			ev, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`JSON.stringify(window.__ev)`))
			t.Logf("audio resources: %s events %s", timing, ev)
			b.run("clear", b.eval(`performance.clearResourceTimings()`))
		}
		b.run("pause", b.key("p"))
	}
	fmt.Printf("review page speed: %-40s median %7.1f ms, max %.1f ms (budget 300 ms)\n", "Chromium: answer n key → audio playing", median(plays), float64(slices.Max(plays).Microseconds())/1000)
	b.run("screenshot", chromedp.ScrollIntoView(css(`#review-media`)), b.shot("media-speed-2h-session.png"))
	fmt.Printf("review page speed: %-40s median %7.1f ms, max %.1f ms (budget 300 ms)\n", "Chromium: filmstrip at a new time (cold)", median(seeks), float64(slices.Max(seeks).Microseconds())/1000)
	fmt.Printf("review page speed: %-40s median %7.1f ms (budget 1s)\n", "Chromium: session page shown", median(shown))
	fmt.Printf("review page speed: %-40s median %7.1f ms from opening (budget: page + 300 ms)\n", "Chromium: filmstrip thumbnails loaded", median(filmstrip))
}

func median(d []time.Duration) float64 {
	s := append([]time.Duration(nil), d...)
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return float64(s[len(s)/2].Microseconds()) / 1000
}
