package vision

import (
	"errors"
	"image"
	"image/color"
	"image/png"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestDrawOverlaysPlanesAndLines(t *testing.T) {
	f := posedFrame(t, "corner ahead with door")
	lines, planes, _ := pipeline(f)
	before := append([]uint8(nil), f.Img.Pix...)
	out := Draw(f, lines, planes)
	if out.Bounds() != f.Img.Bounds() {
		t.Fatalf("overlay %v, frame %v", out.Bounds(), f.Img.Bounds())
	}
	if string(before) != string(f.Img.Pix) {
		t.Error("Draw modified the frame")
	}
	// A line's midpoint is red.
	l := lines[0]
	mx, my := int((l.X0+l.X1)/2), int((l.Y0+l.Y1)/2)
	if got := out.RGBAAt(mx, my); got != lineColour {
		t.Errorf("line midpoint (%d,%d) is %v, want %v", mx, my, got, lineColour)
	}
	// Floor pixels are tinted green, wall pixels blue.
	for _, p := range planes {
		for y := 0; y < 120; y += 7 {
			for x := 0; x < 160; x += 7 {
				if !p.Contains(x, y) || nearLine(lines, x, y) {
					continue
				}
				c := out.RGBAAt(x, y)
				switch p.Kind {
				case PlaneFloor:
					if c.G <= c.R || c.G <= c.B {
						t.Fatalf("floor pixel (%d,%d) is %v, want green-tinted", x, y, c)
					}
				case PlaneWall:
					if c.B <= c.R || c.B <= c.G {
						t.Fatalf("wall pixel (%d,%d) is %v, want blue-tinted", x, y, c)
					}
				}
			}
		}
	}
}

func nearLine(lines []Line, x, y int) bool {
	for _, l := range lines {
		if l.Dist(float64(x)+0.5, float64(y)+0.5) < 2 {
			return true
		}
	}
	return false
}

func TestWritePNGRoundTrips(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 3, 2))
	img.SetRGBA(1, 1, color.RGBA{10, 20, 30, 255})
	path := filepath.Join(t.TempDir(), "f.png")
	if err := WritePNG(path, img); err != nil {
		t.Fatal(err)
	}
	r, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := png.Decode(r)
	if err != nil {
		t.Fatal(err)
	}
	if c := color.RGBAModel.Convert(got.At(1, 1)).(color.RGBA); c != (color.RGBA{10, 20, 30, 255}) {
		t.Errorf("pixel (1,1) is %v after the round trip", c)
	}
}

func TestWritePNGReportsAMissingDirectory(t *testing.T) {
	err := WritePNG(filepath.Join(t.TempDir(), "no", "such", "f.png"), image.NewGray(image.Rect(0, 0, 1, 1)))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error %v, want one wrapping fs.ErrNotExist", err)
	}
}
