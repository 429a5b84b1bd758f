package game

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestASCII(t *testing.T) {
	e := arena(t, 6, 4, []Pos{{1, 1}, {4, 2}}, []Pos{{5, 0}}, Config{})
	e.food[e.idx(Pos{0, 3})] = true
	e.wall[e.idx(Pos{2, 2})] = true
	want := "tick 0  ada(a) 0  bo(b) 0\n" +
		".....X\n" +
		".a....\n" +
		"..#.b.\n" +
		"*.....\n"
	if got := ASCII(e.World()); got != want {
		t.Errorf("ASCII:\n%s\nwant:\n%s", got, want)
	}
}

func TestGlyphsAreDistinct(t *testing.T) {
	got := string(glyphs([]string{"ada", "Anna", "bo", "9", "x"}))
	if want := "a1b2x"; got != want {
		t.Errorf("glyphs %q, want %q", got, want)
	}
}

func TestPNG(t *testing.T) {
	e := arena(t, 6, 4, []Pos{{1, 1}}, []Pos{{5, 0}}, Config{})
	path := filepath.Join(t.TempDir(), "board.png")
	if err := PNG(e.World(), path); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 6*CellPixels || b.Dy() != 4*CellPixels {
		t.Errorf("image %v, want %dx%d", b, 6*CellPixels, 4*CellPixels)
	}
	mid := CellPixels / 2
	if r, g, b, _ := img.At(5*CellPixels+mid, mid).RGBA(); r>>8 != uint32(colPredator.R) || g>>8 != uint32(colPredator.G) || b>>8 != uint32(colPredator.B) {
		t.Errorf("predator cell colour %d,%d,%d, want %v", r>>8, g>>8, b>>8, colPredator)
	}
	if r, g, b, _ := img.At(CellPixels+mid, CellPixels+mid).RGBA(); r>>8 != uint32(PlayerColor(0).R) || g>>8 != uint32(PlayerColor(0).G) || b>>8 != uint32(PlayerColor(0).B) {
		t.Errorf("player cell colour %d,%d,%d, want %v", r>>8, g>>8, b>>8, PlayerColor(0))
	}
	if err := PNG(e.World(), filepath.Join(t.TempDir(), "missing", "board.png")); err == nil ||
		!strings.Contains(err.Error(), "board png") {
		t.Errorf("PNG into a missing directory: %v, want a wrapped error", err)
	}
}
