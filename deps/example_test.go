package deps_test

import (
	"fmt"

	"github.com/personaos/persona/deps"
)

// The mobile CV pipeline from the seed: each frame goes through the line
// finder, then the plane segmenter, then semantic segmentation. Each stage is
// handed a frame only when the stage before it is done, with its output.
func Example() {
	g, err := deps.NewGraph([]deps.Node{
		{Name: "lines", Notifies: []string{"planes"}},
		{Name: "planes", Notifies: []string{"semantic"}},
		{Name: "semantic"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	tr := deps.NewTracker(g, deps.Options{}, func(r deps.Release) {
		fmt.Printf("%s may start %s (%v) with %v\n", r.Persona, r.Key, r.Status, r.Inputs)
	})
	defer tr.Close()

	tr.Begin("frame-1")
	tr.Finish("lines", "frame-1", deps.Done, "4 lines")
	tr.Finish("planes", "frame-1", deps.Done, "1 plane")
	tr.Begin("frame-2")
	tr.Finish("lines", "frame-2", deps.Skipped, nil) // a blurred frame: declined

	_, err = deps.NewGraph([]deps.Node{
		{Name: "a", Notifies: []string{"b"}},
		{Name: "b", Notifies: []string{"a"}},
	})
	fmt.Println(err)
	// Output:
	// planes may start frame-1 (done) with [{lines done 4 lines}]
	// semantic may start frame-1 (done) with [{planes done 1 plane}]
	// planes may start frame-2 (skipped) with [{lines skipped <nil>}]
	// deps: cycle: a -> b -> a
}
