package game

import (
	"bufio"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"os"
	"strings"
)

// CellPixels is the side of one board cell in Image and PNG.
const CellPixels = 16

// ASCII renders w as text: a status line, then one line per row with '#' walls, '*' food, 'X'
// predators, each player's glyph (its initial, or a digit), and '.' for empty cells. A predator hides
// what it stands on, and a player hides food. Stunned players are listed with a '~'.
func ASCII(w World) string {
	grid := make([][]byte, w.H)
	for y := range grid {
		grid[y] = []byte(strings.Repeat(".", w.W))
	}
	put := func(p Pos, c byte) {
		if p.X >= 0 && p.Y >= 0 && p.X < w.W && p.Y < w.H {
			grid[p.Y][p.X] = c
		}
	}
	for _, p := range w.Walls {
		put(p, '#')
	}
	for _, p := range w.Food {
		put(p, '*')
	}
	for _, p := range w.Players {
		put(p.Pos, p.Glyph)
	}
	for _, p := range w.Predators {
		put(p, 'X')
	}
	var b strings.Builder
	fmt.Fprintf(&b, "tick %d", w.Tick)
	for _, p := range w.Players {
		stun := ""
		if p.Stunned > 0 {
			stun = "~"
		}
		fmt.Fprintf(&b, "  %s(%c)%s %d", p.Name, p.Glyph, stun, p.Score)
	}
	b.WriteByte('\n')
	for _, row := range grid {
		b.Write(row)
		b.WriteByte('\n')
	}
	return b.String()
}

var (
	colBackground = color.RGBA{0x1b, 0x1d, 0x23, 0xff}
	colGrid       = color.RGBA{0x25, 0x28, 0x30, 0xff}
	colWall       = color.RGBA{0x70, 0x74, 0x7c, 0xff}
	colFood       = color.RGBA{0x4c, 0xc2, 0x5a, 0xff}
	colPredator   = color.RGBA{0xe0, 0x3c, 0x31, 0xff}
	// Players cycle through these; a stunned player is drawn at half brightness.
	colPlayers = []color.RGBA{
		{0x4d, 0x9d, 0xe0, 0xff}, {0xf2, 0xc1, 0x4e, 0xff}, {0xb0, 0x7c, 0xe8, 0xff},
		{0x3c, 0xd6, 0xd0, 0xff}, {0xf2, 0x8c, 0x3c, 0xff}, {0xe8, 0x6c, 0xb8, 0xff},
	}
)

// PlayerColor is the colour Image draws player number i (Config order) in, for legends and plots.
func PlayerColor(i int) color.RGBA { return colPlayers[i%len(colPlayers)] }

// Image draws w with CellPixels per cell: walls as grey blocks, food as small green squares,
// predators as red squares, players as discs in PlayerColor.
func Image(w World) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w.W*CellPixels, w.H*CellPixels))
	for y := range img.Rect.Dy() {
		for x := range img.Rect.Dx() {
			c := colBackground
			if x%CellPixels == 0 || y%CellPixels == 0 {
				c = colGrid
			}
			img.SetRGBA(x, y, c)
		}
	}
	square := func(p Pos, inset int, c color.RGBA) {
		for y := inset; y < CellPixels-inset; y++ {
			for x := inset; x < CellPixels-inset; x++ {
				img.SetRGBA(p.X*CellPixels+x, p.Y*CellPixels+y, c)
			}
		}
	}
	disc := func(p Pos, c color.RGBA) {
		r := float64(CellPixels)/2 - 1.5
		for y := range CellPixels {
			for x := range CellPixels {
				dx, dy := float64(x)-float64(CellPixels-1)/2, float64(y)-float64(CellPixels-1)/2
				if dx*dx+dy*dy <= r*r {
					img.SetRGBA(p.X*CellPixels+x, p.Y*CellPixels+y, c)
				}
			}
		}
	}
	for _, p := range w.Walls {
		square(p, 0, colWall)
	}
	for _, p := range w.Food {
		square(p, CellPixels/3, colFood)
	}
	for i, p := range w.Players {
		c := PlayerColor(i)
		if p.Stunned > 0 {
			c = color.RGBA{c.R / 2, c.G / 2, c.B / 2, 0xff}
		}
		disc(p.Pos, c)
	}
	for _, p := range w.Predators {
		square(p, 2, colPredator)
	}
	return img
}

// WritePNG encodes Image(w) as PNG to dst.
func WritePNG(w World, dst io.Writer) error {
	if err := png.Encode(dst, Image(w)); err != nil {
		return fmt.Errorf("encode board png: %w", err)
	}
	return nil
}

// PNG writes Image(w) to the file at path, replacing it.
func PNG(w World, path string) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("board png: %w", err)
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("board png: %w", cerr)
		}
	}()
	bw := bufio.NewWriter(f)
	if err := WritePNG(w, bw); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("board png: %w", err)
	}
	return nil
}
