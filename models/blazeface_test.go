package models

import (
	"fmt"
	"testing"

	"gocv.io/x/gocv"
)

func newTestBlazeFace(t testing.TB, name string) *BlazeFace {
	t.Helper()
	requireCache(t)
	m, err := Load(name)
	if err != nil {
		t.Skipf("%s not installed (%v): run scripts/setup.sh to run this test", name, err)
	}
	b, err := NewBlazeFace(m, SessionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestBlazeFaceDemoSamples(t *testing.T) {
	for _, name := range []string{"blazeface-front-128", "blazeface-back-256"} {
		b := newTestBlazeFace(t, name)
		for n := 1; n <= 6; n++ {
			img := readDemo(t, n, gocv.IMReadColor)
			got, top, err := b.Detect(nil, img, 0.5)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Println(name, n, img.Cols(), img.Rows(), top, got)
		}
	}
}
