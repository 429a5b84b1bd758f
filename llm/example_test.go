package llm_test

import (
	"context"
	"fmt"

	"github.com/personaos/persona/llm"
)

func ExampleBuildHistory() {
	room := []llm.ChatLine{
		{Author: "alice", Content: "can someone review my handler?"},
		{Author: "CodeReview", Content: "paste it in a code block"},
		{Author: "alice", Content: "func h() { return }"},
	}
	for _, m := range llm.BuildHistory("CodeReview", room, 0, 0) {
		fmt.Printf("%s %s: %s\n", m.Role, m.Name, m.Content)
	}
	// Output:
	// user alice: can someone review my handler?
	// assistant CodeReview: paste it in a code block
	// user alice: func h() { return }
}

func ExampleScripted() {
	var model llm.Model = llm.Scripted{}
	reply, err := model.Complete(context.Background(), llm.Request{
		Persona: "Planner",
		System:  "You are Planner. You turn goals into steps.",
		History: []llm.Message{{Role: llm.RoleUser, Name: "alice", Content: "we should ship the beta on Friday"}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(reply.Content)
	// Output:
	// (demo reply, no model configured) @alice You said "we should ship the beta on Friday". With a model configured I would propose a short plan with an owner for each step.
}
