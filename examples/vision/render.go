package vision

import (
	"image"
	"math"
	"time"
)

// Room is a box-shaped room: floor at Y=0, ceiling at Y=Height, walls at
// X=±Width/2 and Z=±Depth/2 (metres), with flat Panels (doors, windows,
// pictures) on the walls. Each wall has its own paint so that two walls
// meeting in a corner differ in brightness, as real rooms lit by a window do.
//
// The zero Room is valid: a bare 6 m x 5 m x 2.6 m box. DefaultRoom adds a
// door, a window and a picture, which the semantic segmenter must label
// "other". A Room is a value and safe for concurrent use as long as nobody
// mutates Panels.
type Room struct {
	Width, Depth, Height float64
	Panels               []Panel
}

// Panel is a flat rectangle on a wall: a door, a window, a picture. It
// changes only the paint, so it hides no room edge, but its own edges are
// lines that are not room edges, and its pixels are labelled LabelOther.
//
// Walls are numbered 0 to 3 going round the room through the corners
// (-W/2,-D/2), (W/2,-D/2), (W/2,D/2), (-W/2,D/2): 0 is Z=-Depth/2, 1 is
// X=+Width/2, 2 is Z=+Depth/2, 3 is X=-Width/2. Along is measured from the
// wall's first corner in that order, Bottom from the floor, in metres.
type Panel struct {
	Wall                         int
	Along, Bottom, Width, Height float64
	// Paint is the panel's albedo, 0 to 1.
	Paint float64
}

// DefaultRoom is the room the vision example walks through: the zero Room
// with a door, a window and a dark picture.
func DefaultRoom() Room {
	return Room{Panels: []Panel{
		{Wall: 2, Along: 1.2, Bottom: 0, Width: 0.9, Height: 2.05, Paint: 0.55}, // door
		{Wall: 1, Along: 1.4, Bottom: 0.9, Width: 1.4, Height: 1.1, Paint: 1.0}, // window
		{Wall: 0, Along: 3.4, Bottom: 1.1, Width: 0.9, Height: 0.6, Paint: 0.2}, // picture
	}}
}

func (r Room) withDefaults() Room {
	if r.Width <= 0 {
		r.Width = 6
	}
	if r.Depth <= 0 {
		r.Depth = 5
	}
	if r.Height <= 0 {
		r.Height = 2.6
	}
	return r
}

// surface identifies one face of the room.
type surface uint8

const (
	floorSurf surface = iota
	ceilSurf
	wallXPos // X = +Width/2
	wallXNeg // X = -Width/2
	wallZPos // Z = +Depth/2
	wallZNeg // Z = -Depth/2
)

// Camera is a pinhole camera with square pixels and no lens distortion.
//
// The zero Camera is valid: 160x120 pixels (small so that a whole pipeline
// runs in milliseconds), 60° horizontal field of view, 30 frames a second
// (the rate), sensor noise of ±3 grey levels. A Camera is a value and
// safe for concurrent use. Most callers want Capture.
type Camera struct {
	W, H int
	// FOV is the horizontal field of view in radians.
	FOV float64
	// FPS is the frame rate Capture uses to turn a sequence number into a
	// time on the path.
	FPS int
	// Noise is the amplitude of uniform sensor noise in grey levels; a
	// negative value disables noise.
	Noise float64
	// Seed selects the noise pattern.
	Seed uint64
}

func (c Camera) withDefaults() Camera {
	if c.W <= 0 {
		c.W = 160
	}
	if c.H <= 0 {
		c.H = 120
	}
	if c.FOV <= 0 {
		c.FOV = 60 * math.Pi / 180
	}
	if c.FPS <= 0 {
		c.FPS = 30
	}
	if c.Noise == 0 {
		c.Noise = 3
	}
	return c
}

// focal is the focal length in pixels.
func (c Camera) focal() float64 { return float64(c.W) / 2 / math.Tan(c.FOV/2) }

// Frame is one camera image with the ground truth it was rendered from.
// Nothing in this package mutates a Frame after Render or Capture returns it,
// so frames may be shared between goroutines.
type Frame struct {
	// Seq is the frame's number and At its time on the path (Capture);
	// both are zero from Render.
	Seq int
	At  time.Duration
	// Pose is where the camera was. A pipeline may use its pitch, as an
	// AR phone knows its own from gravity (see Camera.Horizon), but not
	// its yaw or position.
	Pose  Pose
	Img   *image.Gray
	Truth Truth
}

// Truth is what a perfect pipeline would find in a frame.
type Truth struct {
	// Lines are the room's edges visible in the view (floor-wall,
	// ceiling-wall and wall-wall), clipped to the image less a 2-pixel
	// border that no edge detector sees, and at least MinTruthLength
	// pixels long. Line.Kind says which edge each is.
	Lines []Line
	// Labels is the class of the surface seen through each pixel centre.
	Labels Labels
}

// truthMargin is the border, in pixels, in which no edge detector with a
// 3x3 blur and a 3x3 gradient can see an edge; Truth leaves it out.
const truthMargin = 2

// MinTruthLength is the shortest visible edge, in pixels, that Truth lists:
// a shorter one holds too few edge pixels for any Hough transform to see,
// and FindLines' default MinLength is the same.
const MinTruthLength = 20

// EdgeKind says which room edge a ground-truth Line is.
type EdgeKind uint8

const (
	// EdgeUnknown marks a line found in an image rather than rendered.
	EdgeUnknown EdgeKind = iota
	EdgeFloorWall
	EdgeCeilingWall
	EdgeCorner // vertical edge where two walls meet
)

func (k EdgeKind) String() string {
	switch k {
	case EdgeFloorWall:
		return "floor-wall"
	case EdgeCeilingWall:
		return "ceiling-wall"
	case EdgeCorner:
		return "corner"
	}
	return "unknown"
}

// Label is the semantic class of a pixel.
type Label uint8

const (
	LabelUnknown Label = iota
	LabelFloor
	LabelWall
	// LabelOther is anything that is neither floor nor wall: here the
	// ceiling, doors, windows and pictures.
	LabelOther
)

func (l Label) String() string {
	switch l {
	case LabelFloor:
		return "floor"
	case LabelWall:
		return "wall"
	case LabelOther:
		return "other"
	}
	return "unknown"
}

// Labels holds one Label per pixel, row by row. The zero value is an empty
// 0x0 image. Labels are plain data: safe to share once no one writes them.
type Labels struct {
	W, H int
	L    []Label
}

// NewLabels returns w x h labels, all LabelUnknown.
func NewLabels(w, h int) Labels { return Labels{W: w, H: h, L: make([]Label, w*h)} }

// At returns the label of pixel (x, y), or LabelUnknown outside.
func (l Labels) At(x, y int) Label {
	if x < 0 || y < 0 || x >= l.W || y >= l.H {
		return LabelUnknown
	}
	return l.L[y*l.W+x]
}

// Capture renders frame seq of a walk along path: the pose at seq/FPS and
// fresh sensor noise for each seq, like a real camera.
func (c Camera) Capture(room Room, path Path, seq int) *Frame {
	c = c.withDefaults()
	at := time.Duration(seq) * time.Second / time.Duration(c.FPS)
	f := c.render(room, path.PoseAt(at), uint64(seq))
	f.Seq, f.At = seq, at
	return f
}

// Render renders the room seen from pose. It is deterministic: the same
// camera, room and pose give the same pixels (the noise pattern depends on
// Camera.Seed only; Capture varies it per frame).
func (c Camera) Render(room Room, pose Pose) *Frame {
	return c.withDefaults().render(room, pose, 0)
}

// render ray-casts every pixel with 2x2 supersampling for the image (so
// edges are anti-aliased, as a real sensor integrates over a pixel) and one
// ray through the pixel centre for the labels.
func (c Camera) render(room Room, pose Pose, frameSeed uint64) *Frame {
	room = room.withDefaults()
	f := c.focal()
	fwd, right, up := pose.basis()
	img := image.NewGray(image.Rect(0, 0, c.W, c.H))
	labels := NewLabels(c.W, c.H)
	cx, cy := float64(c.W)/2, float64(c.H)/2
	ray := func(u, v float64) Vec3 {
		return fwd.add(right.scale((u - cx) / f)).add(up.scale(-(v - cy) / f))
	}
	seed := mix(c.Seed, frameSeed)
	for y := 0; y < c.H; y++ {
		for x := 0; x < c.W; x++ {
			var sum float64
			for _, o := range [4][2]float64{{0.25, 0.25}, {0.75, 0.25}, {0.25, 0.75}, {0.75, 0.75}} {
				sum += room.shade(pose.Position, ray(float64(x)+o[0], float64(y)+o[1]))
			}
			g := 255 * sum / 4
			if c.Noise > 0 {
				g += c.Noise * (2*unitHash(seed, uint64(x), uint64(y)) - 1)
			}
			img.Pix[y*img.Stride+x] = uint8(math.Round(math.Max(0, math.Min(255, g))))
			s, p, _ := room.hit(pose.Position, ray(float64(x)+0.5, float64(y)+0.5))
			labels.L[y*c.W+x] = surfaceLabel(s)
			if room.panelAt(s, p) != nil {
				labels.L[y*c.W+x] = LabelOther
			}
		}
	}
	return &Frame{
		Pose: pose,
		Img:  img,
		Truth: Truth{
			Lines:  c.truthLines(room, pose),
			Labels: labels,
		},
	}
}

func surfaceLabel(s surface) Label {
	switch s {
	case floorSurf:
		return LabelFloor
	case ceilSurf:
		return LabelOther
	}
	return LabelWall
}

// hit returns the surface a ray from o (inside the room) along d meets first,
// the hit point and the surface's inward normal. Inside a box the first hit
// is the nearest of the three planes the ray heads for.
func (r Room) hit(o, d Vec3) (surface, Vec3, Vec3) {
	best := math.Inf(1)
	var s surface
	var n Vec3
	try := func(t float64, sf surface, normal Vec3) {
		if t > 0 && t < best {
			best, s, n = t, sf, normal
		}
	}
	if d.X > 0 {
		try((r.Width/2-o.X)/d.X, wallXPos, Vec3{-1, 0, 0})
	} else if d.X < 0 {
		try((-r.Width/2-o.X)/d.X, wallXNeg, Vec3{1, 0, 0})
	}
	if d.Y > 0 {
		try((r.Height-o.Y)/d.Y, ceilSurf, Vec3{0, -1, 0})
	} else if d.Y < 0 {
		try(-o.Y/d.Y, floorSurf, Vec3{0, 1, 0})
	}
	if d.Z > 0 {
		try((r.Depth/2-o.Z)/d.Z, wallZPos, Vec3{0, 0, -1})
	} else if d.Z < 0 {
		try((-r.Depth/2-o.Z)/d.Z, wallZNeg, Vec3{0, 0, 1})
	}
	return s, o.add(d.scale(best)), n
}

// Lighting model: ambient light, a directional light from a high window
// (lighting the floor and the two walls that face it) and a pool of light
// from a lamp that brightens everything near it. The lamp scales both sides
// of an edge alike, so the contrast across every edge keeps the sign and
// roughly the size the paint and window give it: the paint below is chosen
// so that any two surfaces that meet differ by at least ~25 grey levels,
// while texture stays under ~10 levels.
var (
	sunDir    = Vec3{0.55, 0.65, 0.25}.unit() // towards the window
	ambient   = 0.7
	sunGain   = 0.3
	exposure  = 1.3
	lampPos   = Vec3{1.2, 2.3, -0.8}
	lampRange = 2.5 // metres at which the pool of light has fallen halfway
)

// albedo is the paint of each surface before texture. Adjacent walls
// alternate between lighter and darker paint, the ceiling is white and
// brighter than any wall, the floor darker than any.
var albedo = [...]float64{
	floorSurf: 0.27,
	ceilSurf:  1.04,
	wallZNeg:  0.71, // faces the window
	wallXPos:  0.53,
	wallZPos:  0.70,
	wallXNeg:  0.45, // faces the window
}

// shade returns the brightness 0..1 seen along a ray.
func (r Room) shade(o, d Vec3) float64 {
	s, p, n := r.hit(o, d)
	light := ambient + sunGain*math.Max(0, n.dot(sunDir))
	dist := lampPos.sub(p).norm()
	pool := 0.8 + 0.4/(1+(dist*dist)/(lampRange*lampRange))
	paint := albedo[s] * r.texture(s, p)
	if pn := r.panelAt(s, p); pn != nil {
		paint = pn.Paint
	}
	return math.Min(1, exposure*paint*light*pool)
}

// wallIndex maps a wall surface to its Panel.Wall number.
var wallIndex = [...]int{floorSurf: -1, ceilSurf: -1, wallZNeg: 0, wallXPos: 1, wallZPos: 2, wallXNeg: 3}

// alongWall is the distance of p from wall s's first corner, following the
// numbering of Panel.Wall.
func (r Room) alongWall(s surface, p Vec3) float64 {
	switch s {
	case wallZNeg:
		return p.X + r.Width/2
	case wallXPos:
		return p.Z + r.Depth/2
	case wallZPos:
		return r.Width/2 - p.X
	case wallXNeg:
		return r.Depth/2 - p.Z
	}
	return 0
}

// panelAt returns the panel covering point p of surface s, if any.
func (r Room) panelAt(s surface, p Vec3) *Panel {
	if len(r.Panels) == 0 || s == floorSurf || s == ceilSurf {
		return nil
	}
	w, a := wallIndex[s], r.alongWall(s, p)
	for i := range r.Panels {
		pn := &r.Panels[i]
		if pn.Wall == w && a >= pn.Along && a < pn.Along+pn.Width && p.Y >= pn.Bottom && p.Y < pn.Bottom+pn.Height {
			return pn
		}
	}
	return nil
}

// texture gives surfaces low-contrast detail: floor tiles with grout and
// slightly different tiles, wall panels with thin seams. The contrast is kept
// well below that of the room's edges, as in a real room, so an edge detector
// must tell the two apart by strength and length.
func (r Room) texture(s surface, p Vec3) float64 {
	switch s {
	case floorSurf:
		const tile, grout = 0.6, 0.012
		ix, iz := math.Floor(p.X/tile), math.Floor(p.Z/tile)
		fx, fz := p.X/tile-ix, p.Z/tile-iz
		t := 1 + 0.05*(2*unitHash(7, uint64(int64(ix)), uint64(int64(iz)))-1)
		if fx < grout/tile || fz < grout/tile {
			t *= 0.88
		}
		return t
	case ceilSurf:
		return 1
	}
	// Walls: panels 1.2 m wide along the wall.
	along := r.alongWall(s, p)
	const panel, seam = 1.2, 0.01
	i := math.Floor(along / panel)
	t := 1 + 0.025*(2*unitHash(uint64(s), uint64(int64(i)), 3)-1)
	if along/panel-i < seam/panel {
		t *= 0.94
	}
	return t
}

// truthLines projects the room's 12 edges into the image.
func (c Camera) truthLines(room Room, pose Pose) []Line {
	w, d, h := room.Width/2, room.Depth/2, room.Height
	corners := [4][2]float64{{-w, -d}, {w, -d}, {w, d}, {-w, d}}
	var lines []Line
	for i, a := range corners {
		b := corners[(i+1)%4]
		for _, e := range []struct {
			p, q Vec3
			k    EdgeKind
		}{
			{Vec3{a[0], 0, a[1]}, Vec3{b[0], 0, b[1]}, EdgeFloorWall},
			{Vec3{a[0], h, a[1]}, Vec3{b[0], h, b[1]}, EdgeCeilingWall},
			{Vec3{a[0], 0, a[1]}, Vec3{a[0], h, a[1]}, EdgeCorner},
		} {
			if l, ok := c.project(pose, e.p, e.q); ok {
				l.Kind = e.k
				lines = append(lines, l)
			}
		}
	}
	return lines
}

// project maps the 3D segment pq into the image, clipped to the near plane
// and to the image; ok is false when less than MinTruthLength pixels remain.
func (c Camera) project(pose Pose, p, q Vec3) (Line, bool) {
	fwd, right, up := pose.basis()
	const near = 0.05
	zp, zq := p.sub(pose.Position).dot(fwd), q.sub(pose.Position).dot(fwd)
	if zp < near && zq < near {
		return Line{}, false
	}
	if zp < near {
		p = lerpVec(p, q, (near-zp)/(zq-zp))
	} else if zq < near {
		q = lerpVec(q, p, (near-zq)/(zp-zq))
	}
	f := c.focal()
	toImg := func(v Vec3) (float64, float64) {
		rel := v.sub(pose.Position)
		z := rel.dot(fwd)
		return float64(c.W)/2 + f*rel.dot(right)/z, float64(c.H)/2 - f*rel.dot(up)/z
	}
	x0, y0 := toImg(p)
	x1, y1 := toImg(q)
	x0, y0, x1, y1, ok := clipSegment(x0-truthMargin, y0-truthMargin, x1-truthMargin, y1-truthMargin,
		float64(c.W)-2*truthMargin, float64(c.H)-2*truthMargin)
	if !ok || math.Hypot(x1-x0, y1-y0) < MinTruthLength {
		return Line{}, false
	}
	return lineThrough(x0+truthMargin, y0+truthMargin, x1+truthMargin, y1+truthMargin), true
}

// clipSegment clips a segment to [0,w]x[0,h] (Liang-Barsky).
func clipSegment(x0, y0, x1, y1, w, h float64) (float64, float64, float64, float64, bool) {
	t0, t1 := 0.0, 1.0
	dx, dy := x1-x0, y1-y0
	for _, pq := range [4][2]float64{{-dx, x0}, {dx, w - x0}, {-dy, y0}, {dy, h - y0}} {
		p, q := pq[0], pq[1]
		if p == 0 {
			if q < 0 {
				return 0, 0, 0, 0, false
			}
			continue
		}
		r := q / p
		if p < 0 {
			t0 = math.Max(t0, r)
		} else {
			t1 = math.Min(t1, r)
		}
		if t0 > t1 {
			return 0, 0, 0, 0, false
		}
	}
	return x0 + t0*dx, y0 + t0*dy, x0 + t1*dx, y0 + t1*dy, true
}

// mix and unitHash are a small integer hash (splitmix64 finaliser), so that
// texture and noise are deterministic without a random source.
func mix(a, b uint64) uint64 {
	z := a*0x9e3779b97f4a7c15 + b + 0x632be59bd9b4e019
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// unitHash maps three integers to [0, 1).
func unitHash(a, b, c uint64) float64 {
	return float64(mix(mix(a, b), c)>>11) / (1 << 53)
}

// Horizon returns the image row of the horizon for pose: what an AR phone
// knows from gravity without looking at the image.
func (c Camera) Horizon(pose Pose) float64 {
	c = c.withDefaults()
	return float64(c.H)/2 + c.focal()*math.Tan(pose.Pitch)
}
