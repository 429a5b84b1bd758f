// Package vision is the image-processing half of the `persona vision`
// example: a synthetic camera walking through a room and the stages of the
// seed's mobile AR pipeline (novelty, line finder, plane segmenter, semantic
// segmenter, lighting estimator), all in plain Go on the standard library.
//
// Phase 1 (this code) is pure: no goroutines, no clocks, no project imports.
// Each stage is a function of its inputs, deterministic and safe for
// concurrent use, so the personas that will run the stages (phase 2) can call
// them from any goroutine and tests can call them directly.
//
// # The camera
//
// NewPath builds a deterministic ~20 s walk from a seed: segments that hold
// Still, Pan slowly (at most 12°/s) or Turn quickly (80° to 120° in under a
// second) to new territory. Camera.Capture renders frame n of the walk at 30
// frames a second (the rate) by casting rays into a box Room: a tiled
// floor, panelled walls painted so that adjacent walls differ, a white
// ceiling, a window light and a lamp, fresh sensor noise per frame, and, in
// DefaultRoom, a door, a window and a picture. Every Frame carries its ground
// truth: the room edges visible in the image and a floor/wall/other label per
// pixel. A 160x120 frame takes about 6 ms to render on one core.
//
// # The stages
//
//   - Novelty(prev, cur) compares 8x8 block means: about 0 for a still
//     camera (sensor noise averages out), a few hundredths frame to frame in
//     a slow pan, and above 0.5 between views before and after a turn. It
//     costs ~50 µs a frame, which is why it can run on every frame.
//   - FindLines is Sobel edges thinned by non-maximum suppression and a Hough
//     transform in which each edge pixel votes only near its own gradient
//     direction, followed by a least-squares fit and the longest gap-free
//     run for each peak. About 1 ms a frame.
//   - SegmentPlanes turns lines into floor, wall and ceiling regions under the
//     box-room assumption: corners (vertical lines no other line crosses) cut
//     the image into wall slabs, and each slab's lowest and highest spanning
//     lines are its floor and ceiling edges. It needs the lines: it waits for
//     the line finder.
//   - Semantic labels pixels floor, wall or other from the planes, and marks
//     as other what does not fit its plane's brightness (doors, windows,
//     pictures). It needs the planes: it waits for the plane segmenter.
//   - EstimateLighting fits a brightness gradient to the thumbnail: cheap, for
//     a low-priority persona.
//   - Draw and WritePNG make the overlay frames written by `--out DIR`.
//
// # Quality
//
// LineQuality is the fraction of true lines matched by a found line (within
// 3°, 3 pixels, half the length covered); Quality is pixel accuracy of the
// labels. Over every tenth frame of the walks with seeds 1 to 5 through
// DefaultRoom, the line finder matches 99% to 100% of the visible room edges
// and 94% to 99% of pixels are labelled right (99% or more in a bare room).
// What it cannot do: a door that is as wide in the image as the wall beside
// it can be taken for the wall, and the wall then for other (73% on such a
// frame); the horizon (or the middle row when unknown) must separate floor
// edges from ceiling edges, which holds for a camera looking slightly down, as
// the path's does.
//
// # Testing code that uses it
//
// Render frames with a fixed seed and pose (Camera.Render) or path
// (Camera.Capture) and assert on LineQuality and Quality against
// Frame.Truth; everything is deterministic, so thresholds do not flake.
// Keep images small (the default 160x120, or less) to keep tests fast.
package vision
