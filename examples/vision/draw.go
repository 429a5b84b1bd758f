package vision

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
)

// Overlay colours: planes are tinted, found lines drawn on top in red.
var (
	planeTint = [...]color.RGBA{
		PlaneFloor:   {40, 200, 60, 255},
		PlaneWall:    {60, 110, 230, 255},
		PlaneCeiling: {230, 200, 40, 255},
	}
	lineColour = color.RGBA{255, 30, 30, 255}
)

// Draw returns the frame in colour with each plane tinted by kind (floor
// green, walls blue with alternate walls lighter, ceiling yellow) and the
// lines drawn over it in red. It does not modify its arguments.
func Draw(frame *Frame, lines []Line, planes []Plane) *image.RGBA {
	b := frame.Img.Bounds()
	out := image.NewRGBA(b)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			g := frame.Img.GrayAt(x, y).Y
			out.SetRGBA(x, y, color.RGBA{g, g, g, 255})
		}
	}
	wall := 0
	for _, p := range planes {
		tint := planeTint[p.Kind]
		alpha := 0.35
		if p.Kind == PlaneWall {
			// Alternate the strength so neighbouring walls stay apart.
			alpha = []float64{0.3, 0.5}[wall%2]
			wall++
		}
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				if p.Mask.AlphaAt(x, y).A == 0 {
					continue
				}
				c := out.RGBAAt(x, y)
				out.SetRGBA(x, y, color.RGBA{
					blend(c.R, tint.R, alpha), blend(c.G, tint.G, alpha), blend(c.B, tint.B, alpha), 255,
				})
			}
		}
	}
	for _, l := range lines {
		drawSegment(out, l.X0, l.Y0, l.X1, l.Y1, lineColour)
	}
	return out
}

func blend(a, b uint8, t float64) uint8 {
	return uint8(math.Round(float64(a)*(1-t) + float64(b)*t))
}

// drawSegment plots a one-pixel segment by stepping along its longer axis.
func drawSegment(img *image.RGBA, x0, y0, x1, y1 float64, c color.RGBA) {
	n := int(math.Ceil(math.Max(math.Abs(x1-x0), math.Abs(y1-y0))))
	for i := 0; i <= n; i++ {
		t := 0.0
		if n > 0 {
			t = float64(i) / float64(n)
		}
		x, y := int(math.Floor(x0+t*(x1-x0))), int(math.Floor(y0+t*(y1-y0)))
		if image.Pt(x, y).In(img.Rect) {
			img.SetRGBA(x, y, c)
		}
	}
}

// WritePNG encodes img as a PNG file at path, replacing any file there.
func WritePNG(path string, img image.Image) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write png: %w", err)
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return fmt.Errorf("write png %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write png %s: %w", path, err)
	}
	return nil
}
