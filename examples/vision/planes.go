package vision

import (
	"image"
	"math"
	"slices"
)

// PlaneKind is the geometric role of an image region in a box room.
type PlaneKind uint8

const (
	// PlaneFloor is the horizontal plane below the horizon.
	PlaneFloor PlaneKind = iota
	// PlaneWall is a vertical plane between two corners.
	PlaneWall
	// PlaneCeiling is the horizontal plane above the horizon.
	PlaneCeiling
)

func (k PlaneKind) String() string {
	switch k {
	case PlaneFloor:
		return "floor"
	case PlaneWall:
		return "wall"
	case PlaneCeiling:
		return "ceiling"
	}
	return "unknown"
}

// Plane is one planar region of the image.
//
// Mask has the image's bounds and is 255 on the region's pixels and 0
// elsewhere; Area counts them. Planes returned by SegmentPlanes do not
// overlap and together cover the image. A Plane is not mutated after it is
// returned, so it may be shared between goroutines.
type Plane struct {
	Kind PlaneKind
	Mask *image.Alpha
	Area int
	// Lines are the found lines that bound the region: the corners on its
	// sides and the floor or ceiling edge above or below it.
	Lines []Line
	// Inner are vertical lines inside a wall region that are not corners
	// (another line crosses them): the sides of doors, windows and
	// pictures, left to right. Semantic uses them to tell the wall from
	// what hangs on it.
	Inner []Line
}

// Contains reports whether pixel (x, y) belongs to the plane.
func (p Plane) Contains(x, y int) bool {
	return p.Mask != nil && image.Pt(x, y).In(p.Mask.Rect) && p.Mask.AlphaAt(x, y).A != 0
}

// verticalTol is how far from vertical a corner may lean in the image. The
// camera never rolls and NewPath pitches it down at most 18°, so vertical room
// edges converge on a vanishing point far below the image and lean at most
// ~10° at the sides of a 60° view; floor edges seen from at least 1 m away
// from a wall lean at least ~30° from vertical.
const verticalTol = 12 * math.Pi / 180

// PlaneOptions tunes SegmentPlanes. The zero value is valid.
type PlaneOptions struct {
	// Horizon is the image row of the horizon, as a phone's IMU gives it
	// from gravity and Camera.Horizon computes it from a pose. Zero or
	// less means unknown: the middle row is used, which separates floor
	// edges from ceiling edges whenever the camera looks slightly down (for
	// the default room and camera floor edges then lie at least ~30 px below
	// the horizon and ceiling edges ~20 px above it).
	Horizon float64
}

// SegmentPlanes divides the image into floor, wall and ceiling regions using
// the lines FindLines found, under the box-room (Manhattan) assumption with an
// upright camera:
//
//  1. Near-vertical lines are wall-wall corners, unless another line crosses
//     them: in a box seen from inside no floor or ceiling edge crosses a
//     corner, while the floor edge runs on under the side of a door and
//     below a picture. The corners cut the image into slabs, each showing one
//     wall.
//  2. A non-vertical line that spans most of a slab (where the slab is in
//     the image) is an edge of that wall with the floor if it lies below the
//     horizon, with the ceiling if above. A room edge runs from corner to
//     corner with nothing hiding it, so the edges of doors and pictures,
//     which span only part of a wall, are left out by this test.
//  3. In each slab the floor edge is the lowest such line below the horizon
//     and the ceiling edge the highest above it: everything on a wall lies
//     between the two. Pixels below the floor edge are floor, above the
//     ceiling edge ceiling, and between them that slab's wall.
//
// The result is one floor plane, at most one ceiling plane and one wall plane
// per slab, in that order; empty regions are left out. img supplies only the
// size; the decision is geometric, which is what makes it cheap. SegmentPlanes
// is pure and safe for concurrent use.
func SegmentPlanes(img *image.Gray, lines []Line, opts PlaneOptions) []Plane {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w == 0 || h == 0 {
		return nil
	}
	fw, fh := float64(w), float64(h)
	midY := fh / 2
	horizon := opts.Horizon
	if horizon <= 0 {
		horizon = midY
	}

	// 1. Corners, left to right, merging near-duplicates.
	var verticals, others []Line
	for _, l := range lines {
		if l.IsVertical(verticalTol) {
			verticals = append(verticals, l)
		} else {
			others = append(others, l)
		}
	}
	var corners, inner []Line
	for _, v := range verticals {
		if crossedBy(v, others) {
			inner = append(inner, v)
		} else {
			corners = append(corners, v)
		}
	}
	xMid := func(l Line) float64 { x, _ := l.XAt(midY); return x }
	slices.SortFunc(corners, func(a, b Line) int { return cmpFloat(xMid(a), xMid(b)) })
	corners = slices.CompactFunc(corners, func(a, b Line) bool { return math.Abs(xMid(a)-xMid(b)) < 4 })

	// Slab s lies between corners[s-1] and corners[s] (the image edges
	// close the first and last).
	nSlab := len(corners) + 1
	slabX := func(s int, y float64) (float64, float64) {
		lo, hi := 0.0, fw
		if s > 0 {
			lo, _ = corners[s-1].XAt(y)
		}
		if s < len(corners) {
			hi, _ = corners[s].XAt(y)
		}
		return math.Max(lo, 0), math.Min(hi, fw)
	}

	// 2 and 3. Lines are compared by their height at the slab's centre.
	centre := make([]float64, nSlab)
	for s := range nSlab {
		lo, hi := slabX(s, midY)
		centre[s] = (lo + hi) / 2
	}
	floorOf := make([]*Line, nSlab)
	ceilOf := make([]*Line, nSlab)
	floorY := make([]float64, nSlab)
	ceilY := make([]float64, nSlab)
	for i := range others {
		l := &others[i]
		xmin, xmax := math.Min(l.X0, l.X1), math.Max(l.X0, l.X1)
		// The columns where the infinite line is inside the image: a
		// steep floor edge leaves through the bottom before it reaches
		// the slab's side.
		inLo, inHi := 0.0, fw
		if xa, ok := l.XAt(0); ok {
			xb, _ := l.XAt(fh)
			inLo, inHi = math.Max(0, math.Min(xa, xb)), math.Min(fw, math.Max(xa, xb))
		}
		ym := (l.Y0 + l.Y1) / 2
		for s := range nSlab {
			lo, hi := slabX(s, ym)
			lo, hi = math.Max(lo, inLo), math.Min(hi, inHi)
			if hi-lo < 4 {
				continue
			}
			over := math.Min(xmax, hi) - math.Max(xmin, lo)
			if over < minSpan*(hi-lo) {
				continue
			}
			y, ok := l.YAt(centre[s])
			switch {
			case !ok:
			case y >= horizon:
				if floorOf[s] == nil || y > floorY[s] {
					floorOf[s], floorY[s] = l, y
				}
			default:
				if ceilOf[s] == nil || y < ceilY[s] {
					ceilOf[s], ceilY[s] = l, y
				}
			}
		}
	}

	masks := make([]*image.Alpha, 2+nSlab) // floor, ceiling, walls...
	areas := make([]int, len(masks))
	for i := range masks {
		masks[i] = image.NewAlpha(b)
	}
	for y := 0; y < h; y++ {
		py := float64(y) + 0.5
		// Corner x positions on this row; slab index by counting.
		var xs [32]float64
		cx := xs[:0]
		for _, c := range corners {
			x, _ := c.XAt(py)
			cx = append(cx, x)
		}
		for x := 0; x < w; x++ {
			px := float64(x) + 0.5
			s := 0
			for s < len(cx) && cx[s] <= px {
				s++
			}
			region := 2 + s
			if f := floorOf[s]; f != nil {
				if fy, ok := f.YAt(px); ok && py > fy {
					region = 0
				}
			}
			if c := ceilOf[s]; c != nil && region != 0 {
				if cy, ok := c.YAt(px); ok && py < cy {
					region = 1
				}
			}
			masks[region].Pix[y*masks[region].Stride+x] = 255
			areas[region]++
		}
	}

	var planes []Plane
	for i, m := range masks {
		if areas[i] == 0 {
			continue
		}
		p := Plane{Mask: m, Area: areas[i]}
		switch {
		case i == 0:
			p.Kind = PlaneFloor
			for _, f := range floorOf {
				if f != nil {
					p.Lines = append(p.Lines, *f)
				}
			}
		case i == 1:
			p.Kind = PlaneCeiling
			for _, c := range ceilOf {
				if c != nil {
					p.Lines = append(p.Lines, *c)
				}
			}
		default:
			s := i - 2
			p.Kind = PlaneWall
			for _, v := range inner {
				// A side of a door belongs to the slab its middle is in.
				ym := (v.Y0 + v.Y1) / 2
				xm, _ := v.XAt(ym)
				if lo, hi := slabX(s, ym); xm > lo && xm < hi {
					p.Inner = append(p.Inner, v)
				}
			}
			slices.SortFunc(p.Inner, func(a, b Line) int { return cmpFloat(xMid(a), xMid(b)) })
			if s > 0 {
				p.Lines = append(p.Lines, corners[s-1])
			}
			if s < len(corners) {
				p.Lines = append(p.Lines, corners[s])
			}
			if floorOf[s] != nil {
				p.Lines = append(p.Lines, *floorOf[s])
			}
			if ceilOf[s] != nil {
				p.Lines = append(p.Lines, *ceilOf[s])
			}
		}
		planes = append(planes, p)
	}
	return planes
}

// minSpan is the fraction of a slab's visible width a line must cover to be
// taken for the slab's floor or ceiling edge. Room edges cover all of it
// (less a pixel or two at the image border and in the corner); a door, a
// window or a picture covers all of it only when the camera is close enough
// to fill the slab with it.
const minSpan = 0.7

// crossMargin is how far, in pixels, a line must reach past a vertical on
// both sides to count as crossing it.
const crossMargin = 6

// crossedBy reports whether any of lines crosses the infinite line v with at
// least crossMargin pixels of segment on each side.
func crossedBy(v Line, lines []Line) bool {
	for _, l := range lines {
		ln := l.Length()
		if ln < 2*crossMargin {
			continue
		}
		// Where l's infinite line meets v, as a parameter along l.
		dv0, dv1 := v.signedDist(l.X0, l.Y0), v.signedDist(l.X1, l.Y1)
		if dv0*dv1 >= 0 {
			continue // both ends on one side
		}
		t := dv0 / (dv0 - dv1) * ln
		if t >= crossMargin && ln-t >= crossMargin {
			return true
		}
	}
	return false
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
