package api

import (
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// HTTP range requests (RFC 9110 §14) for the media routes: a player asks for the part of a
// recording or an audio file around where the reviewer seeks. One range per request is what
// players send; a multi-range request gets the whole body (200), which the RFC allows.

// byteRange parses a Range header for a body of size bytes. ok is false when the whole body
// is to be sent (no header, another unit, several ranges); satisfiable false → 416.
func byteRange(h string, size int64) (start, end int64, ok, satisfiable bool) {
	spec, found := strings.CutPrefix(strings.TrimSpace(h), "bytes=")
	if !found || strings.Contains(spec, ",") {
		return 0, 0, false, true
	}
	a, b, found := strings.Cut(strings.TrimSpace(spec), "-")
	if !found {
		return 0, 0, false, true
	}
	switch {
	case a == "": // suffix: the last b bytes
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n <= 0 {
			return 0, 0, false, true
		}
		if size == 0 {
			return 0, 0, false, false
		}
		return max(size-n, 0), size - 1, true, true
	default:
		s, err := strconv.ParseInt(a, 10, 64)
		if err != nil || s < 0 {
			return 0, 0, false, true
		}
		if s >= size {
			return 0, 0, false, false
		}
		e := size - 1
		if b != "" {
			if e, err = strconv.ParseInt(b, 10, 64); err != nil || e < s {
				return 0, 0, false, true
			}
			e = min(e, size-1)
		}
		return s, e, true, true
	}
}

// firstRange reports whether a media request starts a listen or a view (no Range, or from the
// first byte): the one that is audit-logged, not every seek of the player.
func firstRange(c *fiber.Ctx) bool {
	r := c.Get(fiber.HeaderRange)
	return r == "" || strings.HasPrefix(strings.TrimSpace(r), "bytes=0-")
}

func rangeHead(c *fiber.Ctx, ctype string, size int64) (start, end int64, partial bool, err error) {
	c.Set(fiber.HeaderAcceptRanges, "bytes")
	c.Set(fiber.HeaderContentType, ctype)
	start, end, partial, ok := byteRange(c.Get(fiber.HeaderRange), size)
	if !ok {
		c.Set(fiber.HeaderContentRange, "bytes */"+strconv.FormatInt(size, 10))
		return 0, 0, false, bad(fiber.StatusRequestedRangeNotSatisfiable,
			"range not satisfiable: the body is "+strconv.FormatInt(size, 10)+" bytes")
	}
	if !partial {
		return 0, size - 1, false, nil
	}
	c.Status(fiber.StatusPartialContent)
	c.Set(fiber.HeaderContentRange, "bytes "+strconv.FormatInt(start, 10)+"-"+strconv.FormatInt(end, 10)+"/"+strconv.FormatInt(size, 10))
	return start, end, true, nil
}

// serveRange sends body, or the part of it the Range header asks for (206).
func serveRange(c *fiber.Ctx, ctype string, body []byte) error {
	start, end, _, err := rangeHead(c, ctype, int64(len(body)))
	if err != nil {
		return err
	}
	if len(body) == 0 {
		return c.Send(nil)
	}
	return c.Send(body[start : end+1])
}

// sectionFile is a part of an open file that closes the file when the response is written.
type sectionFile struct {
	*io.SectionReader
	f *os.File
}

func (s sectionFile) Close() error { return s.f.Close() }

// serveFileRange streams f (size bytes), or the asked part of it; f is closed when sent.
func serveFileRange(c *fiber.Ctx, ctype string, f *os.File, size int64) error {
	start, end, _, err := rangeHead(c, ctype, size)
	if err != nil {
		f.Close()
		return err
	}
	n := end - start + 1
	if size == 0 {
		n = 0
	}
	c.Response().SetBodyStream(sectionFile{io.NewSectionReader(f, start, n), f}, int(n))
	return nil
}
