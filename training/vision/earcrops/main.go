// Command earcrops writes the ear crops the "ears" analyzer classifies, for every face of every
// photo it is given, exactly as the service makes them (faces → 68 landmarks → models.EarRegions
// → models.EarCropper): the training data of the ear classifier (train_ears.py runs it).
//
//	go run ./training/vision/earcrops --root ../shared/data --out DIR PHOTO|FOLDER...
//
// It writes DIR/crops/<n>_l.png and <n>_r.png (the image-right ear mirrored, like the analyzer)
// (with --face-crops also <n>_face.png, the aligned crop the attire classifier reads) and
// DIR/faces.tsv: n, photo (relative to --root), face index (detector order), box x y w h
// (original pixels), yaw, pitch, share of each ear region outside the frame, the four corners
// x,y of each region (original pixels; left ear, then right).
package main

import (
	"context"
	"flag"
	"fmt"
	"io/fs"
	"log"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gocv.io/x/gocv"

	"proctor/analyzers"
	"proctor/internal/analyze"
	"proctor/models"
)

// dump is an analyzer run after landmarks and headpose that writes every face's two ear crops.
type dump struct {
	out     string
	crop    *models.EarCropper
	mats    [2]gocv.Mat
	photo   string
	rows    *os.File
	n       int
	maxFace int
	// faceCrops also writes each face's aligned crop (<n>_face.png).
	faceCrops bool
	// scale > 1 writes the same regions at scale× the analyzer's resolution (a model-size study).
	scale float64
}

func (d *dump) Name() string       { return "eardump" }
func (d *dump) Version() string    { return "1" }
func (d *dump) Requires() []string { return []string{"faces", "landmarks"} }
func (d *dump) Close() error       { return d.crop.Close() }

func (d *dump) Analyze(_ context.Context, f *analyzers.Frame, obs *analyzers.Observation) error {
	s := float32(f.Width) / float32(max(f.Image.Cols(), 1))
	for i := range min(len(f.FaceLandmarks), d.maxFace) {
		regions, err := models.EarRegions(&f.FaceLandmarks[i])
		if err != nil {
			continue
		}
		var out [2]float32
		for side, r := range regions {
			out[side] = r.Outside(f.Image.Cols(), f.Image.Rows())
			if err := d.crop.CropScaled(f.Image, r, &d.mats[side], d.scale); err != nil {
				return err
			}
			name := filepath.Join(d.out, "crops", fmt.Sprintf("%d_%c.png", d.n, "lr"[side]))
			if !gocv.IMWrite(name, d.mats[side]) {
				return fmt.Errorf("write %s", name)
			}
		}
		if d.faceCrops {
			// The aligned 112×112 crop the attire classifier reads, for occlusion labels.
			name := filepath.Join(d.out, "crops", fmt.Sprintf("%d_face.png", d.n))
			if !gocv.IMWrite(name, f.FaceCrops[i]) {
				return fmt.Errorf("write %s", name)
			}
		}
		fc := obs.Faces[i]
		yaw, pitch := float32(0), float32(0)
		if fc.Yaw != nil {
			yaw, pitch = *fc.Yaw, *fc.Pitch
		}
		fmt.Fprintf(d.rows, "%d\t%s\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.3f\t%.3f", d.n, d.photo, i,
			fc.Box[0], fc.Box[1], fc.Box[2], fc.Box[3], yaw, pitch, out[0], out[1])
		for _, r := range regions {
			for _, c := range r.Corners() {
				fmt.Fprintf(d.rows, "\t%.1f,%.1f", c[0]*s, c[1]*s)
			}
		}
		fmt.Fprintln(d.rows)
		d.n++
	}
	return nil
}

func main() {
	root := flag.String("root", "../shared/data", "photo paths are written relative to this folder")
	out := flag.String("out", "", "output folder (required)")
	maxFace := flag.Int("max-faces", 4, "faces per photo, detector order")
	faceCrops := flag.Bool("face-crops", false, "also write each face's aligned 112x112 crop (<n>_face.png), the attire classifier's input")
	scale := flag.Float64("scale", 1, "crop size as a multiple of the analyzer's 48x64 (the same regions; for a model-size study)")
	flag.Parse()
	if *out == "" || flag.NArg() == 0 {
		log.Fatal("usage: earcrops --out DIR [--root ../shared/data] PHOTO|FOLDER...")
	}
	if err := os.MkdirAll(filepath.Join(*out, "crops"), 0o755); err != nil {
		log.Fatal(err)
	}
	rows, err := os.Create(filepath.Join(*out, "faces.tsv"))
	if err != nil {
		log.Fatal(err)
	}
	defer rows.Close()
	d := &dump{out: *out, crop: models.NewEarCropper(), mats: [2]gocv.Mat{gocv.NewMat(), gocv.NewMat()}, rows: rows, maxFace: *maxFace, faceCrops: *faceCrops, scale: *scale}
	cat := analyzers.NewCatalog()
	if err := cat.Add("eardump", func(*analyzers.Config) (analyzers.Analyzer, error) { return d, nil }); err != nil {
		log.Fatal(err)
	}
	cfg := analyze.ImageConfig("faces,landmarks,headpose,eardump")
	cfg.Catalog = cat
	set, err := analyzers.NewSet(cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer set.Close()
	var photos []string
	for _, a := range flag.Args() {
		_ = filepath.WalkDir(a, func(p string, e fs.DirEntry, err error) error {
			ext := strings.ToLower(filepath.Ext(p))
			if err == nil && !e.IsDir() && (ext == ".jpg" || ext == ".jpeg" || ext == ".png") {
				photos = append(photos, p)
			}
			return nil
		})
	}
	sort.Strings(photos)
	absRoot, _ := filepath.Abs(*root)
	for _, p := range photos {
		abs, _ := filepath.Abs(p)
		if d.photo, err = filepath.Rel(absRoot, abs); err != nil || strings.HasPrefix(d.photo, "..") {
			d.photo = p
		}
		if _, err := analyze.Image(context.Background(), set, p, analyzers.FrameMeta{Camera: analyzers.CameraMain}); err != nil {
			log.Printf("%s: %v", p, err)
		}
	}
	log.Printf("%d photos, %d faces", len(photos), d.n)
}
