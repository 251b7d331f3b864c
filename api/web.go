package api

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"mime"
	"path"
	"strings"
	"sync"

	"github.com/gofiber/fiber/v2"

	"proctor/web"
)

// webFile is one embedded file of the reviewer page, with its validator.
type webFile struct {
	data  []byte
	etag  string
	ctype string
}

var (
	webOnce  sync.Once
	webFiles map[string]webFile
)

func loadWebFiles() {
	webFiles = map[string]webFile{}
	root := web.Static()
	_ = fs.WalkDir(root, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(root, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		ctype := mime.TypeByExtension(path.Ext(p))
		if ctype == "" {
			ctype = "application/octet-stream"
		}
		webFiles[p] = webFile{data: data, etag: `"` + hex.EncodeToString(sum[:8]) + `"`, ctype: ctype}
		return nil
	})
}

// setPageHeaders are the security headers of every page we render: nothing but our own
// scripts and styles, images from us or inlined, never framed (clickjacking on verdict buttons).
func setPageHeaders(c *fiber.Ctx) {
	c.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "+
		"connect-src 'self'; font-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	c.Set("X-Content-Type-Options", "nosniff")
	c.Set("X-Frame-Options", "DENY")
	c.Set("Referrer-Policy", "same-origin")
}

// webAsset serves the reviewer page's files from the binary. Unknown paths get index.html (the
// page routes by #fragment, but a mistyped path should still land on it).
func (s *Server) webAsset(c *fiber.Ctx) error {
	webOnce.Do(loadWebFiles)
	p := strings.TrimPrefix(path.Clean("/"+c.Params("*")), "/")
	f, ok := webFiles[p]
	if !ok {
		if path.Ext(p) != "" && p != "" {
			return bad(fiber.StatusNotFound, "no file /ui/"+p)
		}
		f = webFiles["index.html"]
	}
	setPageHeaders(c)
	c.Set(fiber.HeaderETag, f.etag)
	// Revalidate every time: a new binary brings new files, and a 304 costs one round trip.
	c.Set(fiber.HeaderCacheControl, "no-cache")
	if c.Get(fiber.HeaderIfNoneMatch) == f.etag {
		return c.SendStatus(fiber.StatusNotModified)
	}
	c.Set(fiber.HeaderContentType, f.ctype)
	return c.Send(f.data)
}
