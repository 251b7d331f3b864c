package analyzers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/jpeg"
	_ "image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"proctor/models"
)

func toJPEG(t *testing.T, p string) []byte {
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.HasPrefix(data, []byte{0xFF, 0xD8}) {
		return data
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(p, err)
	}
	var b bytes.Buffer
	jpeg.Encode(&b, img, &jpeg.Options{Quality: 95})
	return b.Bytes()
}

func TestScratchDump(t *testing.T) {
	root := os.Getenv("DUMP_ROOT")
	if root == "" {
		t.Skip()
	}
	out, _ := os.Create(os.Getenv("DUMP_OUT"))
	defer out.Close()
	m, err := models.Load("ultraface-rfb-320")
	if err != nil {
		t.Fatal(err)
	}
	for _, resize := range []string{"stretch", "letterbox"} {
		for _, side := range []int{320, 640, 0} {
			mm := *m
			mm.Input.Resize = resize
			d, err := models.NewFaceDetector(&mm, models.DetectorOptions{ScoreThreshold: 0.2, MinFace: -1})
			if err != nil {
				t.Fatal(err)
			}
			var files []string
			filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
				if info != nil && !info.IsDir() && (strings.HasSuffix(p, ".jpg") || strings.HasSuffix(p, ".jpeg") || strings.HasSuffix(p, ".png")) {
					files = append(files, p)
				}
				return nil
			})
			var buf []models.FaceBox
			for _, p := range files {
				data := toJPEG(t, p)
				t0 := time.Now()
				f, err := DecodeJPEG(data, side)
				if err != nil {
					t.Log(p, err)
					continue
				}
				t1 := time.Now()
				var top float32
				buf, top, err = d.Detect(buf[:0], f.Image, f.Width, f.Height)
				t2 := time.Now()
				f.Image.Close()
				if err != nil {
					t.Fatal(err)
				}
				type bx struct {
					S, HF, X, Y, W, H float32
				}
				var bs []bx
				for _, b := range buf {
					bs = append(bs, bx{b.Score, b.H / float32(f.Height), b.X, b.Y, b.W, b.H})
				}
				j, _ := json.Marshal(map[string]any{"resize": resize, "side": side, "path": strings.TrimPrefix(p, root), "w": f.Width, "h": f.Height, "top": top, "boxes": bs, "dec_ms": t1.Sub(t0).Seconds() * 1000, "det_ms": t2.Sub(t1).Seconds() * 1000})
				fmt.Fprintln(out, string(j))
			}
			d.Close()
		}
	}
}
