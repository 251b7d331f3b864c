package analyzers

import (
	"math"
	"math/cmplx"
)

// Resemblyzer's front end (resemblyzer/audio.py wav_to_mel_spectrogram): librosa's power mel
// spectrogram with n_fft 400 (25 ms), hop 160 (10 ms), 40 slaney-normalised slaney-scale bands
// from 0 to 8 kHz, a periodic Hann window, |STFT|², no log. Frame f covers samples
// [160 f, 160 f + 400) (librosa centres frames; the stream cannot, and the encoder does not care
// about a 12.5 ms shift). Checked against a numpy port of librosa's formulas by
// TestVoiceMelMatchesPython (training/voice/mel_reference.py).
const (
	voiceFFT    = 400
	voiceHop    = 160
	voiceMels   = 40
	voiceBins   = voiceFFT/2 + 1
	voiceRefDBS = -30 // Resemblyzer's audio_norm_target_dBFS
)

// voiceMel computes one frame at a time with a plan built once; not safe for concurrent use.
type voiceMel struct {
	window  [voiceFFT]float64
	filters [voiceMels]melFilter
	half    *fftPlan // 200-point complex FFT: a 400-point real FFT packed into half the size
	twiddle [voiceFFT / 2]complex128
	z, zOut []complex128
	power   [voiceBins]float64
}

// melFilter is one triangular band: weights for bins [first, first+len(w)).
type melFilter struct {
	first int
	w     []float64
}

func newVoiceMel() *voiceMel {
	m := &voiceMel{half: newFFTPlan(voiceFFT / 2), z: make([]complex128, voiceFFT/2), zOut: make([]complex128, voiceFFT/2)}
	for i := range m.window {
		m.window[i] = 0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/voiceFFT)
	}
	for k := range m.twiddle {
		m.twiddle[k] = cmplx.Exp(complex(0, -2*math.Pi*float64(k)/voiceFFT))
	}
	// librosa.filters.mel(sr=16000, n_fft=400, n_mels=40, htk=False, norm="slaney").
	melPts := make([]float64, voiceMels+2)
	lo, hi := hzToSlaneyMel(0), hzToSlaneyMel(AudioRate/2)
	for i := range melPts {
		melPts[i] = slaneyMelToHz(lo + (hi-lo)*float64(i)/float64(voiceMels+1))
	}
	for i := range voiceMels {
		enorm := 2 / (melPts[i+2] - melPts[i])
		f := melFilter{first: -1}
		for b := range voiceBins {
			hz := float64(b) * AudioRate / voiceFFT
			lower := (hz - melPts[i]) / (melPts[i+1] - melPts[i])
			upper := (melPts[i+2] - hz) / (melPts[i+2] - melPts[i+1])
			w := max(0, min(lower, upper)) * enorm
			if w > 0 {
				if f.first < 0 {
					f.first = b
				}
				f.w = append(f.w, w)
			} else if f.first >= 0 {
				break
			}
		}
		if f.first < 0 {
			f.first = 0
		}
		m.filters[i] = f
	}
	return m
}

func hzToSlaneyMel(hz float64) float64 {
	const fSp, minLogHz, minLogMel = 200.0 / 3, 1000.0, 1000.0 / (200.0 / 3)
	if hz < minLogHz {
		return hz / fSp
	}
	return minLogMel + math.Log(hz/minLogHz)/(math.Log(6.4)/27)
}

func slaneyMelToHz(mel float64) float64 {
	const fSp, minLogHz, minLogMel = 200.0 / 3, 1000.0, 1000.0 / (200.0 / 3)
	if mel < minLogMel {
		return mel * fSp
	}
	return minLogHz * math.Exp((math.Log(6.4)/27)*(mel-minLogMel))
}

// frame writes the 40 mel band powers of x[0:400] to dst.
func (m *voiceMel) frame(x []float32, dst []float32) {
	for j := range m.z {
		m.z[j] = complex(float64(x[2*j])*m.window[2*j], float64(x[2*j+1])*m.window[2*j+1])
	}
	m.half.transform(m.zOut, m.z)
	const n2 = voiceFFT / 2
	for k := 0; k <= n2; k++ {
		zk, zc := m.zOut[k%n2], cmplx.Conj(m.zOut[(n2-k)%n2])
		sum, diff := zk+zc, zk-zc
		even := complex(real(sum)/2, imag(sum)/2)
		odd := complex(imag(diff)/2, -real(diff)/2) // diff / 2i
		tw := complex(-1, 0)                        // e^{-iπ} at k = 200
		if k < n2 {
			tw = m.twiddle[k]
		}
		v := even + tw*odd
		m.power[k] = real(v)*real(v) + imag(v)*imag(v)
	}
	for i, f := range m.filters {
		var s float64
		for j, w := range f.w {
			s += w * m.power[f.first+j]
		}
		dst[i] = float32(s)
	}
}

// fftPlan is a mixed-radix decimation-in-time complex FFT for sizes whose factors are 2, 3, 4
// and 5 (200 = 4·2·5·5 here). Every call at one recursion level has the same size and stride, so
// the twiddles each level multiplies by are laid out once, in the order the butterflies read them.
type fftPlan struct {
	n      int
	levels []fftLevel
	tmp    []complex128
}

// fftLevel is one recursion level: f sub-transforms of m points each.
type fftLevel struct {
	f, m int
	in   []complex128 // in[k·f+r] = W_N^{r·k·stride}: sub-transform r's output k before the butterfly
	out  []complex128 // out[q·f+r] = W_N^{r·q·m·stride}: the f-point DFT
}

func newFFTPlan(n int) *fftPlan {
	tw := make([]complex128, n) // e^{-2πik/n}
	for k := range tw {
		tw[k] = cmplx.Exp(complex(0, -2*math.Pi*float64(k)/float64(n)))
	}
	p := &fftPlan{n: n, tmp: make([]complex128, n)}
	for size, stride := n, 1; size > 1; {
		f := 0
		for _, c := range []int{4, 2, 3, 5} {
			if size%c == 0 {
				f = c
				break
			}
		}
		if f == 0 {
			panic("fftPlan: size must factor into 2, 3, 4 and 5")
		}
		m := size / f
		lv := fftLevel{f: f, m: m, in: make([]complex128, m*f), out: make([]complex128, f*f)}
		for k := range m {
			for r := range f {
				lv.in[k*f+r] = tw[(r*k*stride)%n]
			}
		}
		for q := range f {
			for r := range f {
				lv.out[q*f+r] = tw[(r*q*m*stride)%n]
			}
		}
		p.levels = append(p.levels, lv)
		size, stride = m, stride*f
	}
	return p
}

// transform writes the DFT of src to dst (len n each, distinct).
func (p *fftPlan) transform(dst, src []complex128) { p.rec(dst, src, 1, 0) }

func (p *fftPlan) rec(dst, src []complex128, stride, level int) {
	if level == len(p.levels) {
		dst[0] = src[0]
		return
	}
	lv := &p.levels[level]
	f, m := lv.f, lv.m
	for r := range f {
		p.rec(dst[r*m:(r+1)*m], src[r*stride:], stride*f, level+1)
	}
	// Butterflies: X[k + q m] = Σ_r W_n^{r(k + q m)} Y_r[k]; W_n = tw[stride·…] of the full size.
	// The 2- and 4-point DFTs need no multiplication (W_4 = −i); sub-transform 0's twiddle is 1.
	tmp := p.tmp
	switch f {
	case 2:
		for k := range m {
			a, b := dst[k], dst[m+k]*lv.in[k*2+1]
			tmp[k], tmp[k+m] = a+b, a-b
		}
	case 4:
		for k := range m {
			w := lv.in[k*4 : k*4+4]
			t0, t1, t2, t3 := dst[k], dst[m+k]*w[1], dst[2*m+k]*w[2], dst[3*m+k]*w[3]
			a, b, c, d := t0+t2, t0-t2, t1+t3, t1-t3
			nid := complex(imag(d), -real(d)) // −i·d
			tmp[k], tmp[k+m], tmp[k+2*m], tmp[k+3*m] = a+c, b+nid, a-c, b-nid
		}
	case 5:
		for k := range m {
			w := lv.in[k*5 : k*5+5]
			t0, t1, t2, t3, t4 := dst[k], dst[m+k]*w[1], dst[2*m+k]*w[2], dst[3*m+k]*w[3], dst[4*m+k]*w[4]
			a1, b1, a2, b2 := t1+t4, t1-t4, t2+t3, t2-t3
			p1 := t0 + scale(fft5c1, a1) + scale(fft5c2, a2)
			p2 := t0 + scale(fft5c2, a1) + scale(fft5c1, a2)
			q1 := minusI(scale(fft5s1, b1) + scale(fft5s2, b2))
			q2 := minusI(scale(fft5s2, b1) - scale(fft5s1, b2))
			tmp[k], tmp[k+m], tmp[k+2*m], tmp[k+3*m], tmp[k+4*m] = t0+a1+a2, p1+q1, p2+q2, p2-q2, p1-q1
		}
	default:
		var t [5]complex128
		for k := range m {
			in := lv.in[k*f : (k+1)*f]
			for r, w := range in {
				t[r] = dst[r*m+k] * w
			}
			for q := range f {
				var s complex128
				for r, w := range lv.out[q*f : (q+1)*f] {
					s += t[r] * w
				}
				tmp[k+q*m] = s
			}
		}
	}
	copy(dst[:m*f], p.tmp[:m*f])
}

// The 5-point DFT's constants: W_5 = e^{−2πi/5} = fft5c1 − i·fft5s1, W_5² = fft5c2 − i·fft5s2.
var (
	fft5c1, fft5s1 = math.Cos(2 * math.Pi / 5), math.Sin(2 * math.Pi / 5)
	fft5c2, fft5s2 = math.Cos(4 * math.Pi / 5), math.Sin(4 * math.Pi / 5)
)

func scale(c float64, z complex128) complex128 { return complex(c*real(z), c*imag(z)) }

func minusI(z complex128) complex128 { return complex(imag(z), -real(z)) }
