package vision

import (
	"image"
	"math"
	"sync"
	"testing"
)

// pathFrames are 20 frames, one a second, of the default walk through
// DefaultRoom, rendered once for all the tests that use them.
var pathFrames = sync.OnceValue(func() []*Frame {
	path := NewPath(1, PathOptions{})
	var frames []*Frame
	for seq := 0; seq < 600; seq += 30 {
		frames = append(frames, Camera{}.Capture(DefaultRoom(), path, seq))
	}
	return frames
})

func TestFindLinesMatchesRenderedTruth(t *testing.T) {
	for _, p := range testPoses {
		t.Run(p.name, func(t *testing.T) {
			f := Camera{}.Render(DefaultRoom(), p.pose)
			found := FindLines(f.Img, LineOptions{})
			if q := LineQuality(found, f.Truth.Lines); q < 0.8 {
				t.Errorf("matched %.2f of %d true lines, want >= 0.8; found %d lines", q, len(f.Truth.Lines), len(found))
			}
		})
	}
}

// In a bare room every line is a room edge, so precision is measurable too:
// LineQuality with the roles swapped is the fraction of found lines that lie
// on a true one.
func TestFindLinesInBareRoomFindsOnlyRoomEdges(t *testing.T) {
	for _, p := range testPoses {
		t.Run(p.name, func(t *testing.T) {
			f := Camera{}.Render(Room{}, p.pose)
			found := FindLines(f.Img, LineOptions{})
			if q := LineQuality(found, f.Truth.Lines); q < 0.8 {
				t.Errorf("recall %.2f, want >= 0.8", q)
			}
			if q := LineQuality(f.Truth.Lines, found); q < 0.8 {
				t.Errorf("precision %.2f of %d found lines, want >= 0.8", q, len(found))
			}
		})
	}
}

func TestFindLinesAlongThePath(t *testing.T) {
	var sum float64
	frames := pathFrames()
	for _, f := range frames {
		sum += LineQuality(FindLines(f.Img, LineOptions{}), f.Truth.Lines)
	}
	// Measured 1.00 over these frames and 0.99 to 1.00 over every tenth
	// frame of seeds 1 to 5; a miss is a true line barely over
	// MinTruthLength.
	if mean := sum / float64(len(frames)); mean < 0.9 {
		t.Errorf("mean line recall %.3f along the path, want >= 0.9", mean)
	}
}

// halfPlane is a w x h image, bright where x·cosθ + y·sinθ > ρ.
func halfPlane(w, h int, theta, rho float64) *image.Gray {
	img := image.NewGray(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			// 4x4 supersampling for an anti-aliased edge.
			in := 0
			for sy := range 4 {
				for sx := range 4 {
					px, py := float64(x)+(float64(sx)+0.5)/4, float64(y)+(float64(sy)+0.5)/4
					if px*math.Cos(theta)+py*math.Sin(theta) > rho {
						in++
					}
				}
			}
			img.Pix[y*img.Stride+x] = uint8(60 + 120*in/16)
		}
	}
	return img
}

func TestFindLinesLocatesAStepEdge(t *testing.T) {
	tests := []struct {
		name       string
		theta, rho float64
	}{
		{"vertical", 0, 70.3},
		{"horizontal", 90 * deg, 40.7},
		{"steep", 12 * deg, 80},
		{"diagonal", 45 * deg, 90},
		{"shallow, falling", 100 * deg, 30},
		{"normal past 90 degrees", 150 * deg, -40},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := halfPlane(160, 120, tt.theta, tt.rho)
			found := FindLines(img, LineOptions{})
			if len(found) != 1 {
				t.Fatalf("found %d lines, want 1: %+v", len(found), found)
			}
			l := found[0]
			want := Line{Theta: wrapPi(tt.theta), Rho: tt.rho}
			if tt.theta >= math.Pi {
				want.Rho = -tt.rho
			}
			if d := angleDiff(l.Theta, want.Theta); d > 0.5*deg {
				t.Errorf("theta %.2f°, want %.2f°", l.Theta/deg, want.Theta/deg)
			}
			// Both endpoints on the true line, and the segment spans
			// the image less its border.
			for _, p := range [][2]float64{{l.X0, l.Y0}, {l.X1, l.Y1}} {
				if d := want.Dist(p[0], p[1]); d > 0.6 {
					t.Errorf("endpoint (%.1f,%.1f) is %.2f px off the edge", p[0], p[1], d)
				}
			}
			x0, y0, x1, y1, _ := clipSegment(-1000*math.Sin(want.Theta)+want.Rho*math.Cos(want.Theta), 1000*math.Cos(want.Theta)+want.Rho*math.Sin(want.Theta),
				1000*math.Sin(want.Theta)+want.Rho*math.Cos(want.Theta), -1000*math.Cos(want.Theta)+want.Rho*math.Sin(want.Theta), 160, 120)
			if full := math.Hypot(x1-x0, y1-y0); l.Length() < full-8 {
				t.Errorf("segment %.1f px long, want about %.1f", l.Length(), full)
			}
		})
	}
}

func TestFindLinesIgnoresWhatIsNotALine(t *testing.T) {
	flat := image.NewGray(image.Rect(0, 0, 80, 60))
	for i := range flat.Pix {
		flat.Pix[i] = 128
	}
	noisy := image.NewGray(image.Rect(0, 0, 80, 60))
	for i := range noisy.Pix {
		noisy.Pix[i] = uint8(120 + 16*unitHash(1, uint64(i), 0))
	}
	// A bright disc: strong edges, but no straight stretch of 20 pixels.
	disc := image.NewGray(image.Rect(0, 0, 80, 60))
	for y := range 60 {
		for x := range 80 {
			if math.Hypot(float64(x)-40, float64(y)-30) < 12 {
				disc.Pix[y*disc.Stride+x] = 220
			} else {
				disc.Pix[y*disc.Stride+x] = 40
			}
		}
	}
	tests := []struct {
		name string
		img  *image.Gray
	}{
		{"flat", flat},
		{"noise", noisy},
		{"small disc", disc},
		{"2x2", image.NewGray(image.Rect(0, 0, 2, 2))},
		{"empty", image.NewGray(image.Rectangle{})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FindLines(tt.img, LineOptions{}); len(got) != 0 {
				t.Errorf("found %d lines, want none: %+v", len(got), got)
			}
		})
	}
}

func TestFindLinesStopsAtMaxLines(t *testing.T) {
	// Vertical stripes 10 px wide: 15 strong edges.
	img := image.NewGray(image.Rect(0, 0, 160, 60))
	for y := range 60 {
		for x := range 160 {
			img.Pix[y*img.Stride+x] = uint8(50 + 150*((x/10)%2))
		}
	}
	if got := len(FindLines(img, LineOptions{})); got != 15 {
		t.Errorf("found %d stripe edges, want 15", got)
	}
	if got := len(FindLines(img, LineOptions{MaxLines: 4})); got != 4 {
		t.Errorf("found %d lines with MaxLines 4, want 4", got)
	}
}

func TestLineQuality(t *testing.T) {
	truth := lineThrough(10, 60, 150, 60) // horizontal, 140 px
	rotate := func(l Line, a float64) Line {
		cx, cy := (l.X0+l.X1)/2, (l.Y0+l.Y1)/2
		s, c := math.Sincos(a)
		r := func(x, y float64) (float64, float64) {
			return cx + (x-cx)*c - (y-cy)*s, cy + (x-cx)*s + (y-cy)*c
		}
		x0, y0 := r(l.X0, l.Y0)
		x1, y1 := r(l.X1, l.Y1)
		return lineThrough(x0, y0, x1, y1)
	}
	tests := []struct {
		name  string
		found []Line
		want  float64
	}{
		{"the same line matches", []Line{truth}, 1},
		{"reversed endpoints match", []Line{lineThrough(150, 60, 10, 60)}, 1},
		{"2 px away matches", []Line{lineThrough(10, 62, 150, 62)}, 1},
		{"4 px away does not", []Line{lineThrough(10, 64, 150, 64)}, 0},
		{"2 degrees off matches", []Line{rotate(truth, 2*deg)}, 1},
		{"5 degrees off does not", []Line{rotate(truth, 5*deg)}, 0},
		{"covering 60% matches", []Line{lineThrough(10, 60, 94, 60)}, 1},
		{"covering 40% does not", []Line{lineThrough(10, 60, 66, 60)}, 0},
		{"nothing found", nil, 0},
		{"one match among others is enough", []Line{lineThrough(0, 0, 0, 100), truth}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := LineQuality(tt.found, []Line{truth}); got != tt.want {
				t.Errorf("quality %.2f, want %.2f", got, tt.want)
			}
		})
	}
	if got := LineQuality(nil, nil); got != 1 {
		t.Errorf("quality with nothing to find %.2f, want 1", got)
	}
	two := []Line{truth, lineThrough(80, 0, 80, 100)}
	if got := LineQuality([]Line{truth}, two); got != 0.5 {
		t.Errorf("one of two matched: %.2f, want 0.5", got)
	}
}

func TestLineGeometry(t *testing.T) {
	l := lineThrough(0, 0, 100, 100) // y = x
	if d := l.Dist(100, 0); math.Abs(d-100/math.Sqrt2) > 1e-9 {
		t.Errorf("Dist %.3f, want %.3f", d, 100/math.Sqrt2)
	}
	if x, ok := l.XAt(30); !ok || math.Abs(x-30) > 1e-9 {
		t.Errorf("XAt(30) = %.3f, %v", x, ok)
	}
	if y, ok := l.YAt(40); !ok || math.Abs(y-40) > 1e-9 {
		t.Errorf("YAt(40) = %.3f, %v", y, ok)
	}
	if _, ok := lineThrough(0, 5, 10, 5).XAt(3); ok {
		t.Error("a horizontal line crosses a row")
	}
	if _, ok := lineThrough(5, 0, 5, 10).YAt(3); ok {
		t.Error("a vertical line crosses a column")
	}
	if !lineThrough(5, 0, 6, 100).IsVertical(verticalTol) || lineThrough(0, 0, 100, 100).IsVertical(verticalTol) {
		t.Error("IsVertical wrong")
	}
	if l.Theta < 0 || l.Theta >= math.Pi {
		t.Errorf("Theta %.3f outside [0, π)", l.Theta)
	}
}

func BenchmarkFindLines(b *testing.B) {
	f := Camera{}.Render(DefaultRoom(), testPoses[0].pose)
	b.ReportAllocs()
	for b.Loop() {
		FindLines(f.Img, LineOptions{})
	}
}
