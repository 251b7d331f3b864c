package analyzers

import (
	"math"
	"testing"

	"proctor/models"
)

// projectFace places the generic face at yaw/pitch (degrees, the pose network's signs) 600 units
// of the model's scale in front of a camera with focal length w, and returns its landmarks.
func projectFace(yaw, pitch float64, w, h int) models.Landmarks68 {
	// Yaw > 0 turns the face towards the image's left: rotate about Y (down) by yaw; pitch > 0
	// tilts it up: rotate about X by -pitch (Y points down).
	ry, rp := yaw*math.Pi/180, -pitch*math.Pi/180
	Ry := [3][3]float64{{math.Cos(ry), 0, math.Sin(ry)}, {0, 1, 0}, {-math.Sin(ry), 0, math.Cos(ry)}}
	Rx := [3][3]float64{{1, 0, 0}, {0, math.Cos(rp), -math.Sin(rp)}, {0, math.Sin(rp), math.Cos(rp)}}
	var lm models.Landmarks68
	f := float64(w)
	for i, m := range pnpModel {
		var a, b [3]float64
		for r := range 3 {
			a[r] = Rx[r][0]*m[0] + Rx[r][1]*m[1] + Rx[r][2]*m[2]
		}
		for r := range 3 {
			b[r] = Ry[r][0]*a[0] + Ry[r][1]*a[1] + Ry[r][2]*a[2]
		}
		b[2] += 6000
		lm[pnpLandmarks[i]] = [2]float32{float32(f*b[0]/b[2] + float64(w)/2), float32(f*b[1]/b[2] + float64(h)/2)}
	}
	return lm
}

func TestPoseFromLandmarks(t *testing.T) {
	for _, c := range [][2]float64{{0, 0}, {20, 0}, {-30, 0}, {0, 15}, {0, -20}, {40, 10}, {-50, -15}} {
		lm := projectFace(c[0], c[1], 640, 480)
		yaw, pitch, ok := poseFromLandmarks(&lm, 640, 480)
		if !ok || math.Abs(float64(yaw)-c[0]) > 1 || math.Abs(float64(pitch)-c[1]) > 1 {
			t.Errorf("pose %v: got yaw %.1f pitch %.1f ok %v", c, yaw, pitch, ok)
		}
	}
}
