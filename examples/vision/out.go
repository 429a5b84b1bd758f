package vision

import (
	"encoding/json"
	"fmt"
	"image"
	"os"
	"path/filepath"
)

// outScale enlarges the overlay PNGs: a 160x120 frame is small on a screen,
// and nearest-neighbour scaling keeps the one-pixel lines sharp.
const outScale = 4

// writeOut writes up to n overlay PNGs of frames the persona run took
// through the semantic segmenter, evenly spread over the run, with the
// report as summary.txt and report.json.
func writeOut(dir string, n int, frames []*Frame, pers *runResult, rep Report) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("vision: out: %w", err)
	}
	var done []int
	for i, f := range pers.tr.frames {
		if f.LabelsFresh && f.Planes != nil {
			done = append(done, i)
		}
	}
	for k := range min(n, len(done)) {
		// Evenly spread: the k-th of n picks, centred in its share.
		i := done[(2*k+1)*len(done)/(2*min(n, len(done)))]
		f := pers.tr.frames[i]
		name := filepath.Join(dir, fmt.Sprintf("frame-%04d.png", i))
		if err := WritePNG(name, upscale(Draw(frames[i], f.Lines, f.Planes), outScale)); err != nil {
			return fmt.Errorf("vision: out: %w", err)
		}
	}
	txt, err := os.Create(filepath.Join(dir, "summary.txt"))
	if err != nil {
		return fmt.Errorf("vision: out: %w", err)
	}
	if err := rep.WriteText(txt); err != nil {
		txt.Close()
		return fmt.Errorf("vision: out: summary: %w", err)
	}
	if err := txt.Close(); err != nil {
		return fmt.Errorf("vision: out: summary: %w", err)
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("vision: out: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "report.json"), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("vision: out: %w", err)
	}
	return nil
}

// upscale enlarges img k times by repeating pixels.
func upscale(img *image.RGBA, k int) *image.RGBA {
	b := img.Bounds()
	w := b.Dx()
	out := image.NewRGBA(image.Rect(0, 0, w*k, b.Dy()*k))
	for y := range b.Dy() {
		src := img.Pix[(y)*img.Stride:]
		row := out.Pix[y*k*out.Stride:]
		for x := range w {
			for i := range k {
				copy(row[(x*k+i)*4:(x*k+i)*4+4], src[x*4:x*4+4])
			}
		}
		for i := 1; i < k; i++ {
			copy(out.Pix[(y*k+i)*out.Stride:(y*k+i+1)*out.Stride], row[:out.Stride])
		}
	}
	return out
}
