package app

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"proctor/rules"
	"proctor/store"
)

// TestBrowserSheetFrames: an A4_NOT_SHOWN flag's detail shows the two sheet frames the rule
// compared (details front / back) side by side, from the stored frame images; a frame whose
// image is not kept says so.
func TestBrowserSheetFrames(t *testing.T) {
	b := startBrowser(t)
	a := startAPI(t, "", nil)
	org := seedOrg(t, a, "org-a", "exam-2026-06")
	top := org.Sessions[0]
	at := top.ScheduledStart.Add(-10 * time.Minute).UnixMilli()
	f := store.Flag{SessionID: top.ID, Type: rules.SheetNotShown, Camera: "evidence", StartMs: at, EndMs: top.ScheduledStart.UnixMilli(),
		Severity: store.SeverityDetection, Confidence: 1, Status: store.StatusOpen, Phase: rules.PhasePreparation, ModelVersion: "exam-flow-rules",
		Details: fmt.Sprintf(`{"camera_sightings":2,"camera_turned":false,"outline_change":0.004,`+
			`"front":{"camera":"evidence","seq":7,"captured_at_ms":%d},"back":{"camera":"evidence","seq":9,"captured_at_ms":%d}}`, at, at+2000)}
	if err := a.Store.DB.Create(&f).Error; err != nil {
		t.Fatal(err)
	}
	// The front frame's image is kept (a grey picture); the back's was never stored.
	img := image.NewGray(image.Rect(0, 0, 64, 48))
	for i := range img.Pix {
		img.Pix[i] = 200
	}
	img.Set(10, 10, color.Gray{Y: 20})
	var jpg bytes.Buffer
	if err := jpeg.Encode(&jpg, img, nil); err != nil {
		t.Fatal(err)
	}
	if err := store.InsertFrameImages(a.Store.DB, []*store.FrameImage{{SessionID: top.ID, Camera: "evidence", Seq: 7,
		CapturedAtMs: at, JPEG: jpg.Bytes()}}); err != nil {
		t.Fatal(err)
	}
	b.signIn(a.URL, org.Users[store.RoleReviewer], org.Password, false, `#qrows tr[data-id]`)
	b.run("open the sheet flag",
		chromedp.Navigate(a.URL+"/ui/#/session/"+top.ID),
		b.visible(fmt.Sprintf(`#flags tr[data-flag="%d"]`, f.ID)),
		b.click(fmt.Sprintf(`#flags tr[data-flag="%d"]`, f.ID)),
		b.visible(`#sheet-frames [data-sheet="front"] img`),
		b.visible(`#sheet-frames [data-sheet="back"] .none`),
		b.shot("sheet-frames.png"))
	if got := b.text(`#sheet-frames [data-sheet="front"] .cap`); got == "" {
		t.Errorf("the front frame has no caption")
	}
}
