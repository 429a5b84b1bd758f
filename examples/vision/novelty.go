package vision

import (
	"image"
	"math"
)

// Novelty block size and tolerances. At 160x120 an 8x8 block gives a 20x15
// thumbnail: about 300 numbers to compare instead of 19200.
const (
	noveltyBlock = 8
	// noveltyDeadZone is the change of a block's mean, in grey levels,
	// that counts as no change: ±3 levels of sensor noise average to well
	// under one level over 64 pixels, and slow lighting flicker stays
	// below two.
	noveltyDeadZone = 2.0
	// noveltyFull is the change beyond the dead zone at which a block
	// counts as fully changed.
	noveltyFull = 16.0
)

// Novelty scores how much cur differs from prev, from 0 (the same view) to
// 1 (every part of the view changed). Both images are reduced to the means
// of 8x8 blocks; each block's change beyond a small dead zone is scaled so
// that 16 grey levels count as a full change, and the score is the average
// over blocks. It reads each pixel once and allocates only the thumbnail, so
// it is cheap enough for every frame. A nil prev, or images of different
// sizes, score 1: everything is new. Novelty is pure and safe for concurrent
// use.
func Novelty(prev, cur *image.Gray) float64 {
	if prev == nil || cur == nil || prev.Bounds().Size() != cur.Bounds().Size() {
		return 1
	}
	return thumbNovelty(thumbnail(prev), thumbnail(cur))
}

// thumbNovelty is Novelty on two thumbnails of the same size, so that a
// stage that keeps the thumbnail of its last frame compares ~300 numbers
// instead of rereading a whole image.
func thumbNovelty(a, b []float64) float64 {
	if a == nil || len(a) != len(b) {
		return 1
	}
	if len(a) == 0 {
		return 0
	}
	var sum float64
	for i := range a {
		d := math.Abs(a[i]-b[i]) - noveltyDeadZone
		if d > 0 {
			sum += math.Min(1, d/noveltyFull)
		}
	}
	return sum / float64(len(a))
}

// thumbnail returns the block means of img, row by row; partial blocks at
// the right and bottom edges are ignored.
func thumbnail(img *image.Gray) []float64 {
	b := img.Bounds()
	bw, bh := b.Dx()/noveltyBlock, b.Dy()/noveltyBlock
	out := make([]float64, bw*bh)
	for y := 0; y < bh*noveltyBlock; y++ {
		row := img.Pix[y*img.Stride:]
		for x := 0; x < bw*noveltyBlock; x++ {
			out[(y/noveltyBlock)*bw+x/noveltyBlock] += float64(row[x])
		}
	}
	for i := range out {
		out[i] /= noveltyBlock * noveltyBlock
	}
	return out
}
