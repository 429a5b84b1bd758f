package vision

import (
	"math"
	"reflect"
	"testing"
	"time"
)

const deg = math.Pi / 180

func TestNewPathIsDeterministic(t *testing.T) {
	a, b := NewPath(7, PathOptions{}), NewPath(7, PathOptions{})
	if !reflect.DeepEqual(a, b) {
		t.Fatal("same seed gave different paths")
	}
	if c := NewPath(8, PathOptions{}); reflect.DeepEqual(a, c) {
		t.Fatal("different seeds gave the same path")
	}
}

func TestNewPathShape(t *testing.T) {
	for seed := uint64(1); seed <= 5; seed++ {
		p := NewPath(seed, PathOptions{})
		if got := p.Duration(); got != 20*time.Second {
			t.Errorf("seed %d: duration %v, want the default 20s", seed, got)
		}
		if p.Segments[0].Kind != Still || p.Segments[0].Start != 0 {
			t.Errorf("seed %d: first segment %v at %v, want still at 0", seed, p.Segments[0].Kind, p.Segments[0].Start)
		}
		kinds := map[SegmentKind]bool{}
		for i, s := range p.Segments {
			kinds[s.Kind] = true
			if i > 0 {
				prev := p.Segments[i-1]
				if s.Start != prev.End() || s.From != prev.To {
					t.Errorf("seed %d: segment %d does not continue segment %d", seed, i, i-1)
				}
				if s.Kind == prev.Kind {
					t.Errorf("seed %d: segments %d and %d are both %v", seed, i-1, i, s.Kind)
				}
			}
			if s.To.Pitch < -18*deg-1e-9 || s.To.Pitch > -8*deg+1e-9 {
				t.Errorf("seed %d: pitch %.1f° outside [-18°, -8°]", seed, s.To.Pitch/deg)
			}
			dyaw := math.Abs(s.To.Yaw - s.From.Yaw)
			last := i == len(p.Segments)-1 // may be cut short
			switch s.Kind {
			case Still:
				if s.From != s.To {
					t.Errorf("seed %d: still segment %d moves", seed, i)
				}
			case Pan:
				if rate := dyaw / s.Duration.Seconds(); rate > 12*deg+1e-9 || rate == 0 {
					t.Errorf("seed %d: pan %d at %.1f°/s, want in (0, 12]", seed, i, rate/deg)
				}
			case Turn:
				if !last && (dyaw < 80*deg-1e-9 || s.Duration > time.Second+time.Second/30) {
					t.Errorf("seed %d: turn %d swings %.0f° in %v, want >= 80° in about a second", seed, i, dyaw/deg, s.Duration)
				}
			}
		}
		if len(kinds) != 3 {
			t.Errorf("seed %d: kinds %v, want still, pan and turn", seed, kinds)
		}
	}
}

func TestPoseAtIsContinuous(t *testing.T) {
	for seed := uint64(1); seed <= 5; seed++ {
		p := NewPath(seed, PathOptions{})
		checkContinuous(t, p)
	}
}

func checkContinuous(t *testing.T, p Path) {
	t.Helper()
	prev := p.PoseAt(0)
	const step = time.Second / 30
	for at := step; at <= p.Duration(); at += step {
		cur := p.PoseAt(at)
		// The fastest motion is a 120° turn, with a step of up to
		// 1.7 m, eased over 0.6 s: at most 1.5x its mean rate, 10° and
		// 0.14 m a frame.
		if d := math.Abs(cur.Yaw - prev.Yaw); d > 10*deg {
			t.Fatalf("yaw jumps %.1f° at %v", d/deg, at)
		}
		if d := cur.Position.sub(prev.Position).norm(); d > 0.15 {
			t.Fatalf("position jumps %.2f m at %v", d, at)
		}
		prev = cur
	}
}

func TestPathAtTheEdges(t *testing.T) {
	var zero Path
	if got := zero.PoseAt(time.Second); got != (Pose{}) {
		t.Errorf("zero path pose %+v, want zero", got)
	}
	if got := zero.SegmentAt(time.Second); got.Kind != Still || got.Duration != 0 {
		t.Errorf("zero path segment %+v, want zero", got)
	}
	p := NewPath(1, PathOptions{Duration: 5 * time.Second})
	if got, want := p.PoseAt(-time.Second), p.Segments[0].From; got != want {
		t.Errorf("pose before the start %+v, want the first %+v", got, want)
	}
	last := p.Segments[len(p.Segments)-1]
	if got := p.PoseAt(time.Hour); got != last.To {
		t.Errorf("pose after the end %+v, want the last %+v", got, last.To)
	}
	for _, s := range p.Segments {
		if got := p.SegmentAt(s.Start); got.Start != s.Start {
			t.Errorf("SegmentAt(%v) starts at %v", s.Start, got.Start)
		}
		if got := p.SegmentAt(s.End() - 1); got.Start != s.Start {
			t.Errorf("SegmentAt(%v) starts at %v, want %v", s.End()-1, got.Start, s.Start)
		}
	}
}
