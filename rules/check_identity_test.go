package rules

import "testing"

// A login face in the mismatch band abstains from the login check, as it abstains while
// answering; below the band it counts as someone else, at the threshold as a match.
func TestLoginFace(t *testing.T) {
	p := New(Config{}).Params() // threshold below: 0.5, band 0.15 (the default)
	for _, c := range []struct {
		photo           float32
		counts, matched bool
	}{
		{0.80, true, true},
		{0.50, true, true},
		{0.49, false, false},
		{0.36, false, false},
		{0.34, true, false},
		{-0.1, true, false},
	} {
		counts, matched := LoginFace(c.photo, 0.5, p)
		if counts != c.counts || matched != c.matched {
			t.Errorf("similarity %.2f: counts %v matched %v, want %v %v", c.photo, counts, matched, c.counts, c.matched)
		}
	}
	narrow := New(Config{Settings: Params{SettingIdentityMismatchBand: 0.001}}).Params()
	if counts, _ := LoginFace(0.49, 0.5, narrow); !counts {
		t.Error("with practically no band a face just below the threshold should count as someone else")
	}
}
