package vision

import (
	"math"
	"math/rand/v2"
	"time"
)

// Vec3 is a point or direction in room coordinates, in metres: X to the right
// of the room's origin, Y up from the floor, Z forward.
type Vec3 struct{ X, Y, Z float64 }

func (a Vec3) add(b Vec3) Vec3      { return Vec3{a.X + b.X, a.Y + b.Y, a.Z + b.Z} }
func (a Vec3) sub(b Vec3) Vec3      { return Vec3{a.X - b.X, a.Y - b.Y, a.Z - b.Z} }
func (a Vec3) scale(k float64) Vec3 { return Vec3{a.X * k, a.Y * k, a.Z * k} }
func (a Vec3) dot(b Vec3) float64   { return a.X*b.X + a.Y*b.Y + a.Z*b.Z }
func (a Vec3) norm() float64        { return math.Sqrt(a.dot(a)) }
func (a Vec3) unit() Vec3           { return a.scale(1 / a.norm()) }
func lerp(a, b, s float64) float64  { return a + (b-a)*s }
func lerpVec(a, b Vec3, s float64) Vec3 {
	return Vec3{lerp(a.X, b.X, s), lerp(a.Y, b.Y, s), lerp(a.Z, b.Z, s)}
}

// Pose is where the camera is and where it looks. Yaw turns about the
// vertical axis (0 looks along +Z, positive turns towards +X); Pitch tilts the
// view (positive looks up). Angles are in radians. The camera never rolls: a
// phone held for AR is kept upright, and the plane segmenter relies on it.
//
// The zero Pose stands on the floor at the origin looking along +Z; callers
// normally take poses from a Path.
type Pose struct {
	Yaw, Pitch float64
	Position   Vec3
}

// basis returns the camera's forward, right and up unit vectors in room
// coordinates.
func (p Pose) basis() (fwd, right, up Vec3) {
	sy, cy := math.Sincos(p.Yaw)
	sp, cp := math.Sincos(p.Pitch)
	fwd = Vec3{sy * cp, sp, cy * cp}
	right = Vec3{cy, 0, -sy}
	up = Vec3{-sy * sp, cp, -cy * sp}
	return fwd, right, up
}

// SegmentKind is what the camera does during one Segment of a Path.
type SegmentKind uint8

const (
	// Still holds the pose: nothing new to see, so the expensive stages
	// should cost (almost) nothing.
	Still SegmentKind = iota
	// Pan turns slowly, a few degrees a second: the view drifts, mostly
	// over territory already seen.
	Pan
	// Turn swings quickly to new territory, tens of degrees in under a
	// second: the line finder must run again.
	Turn
)

func (k SegmentKind) String() string {
	switch k {
	case Still:
		return "still"
	case Pan:
		return "pan"
	case Turn:
		return "turn"
	}
	return "unknown"
}

// Segment is one stretch of a Path: the camera moves from From to To over
// [Start, Start+Duration), with constant yaw rate for a Pan and an eased
// (smoothstep) swing for a Turn.
type Segment struct {
	Kind     SegmentKind
	Start    time.Duration
	Duration time.Duration
	From, To Pose
}

// End is the time the segment ends (exclusive).
func (s Segment) End() time.Duration { return s.Start + s.Duration }

// poseAt interpolates within the segment; t is clamped to it.
func (s Segment) poseAt(t time.Duration) Pose {
	if s.Duration <= 0 {
		return s.To
	}
	u := float64(t-s.Start) / float64(s.Duration)
	u = math.Max(0, math.Min(1, u))
	if s.Kind == Turn {
		// Ease in and out: a hand swinging a phone accelerates and stops.
		u = u * u * (3 - 2*u)
	}
	return Pose{
		Yaw:      lerp(s.From.Yaw, s.To.Yaw, u),
		Pitch:    lerp(s.From.Pitch, s.To.Pitch, u),
		Position: lerpVec(s.From.Position, s.To.Position, u),
	}
}

// Path is a deterministic camera trajectory made of consecutive segments.
//
// The zero Path has no segments: PoseAt returns the zero Pose and SegmentAt a
// zero (Still) Segment. A Path is a value; it is safe for concurrent use as
// long as nobody mutates Segments. Most callers want NewPath and PoseAt.
type Path struct {
	Segments []Segment
}

// PathOptions configures NewPath. The zero value is valid: every zero field
// takes the default written beside it.
type PathOptions struct {
	// Duration is the total length of the path (default 20 s).
	Duration time.Duration
	// Center is the point the camera stays near (default (0, 1.5, 0): a
	// phone held at eye height in the middle of the default room).
	Center Vec3
	// Wander is how far, in metres, the camera may drift from Center in X
	// and Z (default 0.6). Keep the camera at least 1 m from every wall:
	// SegmentPlanes takes lines within 12° of vertical for corners, and the
	// floor edge of a wall seen from much closer can be that steep.
	Wander float64
	// PanRate is the largest yaw rate of a Pan in radians per second
	// (default 12°/s).
	PanRate float64
	// TurnAngle is the largest yaw swing of a Turn in radians (default 120°);
	// the smallest is two thirds of it.
	TurnAngle float64
}

func (o PathOptions) withDefaults() PathOptions {
	if o.Duration <= 0 {
		o.Duration = 20 * time.Second
	}
	if o.Center == (Vec3{}) {
		o.Center = Vec3{0, 1.5, 0}
	}
	if o.Wander <= 0 {
		o.Wander = 0.6
	}
	if o.PanRate <= 0 {
		o.PanRate = 12 * math.Pi / 180
	}
	if o.TurnAngle <= 0 {
		o.TurnAngle = 120 * math.Pi / 180
	}
	return o
}

// NewPath builds a path from seed: the same seed and options always give the
// same path. It starts Still and then cycles through shuffled rounds of
// Still, Pan and Turn (never the same kind twice in a row), so every path of
// a few seconds or more holds still, pans slowly and turns to new territory.
// Pitch stays between -18° and -8°: an AR phone looks slightly down at the
// floor.
func NewPath(seed uint64, opts PathOptions) Path {
	o := opts.withDefaults()
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	deg := math.Pi / 180
	uniform := func(lo, hi float64) float64 { return lo + (hi-lo)*rng.Float64() }
	sign := func() float64 {
		if rng.IntN(2) == 0 {
			return -1
		}
		return 1
	}
	secs := func(lo, hi float64) time.Duration {
		// Whole frames at 30 fps keep segment boundaries on frame times.
		d := time.Duration(uniform(lo, hi) * float64(time.Second))
		frame := time.Second / 30
		return (d/frame + 1) * frame
	}

	cur := Pose{
		Yaw:   uniform(-math.Pi, math.Pi),
		Pitch: uniform(-18, -8) * deg,
		Position: o.Center.add(Vec3{
			uniform(-o.Wander, o.Wander), 0, uniform(-o.Wander, o.Wander),
		}),
	}
	var p Path
	var at time.Duration
	kinds := []SegmentKind{Still}
	last := SegmentKind(255)
	for at < o.Duration {
		if len(kinds) == 0 {
			kinds = []SegmentKind{Still, Pan, Turn}
			rng.Shuffle(len(kinds), func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })
			if kinds[0] == last {
				kinds[0], kinds[2] = kinds[2], kinds[0]
			}
		}
		k := kinds[0]
		kinds = kinds[1:]
		last = k

		seg := Segment{Kind: k, Start: at, From: cur}
		next := cur
		switch k {
		case Still:
			seg.Duration = secs(1.5, 3)
		case Pan:
			seg.Duration = secs(2, 4)
			rate := uniform(0.4, 1) * o.PanRate
			next.Yaw += sign() * rate * seg.Duration.Seconds()
			next.Pitch = uniform(-18, -8) * deg
		case Turn:
			seg.Duration = secs(0.6, 1)
			next.Yaw += sign() * uniform(2.0/3, 1) * o.TurnAngle
			next.Pitch = uniform(-18, -8) * deg
			// A turn is also a step: the user walks a little.
			next.Position = o.Center.add(Vec3{
				uniform(-o.Wander, o.Wander), 0, uniform(-o.Wander, o.Wander),
			})
		}
		seg.To = next
		if seg.End() > o.Duration {
			// Cut the last segment at the path's end, where it would have been.
			next = seg.poseAt(o.Duration)
			seg.Duration = o.Duration - at
			seg.To = next
		}
		p.Segments = append(p.Segments, seg)
		at = seg.End()
		cur = next
	}
	return p
}

// Duration is the length of the path.
func (p Path) Duration() time.Duration {
	if len(p.Segments) == 0 {
		return 0
	}
	return p.Segments[len(p.Segments)-1].End()
}

// SegmentAt returns the segment in force at t. Before the start it returns
// the first segment, after the end the last one.
func (p Path) SegmentAt(t time.Duration) Segment {
	if len(p.Segments) == 0 {
		return Segment{}
	}
	// Binary search: paths are short, but frames are many.
	lo, hi := 0, len(p.Segments)-1
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if p.Segments[mid].Start <= t {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return p.Segments[lo]
}

// PoseAt returns the camera pose at t; it is continuous in t, and constant
// before the start and after the end of the path.
func (p Path) PoseAt(t time.Duration) Pose {
	if len(p.Segments) == 0 {
		return Pose{}
	}
	return p.SegmentAt(t).poseAt(t)
}
