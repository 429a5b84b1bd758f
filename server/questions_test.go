package server

import (
	"fmt"
	"testing"
	"time"

	"github.com/personaos/persona/chat"
)

// A flood of human messages is tracked within bounds: past maxQuestions
// the oldest are aged early, counted unanswered unless answered, and the
// horizon still ages the rest.
func TestQuestionsTrackedAreBounded(t *testing.T) {
	var q questions
	t0 := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	msg := func(i int) chat.Message {
		return chat.Message{ID: fmt.Sprintf("m%07d", i), Room: "r", Author: "ann", Kind: chat.Human, At: t0.Add(time.Duration(i) * time.Microsecond)}
	}
	q.apply(msg(0), nil)
	q.apply(chat.Message{ID: "reply", Kind: chat.Persona, ReplyTo: "m0000000", At: t0}, nil) // m0 answered
	for i := 1; i < maxQuestions+10; i++ {
		q.apply(msg(i), nil)
	}
	if n := len(q.recent); n != maxQuestions {
		t.Fatalf("%d questions tracked, want the cap %d", n, maxQuestions)
	}
	if q.aged != 9 {
		t.Fatalf("aged %d, want the 9 unanswered ones pushed out (m0 was answered)", q.aged)
	}
	q.age(t0.Add(time.Hour))
	if len(q.recent) != 0 || q.aged != maxQuestions+9 {
		t.Fatalf("after the horizon: %d tracked, %d aged; want 0 and %d", len(q.recent), q.aged, maxQuestions+9)
	}
}
