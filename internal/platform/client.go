// Package platform is a small Go client of the HTTP API that plays the exam platform (and a
// reviewer): the demo, the benchmark and the end-to-end tests all post through it exactly as a
// real platform would.
package platform

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"proctor/store"
)

// Client talks to one proctor API with one API key.
type Client struct {
	BaseURL string
	Token   string
	HTTP    *http.Client
}

// New returns a client with a pooled HTTP transport sized for concurrent posting.
func New(baseURL, token string) *Client {
	tr := &http.Transport{MaxIdleConns: 64, MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second}
	return &Client{BaseURL: baseURL, Token: token, HTTP: &http.Client{Transport: tr, Timeout: 60 * time.Second}}
}

// StatusError is a non-2xx answer.
type StatusError struct {
	Code    int
	Message string
}

func (e *StatusError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.Code, e.Message) }

// Do sends a request and decodes a JSON answer into out (if non-nil). It returns the status code.
func (c *Client) Do(ctx context.Context, method, path, contentType string, body []byte, out any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(data, &e)
		if e.Error == "" {
			e.Error = string(data)
		}
		return resp.StatusCode, &StatusError{resp.StatusCode, e.Error}
	}
	if out != nil {
		if b, ok := out.(*[]byte); ok {
			*b = data
			return resp.StatusCode, nil
		}
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decode %s %s: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

// NewSession describes a session to create.
type NewSession struct {
	ID             string
	ExamID         string
	CandidateID    string
	ScheduledStart time.Time
	DurationSec    int
	Questions      int
	Photo          []byte
}

// CreateSession posts a session with its registration photo.
func (c *Client) CreateSession(ctx context.Context, s NewSession) (*store.Session, error) {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	fields := map[string]string{"id": s.ID, "exam_id": s.ExamID, "candidate_id": s.CandidateID,
		"scheduled_start": s.ScheduledStart.Format(time.RFC3339),
		"duration_sec":    strconv.Itoa(s.DurationSec), "questions": strconv.Itoa(s.Questions)}
	for k, v := range fields {
		if v != "" {
			_ = w.WriteField(k, v)
		}
	}
	fw, err := w.CreateFormFile("photo", "registration.jpg")
	if err != nil {
		return nil, err
	}
	fw.Write(s.Photo)
	w.Close()
	var out store.Session
	_, err = c.Do(ctx, http.MethodPost, "/v1/sessions", w.FormDataContentType(), buf.Bytes(), &out)
	return &out, err
}

// PostFrame posts one JPEG frame. It returns the HTTP status (202 accepted, 200 duplicate).
func (c *Client) PostFrame(ctx context.Context, sessionID, camera string, seq int64, capturedAt time.Time, jpeg []byte) (int, error) {
	q := url.Values{"camera": {camera}, "seq": {strconv.FormatInt(seq, 10)},
		"captured_at": {strconv.FormatInt(capturedAt.UnixMilli(), 10)}}
	return c.Do(ctx, http.MethodPost, "/v1/sessions/"+url.PathEscape(sessionID)+"/frames?"+q.Encode(), "image/jpeg", jpeg, nil)
}

// PostAudio posts one audio chunk (WAV or raw s16le 16 kHz mono).
func (c *Client) PostAudio(ctx context.Context, sessionID string, seq int64, capturedAt time.Time, contentType string, audio []byte) (int, error) {
	q := url.Values{"seq": {strconv.FormatInt(seq, 10)}, "captured_at": {strconv.FormatInt(capturedAt.UnixMilli(), 10)}}
	return c.Do(ctx, http.MethodPost, "/v1/sessions/"+url.PathEscape(sessionID)+"/audio?"+q.Encode(), contentType, audio, nil)
}

// Event is one exam-flow event to post.
type Event struct {
	Seq        int64  `json:"seq"`
	Type       string `json:"type"`
	CapturedAt int64  `json:"captured_at"`
	Data       any    `json:"data,omitempty"`
}

// PostEvents posts a batch of events.
func (c *Client) PostEvents(ctx context.Context, sessionID string, events ...Event) (int, error) {
	body, err := json.Marshal(events)
	if err != nil {
		return 0, err
	}
	return c.Do(ctx, http.MethodPost, "/v1/sessions/"+url.PathEscape(sessionID)+"/events", "application/json", body, nil)
}

// SessionDetail is GET /v1/sessions/{id}.
type SessionDetail struct {
	Session store.Session `json:"session"`
	Flags   []store.Flag  `json:"flags"`
}

// Session fetches a session with its flags (review scope).
func (c *Client) Session(ctx context.Context, id string) (*SessionDetail, error) {
	var out SessionDetail
	_, err := c.Do(ctx, http.MethodGet, "/v1/sessions/"+url.PathEscape(id), "", nil, &out)
	return &out, err
}

// Sessions fetches the reviewer queue.
func (c *Client) Sessions(ctx context.Context) ([]store.Session, error) {
	var out struct {
		Sessions []store.Session `json:"sessions"`
	}
	_, err := c.Do(ctx, http.MethodGet, "/v1/sessions", "", nil, &out)
	return out.Sessions, err
}

// Evidence fetches the evidence JPEG of a flag.
func (c *Client) Evidence(ctx context.Context, flagID uint) ([]byte, error) {
	var out []byte
	_, err := c.Do(ctx, http.MethodGet, "/v1/flags/"+strconv.FormatUint(uint64(flagID), 10)+"/evidence", "", nil, &out)
	return out, err
}

// Verdict confirms or dismisses a flag.
func (c *Client) Verdict(ctx context.Context, flagID uint, verdict, note string) error {
	body, _ := json.Marshal(map[string]string{"verdict": verdict, "note": note})
	_, err := c.Do(ctx, http.MethodPost, "/v1/flags/"+strconv.FormatUint(uint64(flagID), 10)+"/verdict",
		"application/json", body, nil)
	return err
}

// WaitFrames polls until the session has at least n analysed frames or ctx ends.
func (c *Client) WaitFrames(ctx context.Context, sessionID string, n int64) (*SessionDetail, error) {
	return c.WaitFramesProgress(ctx, sessionID, n, 0)
}

// WaitFramesProgress is WaitFrames that also gives up when no frame was analysed for stall
// (0: never): analysis that keeps going is waited for however slow the machine, and a hang
// (a worker down, a stuck partition) fails after stall, saying how far it got.
func (c *Client) WaitFramesProgress(ctx context.Context, sessionID string, n int64, stall time.Duration) (*SessionDetail, error) {
	last, moved := int64(-1), time.Now()
	for {
		d, err := c.Session(ctx, sessionID)
		if err == nil && d.Session.Frames >= n {
			return d, nil
		}
		if err == nil && d.Session.Frames != last {
			last, moved = d.Session.Frames, time.Now()
		}
		if stall > 0 && time.Since(moved) > stall {
			if err == nil {
				err = fmt.Errorf("session %s: %d of %d frames analysed, none for %s", sessionID, last, n, stall)
			}
			return d, err
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = fmt.Errorf("session %s: %d of %d frames analysed: %w", sessionID, d.Session.Frames, n, ctx.Err())
			}
			return d, err
		case <-time.After(100 * time.Millisecond):
		}
	}
}
