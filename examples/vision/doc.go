// Package vision is the `persona vision` example: a synthetic camera walking
// through a room, the stages of the seed's mobile AR pipeline (novelty, line
// finder, plane segmenter, semantic segmenter, lighting estimator) in plain
// Go, and Pipeline, which runs those stages as personas on the public API of
// the persona runtime and compares them with a baseline that runs every
// stage on every frame.
//
// The camera and the stages are pure: no goroutines, no clocks. Each stage
// is a function of its inputs, deterministic and safe for concurrent use, so
// the personas call them from their own goroutines and tests call them
// directly. Only Pipeline starts goroutines and reads clocks.
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
//     the persona shed first when the governor runs hot.
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
// # The pipeline as personas
//
// Pipeline.Run renders the walk once and runs it twice. The baseline runs
// every stage on every frame, synchronously. The persona run delivers each
// frame in real time at the camera's rate as an Item[Frame] with a deadline
// (three frame times) to a persona runtime holding one persona per stage:
//
//		novelty  -> lines -> planes -> semantic
//		         -> lighting
//
//	  - every stage wants every frame: frames come at priority 0.85, above
//	    the urgent line, and every stage keeps it, so the runtime engages
//	    every frame at once at every stage, whatever the stage's mood,
//	    energy, thresholds, bandwidth share or cadence. A stage that does not
//	    work on a frame declines it (persona.ErrDecline, counted as skipped),
//	    at once: it never lets a frame wait in its inbox until it expires.
//	  - novelty runs on every frame (~50 µs). Its output is the frame's
//	    thumbnail.
//	  - lines works only on new territory: novelty against the last frame
//	    it processed at or above Options.NoveltyGate. Otherwise it declines,
//	    and planes and semantic are released with the frame Skipped and
//	    decline too: the last lines, planes and labels stand. It never goes
//	    back to a frame older than one it processed.
//	  - planes waits for lines and semantic for planes (Options.WaitsFor):
//	    the runtime hands them a frame only when the stage before is done
//	    with it, with its output.
//	  - lighting waits for novelty, refreshing its estimate when the view
//	    changed or once a second.
//
// A governor (package govern) samples the process's CPU every second and
// holds it under Options.DutyTarget, a fraction of one core ("don't burn the
// user's hand"). It sheds work through the stages' own judgement, in the
// states it enters once the duty it measured reached the target (serious
// and critical, left one state per sample; fair, entered at three quarters
// of the target, sheds nothing): lighting is shed first (it declines every
// frame from serious), then the line finder waits for more drift (a novelty
// of 0.10 at serious, 0.25 at critical, against the last frame it
// processed; new territory, novelty 0.45 and more after a turn, is worked
// on in every state). Planes and semantic follow through on every frame
// with fresh lines: work is shed at the head of the expensive chain, never
// after lines were found.
//
// Guarantee: no stage lets a frame expire while the duty is under its
// target, nor, by its policy, while it is over: heat is answered by
// declining. A frame expires only if a stage could not reach it within its
// deadline at all (its core taken away that long); the runtime's
// dependency timeout (the same deadline) then releases the stages after it,
// which expire it too. Stale frames never pile up; every frame ends, at
// every stage, processed, skipped (declined), expired or failed, and the
// Report's accounts add up. Shedding by the runtime's thresholds instead (a
// line finder's priority below the urgent line, not engaged when the
// governor raises the bar) let frames expire on a cool machine: the
// governor steps down one state per sample, so it stays serious for a
// second after a hot one.
//
// Pipeline's methods are safe for concurrent use; Run owns every goroutine
// it starts (renderers, the camera, the governor's sampler, the runtime's
// personas) and returns only after all of them have stopped.
//
// Cadences are the camera's: a stage rests one frame time while idle or
// active (the seed's 3 s to 10 s are a chat's rhythm), two when tired,
// three when overwhelmed. Frames are urgent and dependents are woken by
// each release, so the cadence never delays a frame: it only paces a
// stage's sweep of its inbox.
//
// The Report gives per stage the frames processed, skipped and expired and
// the CPU time spent in the stage (thread CPU time on Linux, wall time of
// the pure stage function elsewhere), the process's CPU, the duty cycle
// against the target, the latency from capture to the semantic
// segmenter's finishing a frame, the time spent in each thermal state, the
// frames that passed every stage (handled or declined at each) and those
// some stage let expire while the duty the governor had last measured was
// under the target (RunReport.ExpiredUnderTarget, which the guarantee above
// keeps at zero), the CPU ratio against the baseline, and line and label
// quality: on the frames both runs processed, and on every frame as shown,
// a skipped frame showing the last results computed before it.
//
// # Testing code that uses it
//
// Run a Pipeline inside a testing/synctest bubble with a small Path and an
// Options.CPUTime that follows the fake clock (or never moves, for a cool
// governor): the camera's time then passes instantly, each frame goes
// through the whole pipeline before the next is captured, and which stage
// ran on which frame is deterministic. Stage CPU times are real even in the
// bubble; assert on counts, not on times. A CPUTime that follows a script
// of duties on the fake clock drives the governor through its states
// deterministically (TestNoFrameExpiresUnderTheDutyTarget does).
//
// Render frames with a fixed seed and pose (Camera.Render) or path
// (Camera.Capture) and assert on LineQuality and Quality against
// Frame.Truth; everything is deterministic, so thresholds do not flake.
// Keep images small (the default 160x120, or less) to keep tests fast.
package vision
