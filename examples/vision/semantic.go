package vision

import (
	"image"
	"math"
	"slices"
)

// Thresholds of the appearance test in Semantic, in grey levels.
const (
	// otherResidual is how far a pixel must lie from its plane's
	// brightness model to be something else on the plane. Texture (tiles,
	// seams, ±5%) and the curvature of the lamp's pool of light that a
	// linear model misses stay within ~15 levels; doors, windows and
	// pictures differ from their wall by 40 or more.
	otherResidual = 25
	// minFitArea is the smallest plane, in pixels, whose brightness model
	// is worth fitting.
	minFitArea = 64
)

// Semantic labels every pixel floor, wall or other. It starts from the planes
// SegmentPlanes found (floor planes are floor, wall planes wall, the ceiling
// and any pixel no plane covers other), then looks at appearance: it fits
// each floor and wall plane's brightness with a plane in (x, y) by least
// squares, twice discarding outliers, and labels other the pixels that lie
// more than 25 grey levels off the fit in the majority of their 3x3
// neighbourhood: a door, a window, a picture. Semantic is pure and safe for
// concurrent use.
func Semantic(img *image.Gray, planes []Plane) Labels {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	lab := NewLabels(w, h)
	for i := range lab.L {
		lab.L[i] = LabelOther
	}
	odd := make([]bool, w*h) // off its plane's brightness model
	for _, p := range planes {
		var l Label
		switch p.Kind {
		case PlaneFloor:
			l = LabelFloor
		case PlaneWall:
			l = LabelWall
		default:
			continue
		}
		for y := range h {
			row := p.Mask.Pix[y*p.Mask.Stride:]
			for x := range w {
				if row[x] != 0 {
					lab.L[y*w+x] = l
				}
			}
		}
		if p.Area < minFitArea {
			continue
		}
		m := fitBrightness(img, p, wallReference(p))
		for y := range h {
			row := p.Mask.Pix[y*p.Mask.Stride:]
			pix := img.Pix[y*img.Stride:]
			for x := range w {
				if row[x] != 0 && math.Abs(float64(pix[x])-m.at(x, y)) > otherResidual {
					odd[y*w+x] = true
				}
			}
		}
	}
	// Majority vote in 3x3: removes lone noisy pixels and half-covered
	// pixels along the plane's own edges.
	for y := range h {
		for x := range w {
			if lab.L[y*w+x] == LabelOther {
				continue
			}
			n := 0
			for dy := -1; dy <= 1; dy++ {
				for dx := -1; dx <= 1; dx++ {
					xx, yy := x+dx, y+dy
					if xx >= 0 && yy >= 0 && xx < w && yy < h && odd[yy*w+xx] {
						n++
					}
				}
			}
			if n >= 5 {
				lab.L[y*w+x] = LabelOther
			}
		}
	}
	return lab
}

// wallReference returns which pixels of p show the wall itself, to fit its
// brightness on. A door or a window is bounded by inner verticals on both
// sides, so on a wall plane only the strips between the plane's sides and
// its first and last inner vertical are surely wall; this matters when a door
// or a window is as wide as the wall beside it, where a fit over the whole
// plane could take the door for the wall. Other planes use all their pixels.
func wallReference(p Plane) func(x, y int) bool {
	if p.Kind != PlaneWall || len(p.Inner) == 0 {
		return func(int, int) bool { return true }
	}
	first, last := p.Inner[0], p.Inner[len(p.Inner)-1]
	return func(x, y int) bool {
		py, px := float64(y)+0.5, float64(x)+0.5
		xf, _ := first.XAt(py)
		xl, _ := last.XAt(py)
		return px < xf || px > xl
	}
}

// brightness is a linear model of brightness over the image: a + bx·x + by·y.
type brightness struct{ a, bx, by float64 }

func (m brightness) at(x, y int) float64 { return m.a + m.bx*float64(x) + m.by*float64(y) }

// fitBrightness fits a brightness model to the pixels of p for which ref is
// true, sampling every other pixel. Each of three rounds drops the pixels more than 3 robust
// standard deviations (at least 8 levels) off the current model and fits the
// rest, so that a door does not drag the wall's fit.
func fitBrightness(img *image.Gray, p Plane, ref func(x, y int) bool) brightness {
	b := img.Bounds()
	type sample struct{ x, y, v float64 }
	var pts []sample
	for y := 0; y < b.Dy(); y += 2 {
		for x := y / 2 % 2; x < b.Dx(); x += 2 {
			if p.Mask.Pix[y*p.Mask.Stride+x] != 0 && ref(x, y) {
				pts = append(pts, sample{float64(x), float64(y), float64(img.Pix[y*img.Stride+x])})
			}
		}
	}
	if len(pts) == 0 {
		return brightness{}
	}
	// Start from the median, which a door covering a minority of the wall
	// cannot move, then alternate rejecting outliers and fitting the
	// rest by least squares.
	vals := make([]float64, len(pts))
	for i, s := range pts {
		vals[i] = s.v
	}
	slices.Sort(vals)
	m := brightness{a: vals[len(vals)/2]}
	keep := make([]bool, len(pts))
	res := make([]float64, len(pts))
	for range 3 {
		for i, s := range pts {
			res[i] = math.Abs(s.v - m.at(int(s.x), int(s.y)))
		}
		copy(vals, res)
		slices.Sort(vals)
		cut := math.Max(8, 3*1.4826*vals[len(vals)/2])
		var n, mx, my float64
		for i, s := range pts {
			keep[i] = res[i] <= cut
			if keep[i] {
				n++
				mx += s.x
				my += s.y
			}
		}
		if n < 3 {
			break
		}
		// Normal equations in centred coordinates.
		mx, my = mx/n, my/n
		var sxx, sxy, syy, sxv, syv, sv float64
		for i, s := range pts {
			if !keep[i] {
				continue
			}
			dx, dy := s.x-mx, s.y-my
			sxx += dx * dx
			sxy += dx * dy
			syy += dy * dy
			sxv += dx * s.v
			syv += dy * s.v
			sv += s.v
		}
		var bx, by float64
		if det := sxx*syy - sxy*sxy; det > 1e-9 {
			bx = (sxv*syy - syv*sxy) / det
			by = (syv*sxx - sxv*sxy) / det
		}
		m = brightness{a: sv/n - bx*mx - by*my, bx: bx, by: by}
	}
	return m
}

// Quality is pixel accuracy: the fraction of pixels where got agrees with
// truth. Labels of different sizes, or empty ones, score 0.
func Quality(got, truth Labels) float64 {
	if got.W != truth.W || got.H != truth.H || len(got.L) != len(truth.L) || len(truth.L) == 0 {
		return 0
	}
	same := 0
	for i, l := range truth.L {
		if got.L[i] == l {
			same++
		}
	}
	return float64(same) / float64(len(truth.L))
}
