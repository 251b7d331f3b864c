package pipeline

import "testing"

// TestFrameSetsDefault: the frame analyzer sets default to one more than the consumers per topic,
// an explicit count is kept, and there are always at least as many frame Readers as sets (a set
// no Reader can hand work to would sit idle).
func TestFrameSetsDefault(t *testing.T) {
	for _, tc := range []struct {
		in                  Config
		sets, readers, cons int
	}{
		{Config{}, 3, 6, 2},
		{Config{Concurrency: 4}, 5, 6, 4},
		{Config{FrameSets: 2}, 2, 6, 2},
		{Config{Partitions: 2}, 3, 3, 2},
		{Config{Concurrency: 8, FrameReaders: 2}, 9, 9, 8},
	} {
		c := tc.in.WithDefaults()
		if c.FrameSets != tc.sets || c.FrameReaders != tc.readers || c.Concurrency != tc.cons {
			t.Errorf("%+v: sets %d, readers %d, concurrency %d; want %d, %d, %d",
				tc.in, c.FrameSets, c.FrameReaders, c.Concurrency, tc.sets, tc.readers, tc.cons)
		}
	}
}
