package vision

import (
	"bytes"
	"math"
	"reflect"
	"testing"
	"time"
)

// testPoses are fixed views of DefaultRoom that between them show every
// kind of room edge, every panel and the ceiling. The camera stands at least
// 1 m from every wall and looks slightly down, as NewPath's does.
var testPoses = []struct {
	name string
	pose Pose
}{
	{"corner ahead with door", Pose{Yaw: math.Atan2(3, 2.5), Pitch: -12 * deg, Position: Vec3{0, 1.5, 0}}},
	{"window wall face on", Pose{Yaw: 90 * deg, Pitch: -10 * deg, Position: Vec3{0.5, 1.5, -0.4}}},
	{"door face on", Pose{Yaw: 0, Pitch: -10 * deg, Position: Vec3{1.0, 1.5, -0.5}}},
	{"ceiling in view", Pose{Yaw: math.Atan2(4, 3.5), Pitch: 8 * deg, Position: Vec3{-1, 1.5, -1}}},
	{"two corners", Pose{Yaw: 90 * deg, Pitch: -14 * deg, Position: Vec3{-2, 1.5, 0}}},
	{"picture", Pose{Yaw: 180 * deg, Pitch: -8 * deg, Position: Vec3{0.8, 1.5, 0.5}}},
}

func posedFrame(t testing.TB, name string) *Frame {
	t.Helper()
	for _, p := range testPoses {
		if p.name == name {
			return Camera{}.Render(DefaultRoom(), p.pose)
		}
	}
	t.Fatalf("no test pose %q", name)
	return nil
}

func TestRenderIsDeterministic(t *testing.T) {
	pose := testPoses[0].pose
	a := Camera{}.Render(DefaultRoom(), pose)
	b := Camera{}.Render(DefaultRoom(), pose)
	if !bytes.Equal(a.Img.Pix, b.Img.Pix) {
		t.Error("same pose rendered different pixels")
	}
	if !reflect.DeepEqual(a.Truth, b.Truth) {
		t.Error("same pose rendered different truth")
	}
	c := Camera{Seed: 99}.Render(DefaultRoom(), pose)
	if bytes.Equal(a.Img.Pix, c.Img.Pix) {
		t.Error("a different noise seed rendered the same pixels")
	}
}

func TestCaptureHasFreshNoiseEachFrame(t *testing.T) {
	path := NewPath(1, PathOptions{})
	if path.Segments[0].Kind != Still {
		t.Fatal("path does not start still")
	}
	a := Camera{}.Capture(DefaultRoom(), path, 0)
	b := Camera{}.Capture(DefaultRoom(), path, 1)
	if b.Seq != 1 || b.At != time.Second/30 {
		t.Errorf("frame 1 has Seq %d At %v", b.Seq, b.At)
	}
	if bytes.Equal(a.Img.Pix, b.Img.Pix) {
		t.Error("two frames of a still camera have identical noise")
	}
	if !reflect.DeepEqual(a.Truth, b.Truth) {
		t.Error("two frames of a still camera have different truth")
	}
}

func TestRenderDefaultsAndSize(t *testing.T) {
	f := Camera{}.Render(Room{}, Pose{Position: Vec3{0, 1.5, 0}})
	if got := f.Img.Bounds().Size(); got.X != 160 || got.Y != 120 {
		t.Errorf("zero Camera renders %v, want 160x120", got)
	}
	f = Camera{W: 40, H: 30}.Render(Room{}, Pose{Position: Vec3{0, 1.5, 0}})
	if got := f.Img.Bounds().Size(); got.X != 40 || got.Y != 30 || f.Truth.Labels.W != 40 || f.Truth.Labels.H != 30 {
		t.Errorf("40x30 camera renders %v with %dx%d labels", got, f.Truth.Labels.W, f.Truth.Labels.H)
	}
}

func TestTruthLinesMeetAtTheCorner(t *testing.T) {
	f := posedFrame(t, "corner ahead with door")
	count := map[EdgeKind]int{}
	for _, l := range f.Truth.Lines {
		count[l.Kind]++
	}
	if count[EdgeFloorWall] != 2 || count[EdgeCorner] != 1 || len(f.Truth.Lines) != 3 {
		t.Fatalf("truth %v, want two floor-wall edges and a corner", count)
	}
	// All three share the corner's foot.
	var corner Line
	for _, l := range f.Truth.Lines {
		if l.Kind == EdgeCorner {
			corner = l
		}
	}
	footX, footY := corner.X0, corner.Y0
	if corner.Y1 > corner.Y0 {
		footX, footY = corner.X1, corner.Y1
	}
	for _, l := range f.Truth.Lines {
		d := math.Min(math.Hypot(l.X0-footX, l.Y0-footY), math.Hypot(l.X1-footX, l.Y1-footY))
		if d > 1e-6 {
			t.Errorf("%v edge ends %.2f px from the corner's foot", l.Kind, d)
		}
	}
}

// TestTruthLinesAreImageEdges checks the renderer against its own truth: all
// along every true line the brightness steps across it.
func TestTruthLinesAreImageEdges(t *testing.T) {
	for _, p := range testPoses {
		t.Run(p.name, func(t *testing.T) {
			f := Camera{Noise: -1}.Render(DefaultRoom(), p.pose)
			if len(f.Truth.Lines) == 0 {
				t.Fatal("no truth lines")
			}
			for _, l := range f.Truth.Lines {
				nx, ny := math.Cos(l.Theta), math.Sin(l.Theta)
				ln := l.Length()
				weak := 0
				samples := 0
				for s := 4.0; s < ln-4; s += 2 {
					x := l.X0 + (l.X1-l.X0)*s/ln
					y := l.Y0 + (l.Y1-l.Y0)*s/ln
					a, okA := grayAt(f, x+3*nx, y+3*ny)
					b, okB := grayAt(f, x-3*nx, y-3*ny)
					if !okA || !okB {
						continue
					}
					samples++
					if math.Abs(a-b) < 15 {
						weak++
					}
				}
				if samples == 0 || weak > samples/10 {
					t.Errorf("%v edge: %d of %d samples with a step under 15 grey levels", l.Kind, weak, samples)
				}
			}
		})
	}
}

func grayAt(f *Frame, x, y float64) (float64, bool) {
	ix, iy := int(math.Floor(x)), int(math.Floor(y))
	b := f.Img.Bounds()
	if ix < 0 || iy < 0 || ix >= b.Dx() || iy >= b.Dy() {
		return 0, false
	}
	return float64(f.Img.GrayAt(ix, iy).Y), true
}

func TestTruthLabels(t *testing.T) {
	tests := []struct {
		pose string
		x, y int
		want Label
	}{
		{"corner ahead with door", 80, 117, LabelFloor},
		{"corner ahead with door", 120, 20, LabelWall},
		{"corner ahead with door", 25, 40, LabelOther}, // the door
		{"ceiling in view", 80, 2, LabelOther},         // the ceiling
		{"window wall face on", 75, 40, LabelOther},
		{"picture", 80, 45, LabelOther},
		{"picture", 10, 10, LabelWall},
	}
	for _, tt := range tests {
		f := posedFrame(t, tt.pose)
		if got := f.Truth.Labels.At(tt.x, tt.y); got != tt.want {
			t.Errorf("%s: pixel (%d,%d) is %v, want %v", tt.pose, tt.x, tt.y, got, tt.want)
		}
	}
	if got := (Labels{}).At(0, 0); got != LabelUnknown {
		t.Errorf("empty labels: %v, want unknown", got)
	}
}

func TestHorizonSplitsFloorFromCeiling(t *testing.T) {
	for _, p := range testPoses {
		f := Camera{}.Render(DefaultRoom(), p.pose)
		h := Camera{}.Horizon(p.pose)
		for _, l := range f.Truth.Lines {
			mid := (l.Y0 + l.Y1) / 2
			switch {
			case l.Kind == EdgeFloorWall && mid <= h:
				t.Errorf("%s: floor edge at row %.0f is above the horizon %.0f", p.name, mid, h)
			case l.Kind == EdgeCeilingWall && mid >= h:
				t.Errorf("%s: ceiling edge at row %.0f is below the horizon %.0f", p.name, mid, h)
			}
		}
	}
}

func BenchmarkRender(b *testing.B) {
	room, pose := DefaultRoom(), testPoses[0].pose
	b.ReportAllocs()
	for b.Loop() {
		Camera{}.Render(room, pose)
	}
}
