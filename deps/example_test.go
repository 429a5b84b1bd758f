package deps_test

import (
	"fmt"
	"time"

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

// Barriers decides what a Tracker does, on the caller's clock: here a frame
// whose line finder stalls. The plane segmenter is released incomplete at
// the line finder's deadline, and semantic segmentation, although the plane
// segmenter then finishes normally, is told its input is incomplete too.
func ExampleBarriers() {
	g, err := deps.NewGraph([]deps.Node{
		{Name: "lines", Notifies: []string{"planes"}},
		{Name: "planes", Notifies: []string{"semantic"}},
		{Name: "semantic"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	b := deps.NewBarriers(g, deps.Options{Timeout: time.Second})
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	show := func(rel []deps.Release) {
		for _, r := range rel {
			fmt.Printf("%s may start %s (%v) with %v\n", r.Persona, r.Key, r.Status, r.Inputs)
		}
	}

	show(b.Begin(t0, "frame-1"))
	next, _ := b.NextDeadline()
	fmt.Println("next deadline after", next.Sub(t0))
	show(b.Expire(next))
	show(b.Finish(next.Add(300*time.Millisecond), "planes", "frame-1", deps.Done, "1 plane"))
	fmt.Println("open keys:", b.Pending())
	// Output:
	// next deadline after 1s
	// planes may start frame-1 (incomplete) with []
	// semantic may start frame-1 (incomplete) with [{planes incomplete 1 plane}]
	// open keys: 0
}
