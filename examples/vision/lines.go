package vision

import (
	"image"
	"math"
	"slices"
)

// Line is a straight line segment in image coordinates, where pixel (i, j)
// (counted from the image's top-left corner, whatever its Bounds().Min)
// covers [i, i+1) x [j, j+1) and its centre is (i+0.5, j+0.5). The zero
// value is the line x = 0.
//
// The infinite line is x·cos(Theta) + y·sin(Theta) = Rho with Theta in
// [0, π); Theta is the direction of the line's normal, which is the
// direction of the brightness gradient across it. (X0, Y0)-(X1, Y1) is the
// part of it that is seen (for a found line) or visible (for a true one).
type Line struct {
	Rho, Theta     float64
	X0, Y0, X1, Y1 float64
	// Votes is the number of edge pixels supporting a found line; 0 for
	// ground truth.
	Votes int
	// Kind is the room edge a ground-truth line is; EdgeUnknown for a
	// found line.
	Kind EdgeKind
}

// lineThrough returns the line through two points.
func lineThrough(x0, y0, x1, y1 float64) Line {
	theta := math.Atan2(x1-x0, -(y1 - y0)) // normal (dy, -dx) rotated into angle form
	theta = wrapPi(theta)
	return Line{
		Rho: x0*math.Cos(theta) + y0*math.Sin(theta), Theta: theta,
		X0: x0, Y0: y0, X1: x1, Y1: y1,
	}
}

// wrapPi maps an angle to [0, π).
func wrapPi(a float64) float64 {
	a = math.Mod(a, math.Pi)
	if a < 0 {
		a += math.Pi
	}
	if a >= math.Pi {
		a = 0
	}
	return a
}

// Length is the length of the segment in pixels.
func (l Line) Length() float64 { return math.Hypot(l.X1-l.X0, l.Y1-l.Y0) }

// Dist is the distance, in pixels, from (x, y) to the infinite line.
func (l Line) Dist(x, y float64) float64 {
	return math.Abs(l.signedDist(x, y))
}

// signedDist is the distance from (x, y) to the line, positive on the side
// its normal points to.
func (l Line) signedDist(x, y float64) float64 {
	return x*math.Cos(l.Theta) + y*math.Sin(l.Theta) - l.Rho
}

// IsVertical reports whether the line is within tol radians of vertical in
// the image.
func (l Line) IsVertical(tol float64) bool { return angleDiff(l.Theta, 0) <= tol }

// XAt returns the x at which the infinite line crosses row y; ok is false
// for a horizontal line.
func (l Line) XAt(y float64) (x float64, ok bool) {
	c := math.Cos(l.Theta)
	if math.Abs(c) < 1e-9 {
		return 0, false
	}
	return (l.Rho - y*math.Sin(l.Theta)) / c, true
}

// YAt returns the y at which the infinite line crosses column x; ok is false
// for a vertical line.
func (l Line) YAt(x float64) (y float64, ok bool) {
	s := math.Sin(l.Theta)
	if math.Abs(s) < 1e-9 {
		return 0, false
	}
	return (l.Rho - x*math.Cos(l.Theta)) / s, true
}

// angleDiff is the difference between two line orientations, in [0, π/2].
func angleDiff(a, b float64) float64 {
	d := math.Abs(wrapPi(a) - wrapPi(b))
	return math.Min(d, math.Pi-d)
}

// LineOptions tunes FindLines. The zero value is valid: every zero field
// takes the default written beside it, chosen for 160x120 frames of the
// synthetic room.
type LineOptions struct {
	// EdgeThreshold is the smallest Sobel gradient magnitude (on the
	// lightly blurred image, grey levels per pixel x 4) that counts as an
	// edge (default 40: a step of about 12 grey levels). Floor grout and
	// panel seams stay below it; the room's edges stay above.
	EdgeThreshold float64
	// MinVotes is the fewest edge pixels a line must have (default 18).
	MinVotes int
	// MinLength is the shortest segment reported, in pixels (default 20,
	// the same as MinTruthLength).
	MinLength float64
	// MaxGap is the longest run of missing edge pixels a segment may
	// bridge (default 5).
	MaxGap float64
	// MaxLines caps the number of lines returned (default 16; a box room
	// shows at most 9 edges at once).
	MaxLines int
	// AngleSpread is how far, in radians, a line may lean from an edge
	// pixel's gradient direction and still collect its vote (default 8°).
	// Voting only near the gradient direction is what makes the transform
	// cheap and clean.
	AngleSpread float64
}

func (o LineOptions) withDefaults() LineOptions {
	if o.EdgeThreshold <= 0 {
		o.EdgeThreshold = 40
	}
	if o.MinVotes <= 0 {
		o.MinVotes = 18
	}
	if o.MinLength <= 0 {
		o.MinLength = MinTruthLength
	}
	if o.MaxGap <= 0 {
		o.MaxGap = 5
	}
	if o.MaxLines <= 0 {
		o.MaxLines = 16
	}
	if o.AngleSpread <= 0 {
		o.AngleSpread = 8 * math.Pi / 180
	}
	return o
}

// edgel is one edge pixel: its centre and gradient orientation.
type edgel struct {
	x, y  float64
	theta float64 // gradient direction in [0, π)
	bin   int     // theta bin
	used  bool
}

// houghBins is the angular resolution of the accumulator: one degree.
const houghBins = 180

// inlierDist is how far, in pixels, an edge pixel may be from a line and
// still belong to it: half a pixel of quantisation plus anti-aliasing.
const inlierDist = 1.5

// FindLines finds straight edges: a 3x3 blur, Sobel gradients, thinning by
// non-maximum suppression along the gradient, a Hough transform in which each
// edge pixel votes only for orientations near its gradient, and then, strongest
// peak first, collection of the peak's edge pixels, a least-squares fit and
// the longest run with gaps no longer than MaxGap. The edge pixels of each
// accepted line are withdrawn from the accumulator before the next peak is
// taken, which suppresses the neighbours of a peak better than a fixed
// window. Lines come strongest first. FindLines is pure and safe for
// concurrent use.
func FindLines(img *image.Gray, opts LineOptions) []Line {
	o := opts.withDefaults()
	edges := detectEdges(img, o.EdgeThreshold)
	if len(edges) == 0 {
		return nil
	}
	b := img.Bounds()
	diag := math.Hypot(float64(b.Dx()), float64(b.Dy()))
	nRho := 2*int(math.Ceil(diag)) + 1
	off := int(math.Ceil(diag))
	var cosT, sinT [houghBins]float64
	for k := range houghBins {
		cosT[k], sinT[k] = math.Cos(float64(k)*math.Pi/houghBins), math.Sin(float64(k)*math.Pi/houghBins)
	}
	spread := int(math.Ceil(o.AngleSpread * houghBins / math.Pi))
	acc := make([]int32, houghBins*nRho)
	vote := func(e *edgel, delta int32) {
		for dk := -spread; dk <= spread; dk++ {
			k := (e.bin + dk + houghBins) % houghBins
			r := int(math.Round(e.x*cosT[k]+e.y*sinT[k])) + off
			acc[k*nRho+r] += delta
		}
	}
	for i := range edges {
		vote(&edges[i], 1)
	}

	var lines []Line
	var inl []int
	for iter := 0; len(lines) < o.MaxLines && iter < 4*o.MaxLines+32; iter++ {
		best, bi := int32(0), -1
		for i, v := range acc {
			if v > best {
				best, bi = v, i
			}
		}
		if int(best) < o.MinVotes {
			break
		}
		k, r := bi/nRho, bi%nRho
		l := Line{Theta: float64(k) * math.Pi / houghBins, Rho: float64(r - off)}
		// Gather, fit, and gather again with the fitted line: the peak
		// bin is only accurate to a degree and a pixel.
		inl = gather(edges, l, o.AngleSpread, inl[:0])
		if len(inl) >= 2 {
			l = fitLine(edges, inl, l)
			inl = gather(edges, l, o.AngleSpread, inl[:0])
		}
		run := longestRun(edges, inl, l, o.MaxGap)
		if len(run) >= o.MinVotes {
			l = fitLine(edges, run, l)
			if seg, ok := segmentOf(edges, run, l); ok && seg.Length() >= o.MinLength {
				seg.Votes = len(run)
				lines = append(lines, seg)
				inl = run
			}
		}
		if len(inl) == 0 {
			acc[bi] = 0 // a peak no edge pixel sits on: rounding; drop it
			continue
		}
		// Withdraw the votes: of the accepted run, or of a rejected
		// candidate's scattered pixels, which are texture, not a line.
		for _, i := range inl {
			edges[i].used = true
			vote(&edges[i], -1)
		}
	}
	return lines
}

// detectEdges returns the thinned edge pixels of img whose gradient magnitude
// is at least thr.
func detectEdges(img *image.Gray, thr float64) []edgel {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w < 3 || h < 3 {
		return nil
	}
	// 3x3 binomial blur: suppresses sensor noise and texture speckle
	// without moving edges.
	tmp := make([]float32, w*h)
	blur := make([]float32, w*h)
	for y := range h {
		row := img.Pix[(y)*img.Stride:]
		for x := range w {
			l, r := max(x-1, 0), min(x+1, w-1)
			tmp[y*w+x] = (float32(row[l]) + 2*float32(row[x]) + float32(row[r])) / 4
		}
	}
	for y := range h {
		u, d := max(y-1, 0), min(y+1, h-1)
		for x := range w {
			blur[y*w+x] = (tmp[u*w+x] + 2*tmp[y*w+x] + tmp[d*w+x]) / 4
		}
	}
	gx := make([]float32, w*h)
	gy := make([]float32, w*h)
	mag := make([]float32, w*h)
	for y := 1; y < h-1; y++ {
		for x := 1; x < w-1; x++ {
			p := func(dx, dy int) float32 { return blur[(y+dy)*w+x+dx] }
			sx := p(1, -1) + 2*p(1, 0) + p(1, 1) - p(-1, -1) - 2*p(-1, 0) - p(-1, 1)
			sy := p(-1, 1) + 2*p(0, 1) + p(1, 1) - p(-1, -1) - 2*p(0, -1) - p(1, -1)
			i := y*w + x
			gx[i], gy[i] = sx, sy
			mag[i] = float32(math.Hypot(float64(sx), float64(sy)))
		}
	}
	var edges []edgel
	t := float32(thr)
	// Magnitudes on the outermost pixels are left at zero, so these
	// comparisons stay inside the image.
	for y := 1; y < h-1; y++ {
		for x := 1; x < w-1; x++ {
			i := y*w + x
			m := mag[i]
			if m < t {
				continue
			}
			// Non-maximum suppression across the edge, with the
			// gradient quantised to one of four directions.
			a := math.Atan2(float64(gy[i]), float64(gx[i]))
			a = wrapPi(a)
			var dx, dy int
			switch {
			case a < math.Pi/8 || a >= 7*math.Pi/8:
				dx, dy = 1, 0
			case a < 3*math.Pi/8:
				dx, dy = 1, 1
			case a < 5*math.Pi/8:
				dx, dy = 0, 1
			default:
				dx, dy = -1, 1
			}
			if m < mag[i+dy*w+dx] || m <= mag[i-dy*w-dx] {
				continue
			}
			edges = append(edges, edgel{
				x: float64(x) + 0.5, y: float64(y) + 0.5, theta: a,
				bin: int(math.Round(a*houghBins/math.Pi)) % houghBins,
			})
		}
	}
	return edges
}

// gather appends the indexes of unused edge pixels on l whose gradient agrees
// with its normal.
func gather(edges []edgel, l Line, spread float64, dst []int) []int {
	c, s := math.Cos(l.Theta), math.Sin(l.Theta)
	for i := range edges {
		e := &edges[i]
		if e.used || math.Abs(e.x*c+e.y*s-l.Rho) > inlierDist || angleDiff(e.theta, l.Theta) > spread {
			continue
		}
		dst = append(dst, i)
	}
	return dst
}

// fitLine fits a line to the edge pixels idx by total least squares; prev
// supplies the orientation when the points are degenerate.
func fitLine(edges []edgel, idx []int, prev Line) Line {
	var mx, my float64
	for _, i := range idx {
		mx += edges[i].x
		my += edges[i].y
	}
	n := float64(len(idx))
	mx, my = mx/n, my/n
	var sxx, syy, sxy float64
	for _, i := range idx {
		dx, dy := edges[i].x-mx, edges[i].y-my
		sxx += dx * dx
		syy += dy * dy
		sxy += dx * dy
	}
	if sxx+syy == 0 {
		return prev
	}
	dir := 0.5 * math.Atan2(2*sxy, sxx-syy) // principal direction
	theta := wrapPi(dir + math.Pi/2)
	return Line{Theta: theta, Rho: mx*math.Cos(theta) + my*math.Sin(theta)}
}

// longestRun returns the edge pixels of idx forming the longest stretch along
// l with no gap above maxGap.
func longestRun(edges []edgel, idx []int, l Line, maxGap float64) []int {
	if len(idx) == 0 {
		return nil
	}
	c, s := math.Cos(l.Theta), math.Sin(l.Theta)
	along := func(i int) float64 { return -edges[i].x*s + edges[i].y*c }
	slices.SortFunc(idx, func(a, b int) int {
		da, db := along(a), along(b)
		switch {
		case da < db:
			return -1
		case da > db:
			return 1
		}
		return 0
	})
	bestLo, bestHi, lo := 0, 0, 0
	bestLen := -1.0
	for i := 1; i <= len(idx); i++ {
		if i == len(idx) || along(idx[i])-along(idx[i-1]) > maxGap {
			if ln := along(idx[i-1]) - along(idx[lo]); ln > bestLen {
				bestLen, bestLo, bestHi = ln, lo, i
			}
			lo = i
		}
	}
	return idx[bestLo:bestHi]
}

// segmentOf returns l with endpoints at the extreme projections of the run.
func segmentOf(edges []edgel, run []int, l Line) (Line, bool) {
	if len(run) < 2 {
		return l, false
	}
	c, s := math.Cos(l.Theta), math.Sin(l.Theta)
	t0, t1 := math.Inf(1), math.Inf(-1)
	for _, i := range run {
		t := -edges[i].x*s + edges[i].y*c
		t0, t1 = math.Min(t0, t), math.Max(t1, t)
	}
	// Point on the line at parameter t: foot of the normal plus t along.
	px, py := l.Rho*c, l.Rho*s
	l.X0, l.Y0 = px-t0*s, py+t0*c
	l.X1, l.Y1 = px-t1*s, py+t1*c
	return l, true
}

// Line-matching tolerances used by LineQuality: an angle of 3° and a
// distance of 3 pixels at 160x120, about 2% of the image width.
const (
	MatchAngle   = 3 * math.Pi / 180
	MatchDist    = 3.0
	MatchOverlap = 0.5
)

// LineQuality is the fraction of truth lines that some found line matches:
// orientation within MatchAngle, the true segment's midpoint within
// MatchDist pixels of the found line, and the found segment covering at least
// MatchOverlap of the true segment's length. With no truth lines it is 1.
func LineQuality(found, truth []Line) float64 {
	if len(truth) == 0 {
		return 1
	}
	matched := 0
	for _, t := range truth {
		for _, f := range found {
			if matchLine(f, t) {
				matched++
				break
			}
		}
	}
	return float64(matched) / float64(len(truth))
}

func matchLine(f, t Line) bool {
	if angleDiff(f.Theta, t.Theta) > MatchAngle {
		return false
	}
	if f.Dist((t.X0+t.X1)/2, (t.Y0+t.Y1)/2) > MatchDist {
		return false
	}
	ln := t.Length()
	if ln == 0 {
		return true
	}
	ux, uy := (t.X1-t.X0)/ln, (t.Y1-t.Y0)/ln
	a := (f.X0-t.X0)*ux + (f.Y0-t.Y0)*uy
	b := (f.X1-t.X0)*ux + (f.Y1-t.Y0)*uy
	if a > b {
		a, b = b, a
	}
	overlap := math.Min(b, ln) - math.Max(a, 0)
	return overlap >= MatchOverlap*ln
}
