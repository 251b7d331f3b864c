package analyzers

import (
	"fmt"
	"math"
)

// resampler converts a stream from any integer rate to 16 kHz with a polyphase windowed-sinc
// filter. It is streaming: the input tail it still needs and its phase are part of the stretch
// state, so a stretch resampled across chunks (and across workers) equals one pass over the
// whole recording. The API accepts 8–48 kHz; the common rates (8, 11.025, 22.05, 32, 44.1, 48 kHz)
// have at most 640 exact phases.
type resampler struct {
	inRate, outRate int
	up, down        int // output step = down/up input samples (reduced by the gcd)
	half            int // taps each side of the output instant, in input samples
	phases          int // filter phases stored (up, or maxPhases for odd rates)
	coef            []float32
	buf             []float32 // input samples from buf[0] = the oldest one still needed
	pos             int       // index in buf of the next output's left centre sample
	frac            int       // next output's offset after buf[pos], in 1/up input samples
}

// maxPhases bounds the filter table for rates whose ratio to 16 kHz does not reduce (e.g.
// 44 101 Hz): the phase is then rounded to 1/1024 of a sample, far below what matters for speech.
const maxPhases = 1024

// quality: taps per side at the cut-off frequency. 16 zero crossings with a Kaiser window
// (β = 8) gives > 70 dB stop-band rejection, plenty for 16-bit speech.
const zeroCrossings = 16

func (r *resampler) reset(inRate, outRate int) {
	if inRate != r.inRate || outRate != r.outRate || r.coef == nil && inRate != outRate {
		r.inRate, r.outRate = inRate, outRate
		g := gcd(inRate, outRate)
		r.up, r.down = outRate/g, inRate/g
		r.design()
	}
	r.buf = r.buf[:0]
	// Pre-pad with zeros so the first output is centred on the first input sample.
	for range r.half - 1 {
		r.buf = append(r.buf, 0)
	}
	r.pos, r.frac = max(r.half-1, 0), 0
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func (r *resampler) design() {
	if r.inRate == r.outRate {
		r.coef, r.half = nil, 0
		return
	}
	// Cut-off just under the lower Nyquist frequency, relative to the input rate.
	fc := 0.95 * math.Min(1, float64(r.outRate)/float64(r.inRate))
	r.half = int(math.Ceil(zeroCrossings / fc))
	r.phases = min(r.up, maxPhases)
	taps := 2 * r.half
	r.coef = make([]float32, r.phases*taps)
	const beta = 8.0
	i0b := besselI0(beta)
	for p := range r.phases {
		d := float64(p) / float64(r.phases) // output instant after the left centre sample
		var sum float64
		row := r.coef[p*taps : (p+1)*taps]
		for k := range taps {
			t := float64(k-r.half+1) - d // input sample time relative to the output instant
			x := t / float64(r.half)
			if math.Abs(x) > 1 {
				continue
			}
			w := besselI0(beta*math.Sqrt(1-x*x)) / i0b
			v := fc * sinc(fc*t) * w
			row[k] = float32(v)
			sum += v
		}
		for k := range row { // unity gain at DC for every phase
			row[k] = float32(float64(row[k]) / sum)
		}
	}
}

func sinc(x float64) float64 {
	if x == 0 {
		return 1
	}
	return math.Sin(math.Pi*x) / (math.Pi * x)
}

func besselI0(x float64) float64 {
	sum, term := 1.0, 1.0
	for k := 1; k < 50; k++ {
		term *= (x / (2 * float64(k))) * (x / (2 * float64(k)))
		sum += term
		if term < 1e-12*sum {
			break
		}
	}
	return sum
}

// process appends the output samples that in makes available to out.
func (r *resampler) process(in []float32, out []float32) []float32 {
	if r.coef == nil {
		return append(out, in...)
	}
	r.buf = append(r.buf, in...)
	taps := 2 * r.half
	for r.pos+r.half < len(r.buf) { // the rightmost tap buf[pos+half] exists
		p := r.frac
		if r.phases != r.up {
			p = r.frac * r.phases / r.up
		}
		row := r.coef[p*taps : (p+1)*taps]
		win := r.buf[r.pos-r.half+1 : r.pos+r.half+1]
		var acc float32
		for k, c := range row {
			acc += c * win[k]
		}
		out = append(out, acc)
		r.frac += r.down
		r.pos += r.frac / r.up
		r.frac %= r.up
	}
	// Drop what no future output needs; copy within the same array (no allocation).
	if drop := r.pos - r.half + 1; drop > 0 {
		n := copy(r.buf, r.buf[drop:])
		r.buf = r.buf[:n]
		r.pos -= drop
	}
	return out
}

func (r *resampler) appendState(w *stateWriter) {
	w.u32(uint32(r.inRate))
	w.u32(uint32(r.pos))
	w.u32(uint32(r.frac))
	w.floats(r.buf)
}

func (r *resampler) restoreState(rd *stateReader) error {
	rate := int(rd.u32())
	pos, frac := int(rd.u32()), int(rd.u32())
	if rd.err != nil || rate < 1000 || rate > 192000 {
		return fmt.Errorf("%w: resampler rate %d", ErrStateMismatch, rate)
	}
	r.reset(rate, AudioRate)
	r.buf = rd.floatsInto(r.buf)
	r.pos, r.frac = pos, frac
	if rd.err == nil && r.coef != nil && (pos > len(r.buf) || frac >= r.up) {
		return fmt.Errorf("%w: resampler position", ErrStateMismatch)
	}
	return rd.err
}

// Resample converts a whole recording from rate from to rate to (e.g. a file's audio track).
func Resample(samples []float32, from, to int) []float32 {
	var r resampler
	r.reset(from, to)
	out := r.process(samples, make([]float32, 0, len(samples)*to/max(from, 1)+1))
	if r.coef != nil { // flush: the last outputs need half a filter of input after them
		out = r.process(make([]float32, r.half), out)
		out = out[:min(len(out), int(int64(len(samples))*int64(to)/int64(from)))]
	}
	return out
}
