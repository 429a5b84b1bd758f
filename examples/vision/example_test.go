package vision_test

import (
	"fmt"

	"github.com/personaos/persona/examples/vision"
)

// The whole pipeline on one frame of the default walk, scored against the
// frame's ground truth.
func Example() {
	cam := vision.Camera{}
	room := vision.DefaultRoom()
	path := vision.NewPath(1, vision.PathOptions{})

	prev := cam.Capture(room, path, 0)
	f := cam.Capture(room, path, 1)
	fmt.Printf("%v camera, novelty %.2f\n", path.SegmentAt(f.At).Kind, vision.Novelty(prev.Img, f.Img))

	lines := vision.FindLines(f.Img, vision.LineOptions{})
	planes := vision.SegmentPlanes(f.Img, lines, vision.PlaneOptions{Horizon: cam.Horizon(f.Pose)})
	labels := vision.Semantic(f.Img, planes)
	fmt.Printf("%d lines, %.0f%% of the room's edges\n", len(lines), 100*vision.LineQuality(lines, f.Truth.Lines))
	fmt.Printf("%d planes, %.0f%% of pixels labelled right\n", len(planes), 100*vision.Quality(labels, f.Truth.Labels))
	// Output:
	// still camera, novelty 0.00
	// 3 lines, 100% of the room's edges
	// 3 planes, 100% of pixels labelled right
}
