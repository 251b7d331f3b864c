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
		even := (zk + zc) / 2
		odd := (zk - zc) / complex(0, 2)
		tw := complex(-1, 0) // e^{-iπ} at k = 200
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
// and 5 (200 = 4·2·5·5 here), with twiddles computed once.
type fftPlan struct {
	n       int
	factors []int
	tw      []complex128 // e^{-2πik/n}
	tmp     []complex128
}

func newFFTPlan(n int) *fftPlan {
	p := &fftPlan{n: n, tw: make([]complex128, n), tmp: make([]complex128, n)}
	for k := range p.tw {
		p.tw[k] = cmplx.Exp(complex(0, -2*math.Pi*float64(k)/float64(n)))
	}
	for r := n; r > 1; {
		f := 0
		for _, c := range []int{4, 2, 3, 5} {
			if r%c == 0 {
				f = c
				break
			}
		}
		if f == 0 {
			panic("fftPlan: size must factor into 2, 3, 4 and 5")
		}
		p.factors = append(p.factors, f)
		r /= f
	}
	return p
}

// transform writes the DFT of src to dst (len n each, distinct).
func (p *fftPlan) transform(dst, src []complex128) { p.rec(dst, src, p.n, 1, 0) }

func (p *fftPlan) rec(dst, src []complex128, n, stride, level int) {
	if n == 1 {
		dst[0] = src[0]
		return
	}
	f := p.factors[level]
	m := n / f
	for r := range f {
		p.rec(dst[r*m:(r+1)*m], src[r*stride:], m, stride*f, level+1)
	}
	// Butterflies: X[k + q m] = Σ_r W_n^{r(k + q m)} Y_r[k]; W_n = tw[stride·…] of the full size.
	var t [5]complex128
	for k := range m {
		for r := range f {
			t[r] = dst[r*m+k] * p.tw[(r*k*stride)%p.n]
		}
		for q := range f {
			var s complex128
			for r := range f {
				s += t[r] * p.tw[(r*q*m*stride)%p.n]
			}
			p.tmp[k+q*m] = s
		}
	}
	copy(dst[:n], p.tmp[:n])
}
