package analyzers

import "testing"

// A phone that stays where the last detection saw one is Still (the evidence phone on its
// stand); its first sighting, one that moved, or another session's is not.
func TestPhoneStill(t *testing.T) {
	a := &Persons{phonesAt: map[string][]Object{}}
	phone := func(x, y float32) []Object {
		return []Object{{Class: ClassPerson, Box: [4]float32{400, 100, 500, 600}}, {Class: ClassPhone, Box: [4]float32{x, y, 24, 48}}}
	}
	steps := []struct {
		name, key string
		x, y      float32
		want      bool
	}{
		{"first sighting", "s1", 100, 100, false},
		{"same place, detector jitter", "s1", 104, 97, true},
		{"still there", "s1", 102, 101, true},
		{"moved by its own height", "s1", 150, 100, false},
		{"stays at the new place", "s1", 151, 102, true},
		{"another session's camera", "s2", 151, 102, false},
	}
	for _, s := range steps {
		objs := phone(s.x, s.y)
		a.markStill(s.key, objs)
		if objs[1].Still != s.want || objs[0].Still {
			t.Errorf("%s: still = %v, want %v", s.name, objs[1].Still, s.want)
		}
	}
	if !samePlace([4]float32{0, 0, 20, 40}, [4]float32{5, 5, 22, 44}) || samePlace([4]float32{0, 0, 20, 40}, [4]float32{0, 0, 60, 120}) {
		t.Error("samePlace: a nudge is the same place, three times the size is not")
	}
}
