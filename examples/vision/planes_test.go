package vision

import (
	"image"
	"testing"
)

// pipeline runs the dependent stages on one frame, with the horizon an AR
// phone knows from gravity.
func pipeline(f *Frame) ([]Line, []Plane, Labels) {
	lines := FindLines(f.Img, LineOptions{})
	planes := SegmentPlanes(f.Img, lines, PlaneOptions{Horizon: Camera{}.Horizon(f.Pose)})
	return lines, planes, Semantic(f.Img, planes)
}

func TestSemanticOnFixedPoses(t *testing.T) {
	// Measured: 0.99 or better on every pose but "two corners" (0.84),
	// where the side walls' floor edges are too short to find, so the
	// floor in the bottom corners is taken for wall.
	var sum float64
	for _, p := range testPoses {
		t.Run(p.name, func(t *testing.T) {
			f := Camera{}.Render(DefaultRoom(), p.pose)
			_, _, labels := pipeline(f)
			q := Quality(labels, f.Truth.Labels)
			sum += q
			if q < 0.8 {
				t.Errorf("pixel accuracy %.3f, want >= 0.8", q)
			}
		})
	}
	if mean := sum / float64(len(testPoses)); mean < 0.9 {
		t.Errorf("mean pixel accuracy %.3f, want >= 0.9", mean)
	}
}

func TestSemanticAlongThePath(t *testing.T) {
	frames := pathFrames()
	var sum, sumBlind float64
	for _, f := range frames {
		_, _, labels := pipeline(f)
		sum += Quality(labels, f.Truth.Labels)
		// Without the horizon the middle row separates floor from
		// ceiling edges; for a camera looking down it does as well.
		lines := FindLines(f.Img, LineOptions{})
		sumBlind += Quality(Semantic(f.Img, SegmentPlanes(f.Img, lines, PlaneOptions{})), f.Truth.Labels)
	}
	// Measured 0.94 here and 0.94 to 0.99 over every tenth frame of seeds
	// 1 to 5; the misses are frames where a door is as wide as the wall
	// beside it and is taken for the wall (0.73 on such a frame).
	n := float64(len(frames))
	if mean := sum / n; mean < 0.9 {
		t.Errorf("mean pixel accuracy %.3f along the path, want >= 0.9", mean)
	}
	if mean := sumBlind / n; mean < 0.9 {
		t.Errorf("mean pixel accuracy %.3f along the path without a horizon, want >= 0.9", mean)
	}
}

func TestSegmentPlanesPartitionsTheImage(t *testing.T) {
	for _, p := range testPoses {
		t.Run(p.name, func(t *testing.T) {
			f := Camera{}.Render(DefaultRoom(), p.pose)
			_, planes, _ := pipeline(f)
			b := f.Img.Bounds()
			cover := make([]int, b.Dx()*b.Dy())
			for _, pl := range planes {
				n := 0
				for y := range b.Dy() {
					for x := range b.Dx() {
						if pl.Contains(x, y) {
							cover[y*b.Dx()+x]++
							n++
						}
					}
				}
				if n != pl.Area || n == 0 {
					t.Errorf("%v plane: Area %d, mask holds %d", pl.Kind, pl.Area, n)
				}
			}
			for i, c := range cover {
				if c != 1 {
					t.Fatalf("pixel (%d,%d) is in %d planes, want 1", i%b.Dx(), i/b.Dx(), c)
				}
			}
		})
	}
}

func TestSegmentPlanesFindsTheRoomsPlanes(t *testing.T) {
	tests := []struct {
		pose                    string
		floors, walls, ceilings int
	}{
		{"corner ahead with door", 1, 2, 0},
		{"two corners", 1, 3, 0},
		{"ceiling in view", 0, 2, 1},
		{"picture", 1, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.pose, func(t *testing.T) {
			_, planes, _ := pipeline(posedFrame(t, tt.pose))
			count := map[PlaneKind]int{}
			for _, p := range planes {
				count[p.Kind]++
			}
			if count[PlaneFloor] != tt.floors || count[PlaneWall] != tt.walls || count[PlaneCeiling] != tt.ceilings {
				t.Errorf("planes %v, want %d floor, %d walls, %d ceiling", count, tt.floors, tt.walls, tt.ceilings)
			}
		})
	}
}

func TestSegmentPlanesTellsCornersFromDoorSides(t *testing.T) {
	img := image.NewGray(image.Rect(0, 0, 160, 120))
	floor := lineThrough(0, 90, 160, 90)
	side := lineThrough(80, 0, 80, 89) // ends on the floor edge
	tests := []struct {
		name       string
		lines      []Line
		walls      int
		inner      int
		floorAbove int // the row below which pixels are floor, at x=40
	}{
		{"a vertical the floor edge runs past is a door side", []Line{floor, side}, 1, 1, 90},
		{"a vertical the floor edges end at is a corner", []Line{lineThrough(0, 90, 80, 90), lineThrough(80, 90, 160, 96), side}, 2, 0, 90},
		{"no lines: all wall", nil, 1, 0, 120},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			planes := SegmentPlanes(img, tt.lines, PlaneOptions{})
			walls, inner := 0, 0
			var floorPlane *Plane
			for i, p := range planes {
				switch p.Kind {
				case PlaneWall:
					walls++
					inner += len(p.Inner)
				case PlaneFloor:
					floorPlane = &planes[i]
				}
			}
			if walls != tt.walls || inner != tt.inner {
				t.Errorf("%d walls with %d inner lines, want %d and %d", walls, inner, tt.walls, tt.inner)
			}
			for y := range 120 {
				want := y >= tt.floorAbove
				if got := floorPlane != nil && floorPlane.Contains(40, y); got != want {
					t.Errorf("pixel (40,%d) floor: %v, want %v", y, got, want)
					break
				}
			}
		})
	}
}

func TestSegmentPlanesIgnoresPartialEdges(t *testing.T) {
	// A picture's bottom edge spans a quarter of the wall: not the floor.
	img := image.NewGray(image.Rect(0, 0, 160, 120))
	planes := SegmentPlanes(img, []Line{lineThrough(60, 80, 100, 80)}, PlaneOptions{})
	if len(planes) != 1 || planes[0].Kind != PlaneWall {
		t.Errorf("planes %+v, want a single wall", planes)
	}
}

func TestSemanticLabelsPanelsOther(t *testing.T) {
	for _, name := range []string{"window wall face on", "picture", "door face on", "corner ahead with door"} {
		t.Run(name, func(t *testing.T) {
			f := posedFrame(t, name)
			_, _, labels := pipeline(f)
			other, hit := 0, 0
			for i, l := range f.Truth.Labels.L {
				if l == LabelOther {
					other++
					if labels.L[i] == LabelOther {
						hit++
					}
				}
			}
			if other == 0 || float64(hit) < 0.9*float64(other) {
				t.Errorf("%d of %d 'other' pixels labelled other, want >= 90%%", hit, other)
			}
		})
	}
}

func TestQuality(t *testing.T) {
	a := NewLabels(2, 2)
	copy(a.L, []Label{LabelFloor, LabelWall, LabelOther, LabelFloor})
	b := NewLabels(2, 2)
	copy(b.L, []Label{LabelFloor, LabelWall, LabelFloor, LabelWall})
	tests := []struct {
		name      string
		got, want Labels
		q         float64
	}{
		{"identical", a, a, 1},
		{"half right", b, a, 0.5},
		{"different sizes", NewLabels(2, 1), a, 0},
		{"empty", Labels{}, Labels{}, 0},
	}
	for _, tt := range tests {
		if q := Quality(tt.got, tt.want); q != tt.q {
			t.Errorf("%s: %.2f, want %.2f", tt.name, q, tt.q)
		}
	}
}

func BenchmarkSegmentAndLabel(b *testing.B) {
	f := Camera{}.Render(DefaultRoom(), testPoses[0].pose)
	lines := FindLines(f.Img, LineOptions{})
	b.ReportAllocs()
	for b.Loop() {
		Semantic(f.Img, SegmentPlanes(f.Img, lines, PlaneOptions{}))
	}
}
