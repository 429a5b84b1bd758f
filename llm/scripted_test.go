package llm

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func TestScriptedVoices(t *testing.T) {
	ask := func(from, text string) []Message {
		return []Message{
			{Role: RoleUser, Name: "carol", Content: "earlier message"},
			{Role: RoleAssistant, Name: "x", Content: "my own earlier reply"},
			{Role: RoleUser, Name: from, Content: text},
		}
	}
	tests := []struct {
		name    string
		req     Request
		want    []string // all must appear
		notWant []string
	}{
		{
			name: "helper answers a question to its asker",
			req:  Request{Persona: "Helper", History: ask("alice", "How do I stop a goroutine leak in tests?")},
			want: []string{"@alice ", "goroutine leak tests"},
		},
		{
			name: "reviewer comments on code with an unchecked error",
			req:  Request{Persona: "CodeReview", History: ask("bob", "```go\nf, _ := os.Open(name)\nerr := f.Close()\n```")},
			want: []string{"@bob ", "Reviewed it.", "error value looks unchecked"},
		},
		{
			name: "reviewer asks for code when there is none",
			req:  Request{Persona: "CodeReview", History: ask("bob", "the deployment feels slow today")},
			want: []string{"I review code", "code block"},
		},
		{
			name: "reviewer praises clean code and asks for tests",
			req:  Request{Persona: "CodeReview", History: ask("bob", "func add(a, b int) int { return a + b }")},
			want: []string{"reads cleanly", "test"},
		},
		{
			name: "teacher explains",
			req:  Request{Persona: "Teacher", History: ask("dan", "what is backpressure?")},
			want: []string{"backpressure", "example"},
		},
		{
			name: "planner proposes numbered steps",
			req:  Request{Persona: "Planner", History: ask("erin", "we need to migrate the database")},
			want: []string{"1)", "2)", "3)", "migrate database"},
		},
		{
			name: "voice comes from the system prompt when the name says nothing",
			req:  Request{Persona: "Ada", System: "You are Ada, a patient tutor.", History: ask("dan", "what is recursion?")},
			want: []string{"recursion", "example"},
		},
		{
			name: "unknown role speaks in its own name",
			req:  Request{Persona: "Zed", History: ask("fay", "nice weather for sailing")},
			want: []string{"Zed here", "weather sailing"},
		},
		{
			name: "no user message: introduces itself by name",
			req:  Request{Persona: "Planner", System: "plan things"},
			want: []string{"I'm Planner", "plan"},
		},
		{
			name:    "mentions of others are not the topic",
			req:     Request{Persona: "Helper", History: ask("alice", "@Teacher could you check the scheduler?")},
			want:    []string{"scheduler"},
			notWant: []string{"Teacher"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r1, err := Scripted{}.Complete(t.Context(), tt.req)
			if err != nil {
				t.Fatalf("Complete: %v", err)
			}
			r2, _ := Scripted{}.Complete(t.Context(), tt.req)
			if r1 != r2 {
				t.Errorf("not deterministic:\n%+v\n%+v", r1, r2)
			}
			for _, w := range tt.want {
				if !strings.Contains(r1.Content, w) {
					t.Errorf("reply %q lacks %q", r1.Content, w)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(r1.Content, w) {
					t.Errorf("reply %q contains %q", r1.Content, w)
				}
			}
			if r1.Model != ScriptedModel || r1.Attempts != 1 || r1.PromptTokens <= 0 || r1.CompletionTokens <= 0 {
				t.Errorf("reply metadata = %+v, want scripted model, 1 attempt, token estimates", r1)
			}
		})
	}
}

func TestScriptedRepliesVaryAcrossMessages(t *testing.T) {
	seen := map[string]bool{}
	for _, q := range []string{"how do channels work?", "why is my build slow?", "where do logs go?", "what breaks the cache?"} {
		r, _ := Scripted{}.Complete(t.Context(), Request{Persona: "Helper", History: []Message{{Role: RoleUser, Content: q}}})
		seen[strings.SplitN(r.Content, ".", 2)[0]] = true
	}
	if len(seen) < 2 {
		t.Errorf("four questions got %d distinct openings, want the phrasing to vary", len(seen))
	}
}

func TestScriptedDelay(t *testing.T) {
	req := Request{Persona: "Helper", History: []Message{{Role: RoleUser, Content: "hi?"}}}
	t.Run("waits the delay", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			start := time.Now()
			if _, err := (Scripted{Delay: 2 * time.Second}).Complete(t.Context(), req); err != nil {
				t.Fatalf("Complete: %v", err)
			}
			if got := time.Since(start); got != 2*time.Second {
				t.Errorf("took %v, want 2s", got)
			}
		})
	})
	t.Run("returns when ctx is done", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, err := (Scripted{Delay: time.Minute}).Complete(ctx, req)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("err = %v, want DeadlineExceeded", err)
			}
			if got := time.Since(start); got != 500*time.Millisecond {
				t.Errorf("took %v, want 500ms", got)
			}
		})
	})
	t.Run("done ctx fails even without delay", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := (Scripted{}).Complete(ctx, req); !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want Canceled", err)
		}
	})
}

func TestScriptedStreamsAWordAtATime(t *testing.T) {
	var texts []string
	req := Request{Persona: "Helper", History: []Message{{Role: RoleUser, Name: "ann", Content: "my build fails"}},
		OnText: func(s string) { texts = append(texts, s) }}
	r, err := Scripted{}.Complete(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if len(texts) < 2 || texts[len(texts)-1] != r.Content {
		t.Fatalf("OnText got %q, want growing text ending in the reply %q", texts, r.Content)
	}
	for i := 1; i < len(texts); i++ {
		if !strings.HasPrefix(texts[i], texts[i-1]) || len(texts[i]) <= len(texts[i-1]) {
			t.Fatalf("OnText %d %q does not grow from %q", i, texts[i], texts[i-1])
		}
	}
}
