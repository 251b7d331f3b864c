package analyzers

import (
	"math"
	"math/cmplx"
)

// EfficientWord-Net's feature geometry (eff_word_net/audio_processing.py: logfbank with
// winlen 0.025, winstep 0.01, nfilt 64, nfft 512, preemph 0, rectangular window).
const (
	fbankWin     = 400   // samples per frame (25 ms)
	fbankHop     = 160   // 10 ms
	fbankFFT     = 512   //
	fbankBins    = 64    //
	ewnWindow    = 24000 // 1.5 s: the network's input
	ewnFrames    = 149   // 1 + ceil((24000-400)/160); the last frame is zero-padded
	fbankSpecLen = fbankFFT/2 + 1
)

// logFbank computes python_speech_features' logfbank (the copy in eff_word_net/audio_utils.py)
// in float64, as numpy does, so the network sees the features it was trained on
// (TestLogFbankMatchesPython checks it against training/phrase/ewn_fixture.py's output).
type logFbank struct {
	lo, hi  [fbankBins]int       // filter j is non-zero on FFT bins [lo, hi)
	weights [fbankBins][]float64 // its weights on those bins
	tw      []complex128         // FFT twiddles
	rev     []int                // bit reversal permutation
	buf     []complex128
	pow     [fbankSpecLen]float64
}

func newLogFbank() *logFbank {
	l := &logFbank{buf: make([]complex128, fbankFFT), tw: make([]complex128, fbankFFT/2), rev: make([]int, fbankFFT)}
	hz2mel := func(hz float64) float64 { return 2595 * math.Log10(1+hz/700) }
	mel2hz := func(m float64) float64 { return 700 * (math.Pow(10, m/2595) - 1) }
	lowMel, highMel := hz2mel(0), hz2mel(AudioRate/2)
	var bin [fbankBins + 2]float64
	for i := range bin {
		// np.linspace(lowmel, highmel, nfilt+2): lo + i*step, the last point exactly highmel.
		m := lowMel + float64(i)*((highMel-lowMel)/float64(fbankBins+1))
		if i == fbankBins+1 {
			m = highMel
		}
		bin[i] = math.Floor(float64(fbankFFT+1) * mel2hz(m) / AudioRate)
	}
	for j := range fbankBins {
		l.lo[j], l.hi[j] = int(bin[j]), int(bin[j+2])
		w := make([]float64, max(0, l.hi[j]-l.lo[j]))
		for i := int(bin[j]); i < int(bin[j+1]); i++ {
			w[i-l.lo[j]] = (float64(i) - bin[j]) / (bin[j+1] - bin[j])
		}
		for i := int(bin[j+1]); i < int(bin[j+2]); i++ {
			w[i-l.lo[j]] = (bin[j+2] - float64(i)) / (bin[j+2] - bin[j+1])
		}
		l.weights[j] = w
	}
	for k := range l.tw {
		l.tw[k] = cmplx.Exp(complex(0, -2*math.Pi*float64(k)/fbankFFT))
	}
	bits := 0
	for 1<<bits < fbankFFT {
		bits++
	}
	for i := range l.rev {
		r := 0
		for b := 0; b < bits; b++ {
			if i&(1<<b) != 0 {
				r |= 1 << (bits - 1 - b)
			}
		}
		l.rev[i] = r
	}
	return l
}

// frame writes the 64 log filterbank energies of frame (≤ 400 samples; missing samples are the
// zero padding framesig adds at the end) to out.
func (l *logFbank) frame(frame []float32, out []float32) {
	for i := range l.buf {
		l.buf[i] = 0
	}
	for i, v := range frame[:min(len(frame), fbankWin)] {
		l.buf[l.rev[i]] = complex(float64(v), 0)
	}
	// Iterative radix-2 FFT (the input is already in bit-reversed order).
	for size := 2; size <= fbankFFT; size <<= 1 {
		half, step := size/2, fbankFFT/size
		for start := 0; start < fbankFFT; start += size {
			for k := range half {
				t := l.tw[k*step] * l.buf[start+k+half]
				u := l.buf[start+k]
				l.buf[start+k], l.buf[start+k+half] = u+t, u-t
			}
		}
	}
	for k := range l.pow {
		re, im := real(l.buf[k]), imag(l.buf[k])
		l.pow[k] = (re*re + im*im) / fbankFFT
	}
	for j := range fbankBins {
		var s float64
		for i, w := range l.weights[j] {
			s += w * l.pow[l.lo[j]+i]
		}
		if s == 0 {
			s = 2.220446049250313e-16 // np.finfo(float).eps, as logfbank substitutes
		}
		out[j] = float32(math.Log(s))
	}
}

// window computes the network input for 1.5 s of audio (len(pcm) == ewnWindow, -1..1): 149
// frames × 64 bins, frame-major, into out.
func (l *logFbank) window(pcm []float32, out []float32) {
	for f := range ewnFrames {
		start := f * fbankHop
		l.frame(pcm[start:min(len(pcm), start+fbankWin)], out[f*fbankBins:(f+1)*fbankBins])
	}
}
