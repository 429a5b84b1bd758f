package persona_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/personaos/persona"
	"github.com/personaos/persona/coord"
)

// expert is a chat responder that needs coordination: it says how keen it
// is to answer, and answers only when granted.
type expert struct {
	name, topic string
	replies     chan<- string
}

func (e expert) Evaluate(_ context.Context, it persona.Item[string]) (persona.Thought, error) {
	if strings.Contains(it.Payload, e.topic) {
		return persona.Thought{Confidence: 0.9}, nil
	}
	return persona.Thought{Confidence: 0.2}, nil
}

func (e expert) Respond(_ context.Context, it persona.Item[string], d coord.Decision) (any, error) {
	e.replies <- fmt.Sprintf("%s answers %s (%s)", e.name, it.ID, d.Reasons[e.name])
	return nil, nil
}

// Three personas hear every message of a room; one answers each. The
// most confident does, unless the message mentions someone.
func Example_coordination() {
	stream := coord.New(coord.Options{})
	defer stream.Close() // the caller owns the stream: close it after Shutdown
	rt := persona.NewRuntime(persona.RuntimeOptions{})

	replies := make(chan string, 10)
	var room []*persona.Persona[string]
	for _, e := range []expert{{"Coder", "bug", replies}, {"Poet", "rhyme", replies}, {"Critic", "review", replies}} {
		p, err := persona.Spawn(rt, e.name, persona.Coordinated[string](e),
			persona.Options{Coordination: stream})
		if err != nil {
			fmt.Println(err)
			return
		}
		room = append(room, p)
	}
	if err := rt.Start(); err != nil {
		fmt.Println(err)
		return
	}

	for _, msg := range []persona.Item[string]{
		{ID: "m1", Key: "lobby", Priority: 0.9, Payload: "there is a bug in the parser"},
		{ID: "m2", Key: "lobby", Priority: 0.9, Payload: "a bug, again", Addressees: []string{"Poet"}},
	} {
		if err := persona.Broadcast(room, stream, msg); err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(<-replies)
	}
	if _, err := rt.Shutdown(context.Background()); err != nil {
		fmt.Println(err)
	}
	// Output:
	// Coder answers m1 (top confidence 0.90)
	// Poet answers m2 (addressee)
}

// The seed's mobile vision pipeline: line finder -> plane segmenter ->
// semantic segmentation. Frames enter at the line finder; each stage is
// handed a frame when the stage before it is done, with its output.
func Example_pipeline() {
	rt := persona.NewRuntime(persona.RuntimeOptions{Logger: slog.New(slog.DiscardHandler)})
	done := make(chan string, 1)
	stage := func(name string, o persona.Options, last bool) (*persona.Persona[string], error) {
		return persona.Spawn(rt, name, persona.HandlerFunc[string](func(_ context.Context, it persona.Item[string]) (any, error) {
			in := it.Payload
			for _, u := range it.Upstream {
				in = fmt.Sprint(u.Value)
			}
			out := fmt.Sprintf("%s(%s)", name, in)
			if last {
				done <- fmt.Sprintf("%s %v: %s", it.ID, it.Status, out)
			}
			return out, nil
		}), o)
	}
	lines, err := stage("lines", persona.Options{Notifies: []string{"planes"}}, false)
	if err != nil {
		fmt.Println(err)
		return
	}
	stage("planes", persona.Options{}, false)
	stage("semantic", persona.Options{WaitsFor: []string{"planes"}}, true)
	if err := rt.Start(); err != nil {
		fmt.Println(err)
		return
	}

	for _, id := range []string{"frame-1", "frame-2"} {
		if err := lines.Deliver(persona.Item[string]{ID: id, Key: "camera-0", Priority: 0.9, Payload: id}); err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(<-done)
	}
	if _, err := rt.Shutdown(context.Background()); err != nil {
		fmt.Println(err)
	}
	// Output:
	// frame-1 done: semantic(planes(lines(frame-1)))
	// frame-2 done: semantic(planes(lines(frame-2)))
}

// A persona takes urgent work first and ordinary work after it, on its own
// goroutine; Shutdown stops it and lists what was left (nothing here). The
// README's library snippet is this example.
func Example() {
	rt := persona.NewRuntime(persona.RuntimeOptions{})
	busy := make(chan struct{})
	done := make(chan string, 3)
	p, err := persona.Spawn(rt, "helper", persona.HandlerFunc[string](
		func(ctx context.Context, it persona.Item[string]) (any, error) {
			if it.ID == "m1" {
				<-busy // m1 holds the persona until the others are in its inbox
			}
			done <- it.ID + ": " + it.Payload // a model call, a frame, a move
			return nil, nil
		}), persona.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	rt.Start()
	p.Deliver(persona.Item[string]{ID: "m1", Priority: 0.9, Payload: "@helper hi"}) // urgent: starts at once
	p.Deliver(persona.Item[string]{ID: "m2", Priority: 0.4, Payload: "nice day"})
	p.Deliver(persona.Item[string]{ID: "m3", Priority: 0.9, Payload: "@helper still there?"}) // urgent: before m2
	close(busy)
	for range 3 {
		fmt.Println(<-done)
	}
	report, err := rt.Shutdown(context.Background()) // every goroutine stopped; what was left is listed, not dropped
	fmt.Println("left over:", report.Pending(), err)
	// Output:
	// m1: @helper hi
	// m3: @helper still there?
	// m2: nice day
	// left over: 0 <nil>
}
