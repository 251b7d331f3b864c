package analyzers

import (
	"math"

	"proctor/models"
)

// Head pose from the 68 landmarks the landmarks analyzer already found: the pose of a generic
// 3D face (six points) that projects best onto six of the landmarks, found by Gauss-Newton on
// the reprojection error (a perspective-n-point solve; gocv v0.31 has no SolvePnP). Microseconds
// instead of the pose network's ~5 ms; docs/vision.md compares the two.

// pnpModel is the generic face, X right, Y down, Z away from the camera, nose tip at the origin
// (the widely used six-point model, in its arbitrary units ~0.15 mm), and pnpLandmarks the
// iBUG-300W indices of the same points: nose tip, chin, outer eye corners, mouth corners.
var (
	pnpModel = [6][3]float64{
		{0, 0, 0}, {0, 330, 65}, {-225, -170, 135}, {225, -170, 135}, {-150, 150, 125}, {150, 150, 125},
	}
	pnpLandmarks = [6]int{30, 8, 36, 45, 48, 54}
)

// poseFromLandmarks returns yaw and pitch in degrees (the pose network's signs: yaw > 0 turned
// towards the image's left, pitch > 0 tilted up) of a face whose landmarks lm are in an image
// w×h pixels, with a focal length of the image width (a laptop camera's ~60° field of view).
func poseFromLandmarks(lm *models.Landmarks68, w, h int) (yaw, pitch float32, ok bool) {
	f := float64(w)
	cx, cy := float64(w)/2, float64(h)/2
	var img [6][2]float64
	for i, k := range pnpLandmarks {
		img[i] = [2]float64{float64(lm[k][0]) - cx, float64(lm[k][1]) - cy}
	}
	// Start facing the camera at the distance that gives the eye corners their spread.
	eye := math.Hypot(img[3][0]-img[2][0], img[3][1]-img[2][1])
	if eye < 4 {
		return 0, 0, false
	}
	z := f * 450 / eye
	p := [6]float64{0, 0, 0, img[0][0] * z / f, img[0][1] * z / f, z} // rotation vector, translation
	residuals := func(p [6]float64, r *[12]float64) bool {
		R := rodrigues(p[0], p[1], p[2])
		for i, m := range pnpModel {
			X := R[0][0]*m[0] + R[0][1]*m[1] + R[0][2]*m[2] + p[3]
			Y := R[1][0]*m[0] + R[1][1]*m[1] + R[1][2]*m[2] + p[4]
			Z := R[2][0]*m[0] + R[2][1]*m[1] + R[2][2]*m[2] + p[5]
			if Z <= 1 {
				return false
			}
			r[2*i], r[2*i+1] = f*X/Z-img[i][0], f*Y/Z-img[i][1]
		}
		return true
	}
	var r0, r1 [12]float64
	lambda := 1e-3
	for range 30 {
		if !residuals(p, &r0) {
			return 0, 0, false
		}
		// Numeric Jacobian: 6 columns, forward differences.
		var J [12][6]float64
		for j := range 6 {
			q := p
			step := 1e-4
			if j >= 3 {
				step = 1e-2 * max(1, math.Abs(p[j])*1e-3)
			}
			q[j] += step
			if !residuals(q, &r1) {
				return 0, 0, false
			}
			for i := range 12 {
				J[i][j] = (r1[i] - r0[i]) / step
			}
		}
		// Levenberg-Marquardt step: (JᵀJ + λ diag) δ = -Jᵀr.
		var A [6][6]float64
		var g [6]float64
		for i := range 12 {
			for a := range 6 {
				g[a] -= J[i][a] * r0[i]
				for b := range 6 {
					A[a][b] += J[i][a] * J[i][b]
				}
			}
		}
		for a := range 6 {
			A[a][a] *= 1 + lambda
		}
		d, solved := solve6(A, g)
		if !solved {
			return 0, 0, false
		}
		q := p
		for j := range 6 {
			q[j] += d[j]
		}
		if residuals(q, &r1) && sumSq(&r1) < sumSq(&r0) {
			p, lambda = q, lambda/3
			if math.Abs(d[0])+math.Abs(d[1])+math.Abs(d[2]) < 1e-6 {
				break
			}
		} else {
			lambda *= 10
		}
	}
	R := rodrigues(p[0], p[1], p[2])
	// The face's forward direction (out of the face, towards the camera when frontal).
	vx, vy, vz := -R[0][2], -R[1][2], -R[2][2]
	yaw = float32(math.Atan2(-vx, -vz) * 180 / math.Pi)
	pitch = float32(math.Atan2(-vy, math.Hypot(vx, vz)) * 180 / math.Pi)
	return yaw, pitch, true
}

func sumSq(r *[12]float64) float64 {
	s := 0.0
	for _, v := range r {
		s += v * v
	}
	return s
}

// rodrigues turns a rotation vector into a rotation matrix.
func rodrigues(x, y, z float64) [3][3]float64 {
	th := math.Sqrt(x*x + y*y + z*z)
	if th < 1e-12 {
		return [3][3]float64{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}
	}
	kx, ky, kz := x/th, y/th, z/th
	c, s := math.Cos(th), math.Sin(th)
	v := 1 - c
	return [3][3]float64{
		{c + kx*kx*v, kx*ky*v - kz*s, kx*kz*v + ky*s},
		{ky*kx*v + kz*s, c + ky*ky*v, ky*kz*v - kx*s},
		{kz*kx*v - ky*s, kz*ky*v + kx*s, c + kz*kz*v},
	}
}

// solve6 solves A x = b by Gaussian elimination with partial pivoting.
func solve6(A [6][6]float64, b [6]float64) ([6]float64, bool) {
	for c := range 6 {
		p := c
		for r := c + 1; r < 6; r++ {
			if math.Abs(A[r][c]) > math.Abs(A[p][c]) {
				p = r
			}
		}
		if math.Abs(A[p][c]) < 1e-18 {
			return b, false
		}
		A[c], A[p] = A[p], A[c]
		b[c], b[p] = b[p], b[c]
		for r := c + 1; r < 6; r++ {
			k := A[r][c] / A[c][c]
			for j := c; j < 6; j++ {
				A[r][j] -= k * A[c][j]
			}
			b[r] -= k * b[c]
		}
	}
	var x [6]float64
	for r := 5; r >= 0; r-- {
		s := b[r]
		for j := r + 1; j < 6; j++ {
			s -= A[r][j] * x[j]
		}
		x[r] = s / A[r][r]
	}
	return x, true
}
