package vision

import (
	"image"
	"math"
)

// Lighting is a cheap summary of how a view is lit.
//
// The zero value means a black image with no gradient.
type Lighting struct {
	// Mean is the mean brightness, 0 (black) to 1 (white).
	Mean float64
	// Direction is the image direction, in radians, in which brightness
	// grows fastest (0 = towards +x, π/2 = towards +y, i.e. down the
	// image): where the light falls from.
	Direction float64
	// Gradient is how fast brightness grows in that direction, in
	// brightness units (0..1) per image width.
	Gradient float64
}

// EstimateLighting fits a plane, brightness = a + b·x + c·y, to the 8x8 block
// means of img by least squares: the mean is a's value at the centre and
// (b, c) the dominant gradient. Fitting the thumbnail rather than every
// pixel keeps it cheap enough for a persona to run often, and
// the fit's averaging makes it indifferent to edges and texture. It is pure
// and safe for concurrent use.
func EstimateLighting(img *image.Gray) Lighting {
	b := img.Bounds()
	bw, bh := b.Dx()/noveltyBlock, b.Dy()/noveltyBlock
	if bw == 0 || bh == 0 {
		return Lighting{}
	}
	th := thumbnail(img)
	// Centred coordinates make the normal equations diagonal: x and y
	// are uncorrelated on a full grid.
	cx, cy := float64(bw-1)/2, float64(bh-1)/2
	var sum, sx, sy, sxx, syy float64
	for j := range bh {
		for i := range bw {
			v := th[j*bw+i] / 255
			x, y := float64(i)-cx, float64(j)-cy
			sum += v
			sx += v * x
			sy += v * y
			sxx += x * x
			syy += y * y
		}
	}
	n := float64(bw * bh)
	var gx, gy float64 // per block
	if sxx > 0 {
		gx = sx / sxx
	}
	if syy > 0 {
		gy = sy / syy
	}
	return Lighting{
		Mean:      sum / n,
		Direction: math.Atan2(gy, gx),
		Gradient:  math.Hypot(gx, gy) * float64(bw),
	}
}
