package platform

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Recording is a recording upload as the API shows it.
type Recording struct {
	ID                string  `json:"id"`
	SessionID         string  `json:"session_id"`
	Camera            string  `json:"camera"`
	Size              int64   `json:"size"`
	SHA256            string  `json:"sha256"`
	StartedAt         int64   `json:"started_at"`
	Received          int64   `json:"received"`
	Status            string  `json:"status"`
	Error             string  `json:"error"`
	Note              string  `json:"note"`
	UploadURL         string  `json:"upload_url"`
	Progress          float64 `json:"progress"`
	DurationMs        int64   `json:"duration_ms"`
	FramesTotal       int64   `json:"frames_total"`
	FramesSent        int64   `json:"frames_sent"`
	DuplicatesSkipped int64   `json:"duplicates_skipped"`
	AudioChunksSent   int64   `json:"audio_chunks_sent"`
	AudioSkippedMs    int64   `json:"audio_skipped_ms"`
}

// NewRecording describes an upload to start.
type NewRecording struct {
	Camera      string `json:"camera"`
	Size        int64  `json:"size"`
	SHA256      string `json:"sha256"`
	StartedAt   int64  `json:"started_at"`
	ContentType string `json:"content_type"`
}

// RecordingFor describes data as a recording of camera whose first frame was at startedAt.
func RecordingFor(camera, contentType string, startedAt time.Time, data []byte) NewRecording {
	sum := sha256.Sum256(data)
	return NewRecording{Camera: camera, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:]),
		StartedAt: startedAt.UnixMilli(), ContentType: contentType}
}

func recordingsPath(sessionID string) string {
	return "/v1/sessions/" + url.PathEscape(sessionID) + "/recordings"
}

// CreateRecording starts an upload, or finds the one with the same checksum (200 instead of 201).
func (c *Client) CreateRecording(ctx context.Context, sessionID string, r NewRecording) (*Recording, int, error) {
	body, _ := json.Marshal(r)
	var out Recording
	code, err := c.Do(ctx, http.MethodPost, recordingsPath(sessionID), "application/json", body, &out)
	return &out, code, err
}

// Recording fetches an upload's state.
func (c *Client) Recording(ctx context.Context, sessionID, id string) (*Recording, error) {
	var out Recording
	_, err := c.Do(ctx, http.MethodGet, recordingsPath(sessionID)+"/"+url.PathEscape(id), "", nil, &out)
	return &out, err
}

// OffsetError is a 409 answer to a chunk: the upload is at Offset.
type OffsetError struct {
	Offset  int64
	Status  string
	Message string
}

func (e *OffsetError) Error() string { return fmt.Sprintf("HTTP 409: %s", e.Message) }

// PutChunk sends chunk at offset. It returns the upload's state after it; a 409 comes back as
// *OffsetError with the offset to resume from.
func (c *Client) PutChunk(ctx context.Context, sessionID, id string, offset int64, chunk io.Reader) (*Recording, error) {
	u := c.BaseURL + recordingsPath(sessionID) + "/" + url.PathEscape(id) + "?offset=" + strconv.FormatInt(offset, 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u, chunk)
	if err != nil {
		return nil, err
	}
	if b, ok := chunk.(interface{ Len() int }); ok { // bytes.Reader, bytes.Buffer, ...
		req.ContentLength = int64(b.Len())
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Authorization", "Bearer "+c.Token)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	var out struct {
		Recording
		Offset *int64 `json:"offset"`
		Err    string `json:"error"`
	}
	_ = json.Unmarshal(data, &out)
	switch {
	case resp.StatusCode == http.StatusConflict && out.Offset != nil:
		return nil, &OffsetError{Offset: *out.Offset, Status: out.Recording.Status, Message: out.Err}
	case resp.StatusCode >= 300:
		if out.Err == "" {
			out.Err = string(data)
		}
		return nil, &StatusError{resp.StatusCode, out.Err}
	}
	return &out.Recording, nil
}

// UploadRecording uploads data in chunks of chunkSize, resuming after a broken connection or a
// 409 at the offset the server reports, and returns the state after the last chunk. A client
// that restarted calls it again: the server recognises the file by its checksum and the upload
// continues where it stopped.
func (c *Client) UploadRecording(ctx context.Context, sessionID string, r NewRecording, data []byte, chunkSize int) (*Recording, error) {
	rec, _, err := c.CreateRecording(ctx, sessionID, r)
	if err != nil {
		return nil, err
	}
	offset, failures := rec.Received, 0
	for offset < int64(len(data)) {
		end := min(offset+int64(chunkSize), int64(len(data)))
		got, err := c.PutChunk(ctx, sessionID, rec.ID, offset, bytes.NewReader(data[offset:end]))
		var oe *OffsetError
		switch {
		case err == nil:
			rec, offset, failures = got, got.Received, 0
		case errors.As(err, &oe) && oe.Status == "uploading":
			offset = oe.Offset
		case errors.As(err, &oe):
			return c.Recording(ctx, sessionID, rec.ID) // complete (or failed) already
		default:
			var se *StatusError
			if errors.As(err, &se) || ctx.Err() != nil || failures >= 5 {
				return nil, err
			}
			// A broken connection: ask where the upload is, then go on from there.
			failures++
			time.Sleep(time.Duration(failures) * 200 * time.Millisecond)
			cur, gerr := c.Recording(ctx, sessionID, rec.ID)
			if gerr != nil {
				return nil, errors.Join(err, gerr)
			}
			offset = cur.Received
		}
	}
	return rec, nil
}

// WaitRecording polls until the recording is done or failed.
func (c *Client) WaitRecording(ctx context.Context, sessionID, id string) (*Recording, error) {
	return c.WaitRecordingProgress(ctx, sessionID, id, 0)
}

// WaitRecordingProgress is WaitRecording that also gives up when the recording made no
// progress (status, bytes, frames) for stall (0: never).
func (c *Client) WaitRecordingProgress(ctx context.Context, sessionID, id string, stall time.Duration) (*Recording, error) {
	var last string
	moved := time.Now()
	for {
		r, err := c.Recording(ctx, sessionID, id)
		if err == nil && (r.Status == "done" || r.Status == "failed") {
			return r, nil
		}
		if err == nil {
			if now := fmt.Sprint(r.Status, r.Received, r.FramesSent, r.FramesTotal, r.Progress); now != last {
				last, moved = now, time.Now()
			}
		}
		if stall > 0 && time.Since(moved) > stall {
			if err == nil {
				err = fmt.Errorf("recording %s still %s (%d of %d frames), no progress for %s", id, r.Status, r.FramesSent, r.FramesTotal, stall)
			}
			return r, err
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = fmt.Errorf("recording %s still %s (%d of %d frames): %w", id, r.Status, r.FramesSent, r.FramesTotal, ctx.Err())
			}
			return r, err
		case <-time.After(100 * time.Millisecond):
		}
	}
}
