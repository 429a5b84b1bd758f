package vision

import (
	"image"
	"math"
	"testing"
	"time"
)

func TestNoveltyOfIdenticalAndMissingFrames(t *testing.T) {
	f := posedFrame(t, "corner ahead with door")
	if got := Novelty(f.Img, f.Img); got != 0 {
		t.Errorf("identical frames: %.3f, want 0", got)
	}
	if got := Novelty(nil, f.Img); got != 1 {
		t.Errorf("no previous frame: %.3f, want 1", got)
	}
	small := image.NewGray(image.Rect(0, 0, 80, 60))
	if got := Novelty(small, f.Img); got != 1 {
		t.Errorf("frames of different sizes: %.3f, want 1", got)
	}
	tiny := image.NewGray(image.Rect(0, 0, 4, 4))
	if got := Novelty(tiny, tiny); got != 0 {
		t.Errorf("frames smaller than a block: %.3f, want 0", got)
	}
	black, white := image.NewGray(image.Rect(0, 0, 80, 60)), image.NewGray(image.Rect(0, 0, 80, 60))
	for i := range white.Pix {
		white.Pix[i] = 255
	}
	if got := Novelty(black, white); got != 1 {
		t.Errorf("black to white: %.3f, want 1", got)
	}
}

// noveltyThreshold is a gate that separates the motions below; phase 2's
// novelty persona will choose its own.
const noveltyThreshold = 0.1

func TestNoveltySeparatesStillPanAndTurn(t *testing.T) {
	path := NewPath(1, PathOptions{})
	cam := Camera{W: 80, H: 60} // frame-to-frame change is scale-free; keep it cheap
	room := DefaultRoom()
	frameAt := func(at time.Duration) *Frame { return cam.Capture(room, path, int(at*30/time.Second)) }
	for _, s := range path.Segments {
		a := frameAt(s.Start + s.Duration/3)
		b := cam.Capture(room, path, a.Seq+1)
		n := Novelty(a.Img, b.Img)
		switch s.Kind {
		case Still:
			// Sensor noise is fresh every frame but averages out.
			if n > 0.01 {
				t.Errorf("still at %v: frame-to-frame novelty %.3f, want <= 0.01", s.Start, n)
			}
		case Pan:
			if n > noveltyThreshold/2 {
				t.Errorf("pan at %v: frame-to-frame novelty %.3f, want <= %.2f", s.Start, n, noveltyThreshold/2)
			}
		case Turn:
			before, after := frameAt(s.Start), frameAt(s.End())
			if n := Novelty(before.Img, after.Img); n < 0.5 {
				t.Errorf("turn at %v: novelty across it %.3f, want >= 0.5", s.Start, n)
			}
		}
	}
}

// TestNoveltyGateSkipsStillFrames is the phase-1 half of "a still camera
// costs a small fraction of a moving one": gating the line finder on novelty
// against the last frame it ran on, it runs once per still segment at most
// but on most frames of a turn.
func TestNoveltyGateSkipsStillFrames(t *testing.T) {
	path := NewPath(1, PathOptions{})
	cam := Camera{W: 80, H: 60}
	room := DefaultRoom()
	frames := map[SegmentKind]int{}
	runs := map[SegmentKind]int{}
	var key *image.Gray
	for seq := 0; ; seq += 2 { // 15 fps is enough to see the pattern
		f := cam.Capture(room, path, seq)
		if f.At >= path.Duration() {
			break
		}
		k := path.SegmentAt(f.At).Kind
		frames[k]++
		if Novelty(key, f.Img) > noveltyThreshold {
			runs[k]++
			key = f.Img
		}
	}
	stillSegs := 0
	for _, s := range path.Segments {
		if s.Kind == Still {
			stillSegs++
		}
	}
	if runs[Still] > stillSegs {
		t.Errorf("line finder ran %d times on %d still frames, want at most once per still segment (%d)", runs[Still], frames[Still], stillSegs)
	}
	if frac := float64(runs[Turn]) / float64(frames[Turn]); frac < 0.5 {
		t.Errorf("line finder ran on %.0f%% of turning frames, want >= 50%%", 100*frac)
	}
	if frac := float64(runs[Pan]) / float64(frames[Pan]); frac > 0.5 {
		t.Errorf("line finder ran on %.0f%% of panning frames, want a minority", 100*frac)
	}
	t.Logf("frames %v, line finder runs %v", frames, runs)
}

func TestEstimateLighting(t *testing.T) {
	ramp := func(dx, dy float64) *image.Gray {
		img := image.NewGray(image.Rect(0, 0, 160, 120))
		for y := range 120 {
			for x := range 160 {
				img.Pix[y*img.Stride+x] = uint8(128 + dx*(float64(x)-80) + dy*(float64(y)-60))
			}
		}
		return img
	}
	tests := []struct {
		name     string
		img      *image.Gray
		mean     float64
		dir      float64
		gradient float64
	}{
		{"flat", ramp(0, 0), 128.0 / 255, 0, 0},
		{"brighter to the right", ramp(0.5, 0), 128.0 / 255, 0, 0.5 * 160 / 255},
		{"brighter downwards", ramp(0, 0.5), 128.0 / 255, math.Pi / 2, 0.5 * 160 / 255},
		{"brighter up and left", ramp(-0.4, -0.4), 128.0 / 255, -3 * math.Pi / 4, 0.4 * math.Sqrt2 * 160 / 255},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := EstimateLighting(tt.img)
			if math.Abs(got.Mean-tt.mean) > 0.01 {
				t.Errorf("mean %.3f, want %.3f", got.Mean, tt.mean)
			}
			if math.Abs(got.Gradient-tt.gradient) > 0.02 {
				t.Errorf("gradient %.3f, want %.3f", got.Gradient, tt.gradient)
			}
			if tt.gradient > 0 && math.Abs(math.Remainder(got.Direction-tt.dir, 2*math.Pi)) > 2*deg {
				t.Errorf("direction %.1f°, want %.1f°", got.Direction/deg, tt.dir/deg)
			}
		})
	}
	if got := EstimateLighting(image.NewGray(image.Rect(0, 0, 3, 3))); got != (Lighting{}) {
		t.Errorf("image smaller than a block: %+v, want zero", got)
	}
	// In the room the floor is darker than the walls above it.
	if got := EstimateLighting(posedFrame(t, "picture").Img); math.Sin(got.Direction) > 0 || got.Mean < 0.2 || got.Mean > 0.9 {
		t.Errorf("picture view: %+v, want mid brightness growing upwards", got)
	}
}

func BenchmarkNovelty(b *testing.B) {
	f := posedFrame(b, "corner ahead with door")
	g := posedFrame(b, "two corners")
	b.ReportAllocs()
	for b.Loop() {
		Novelty(f.Img, g.Img)
	}
}
