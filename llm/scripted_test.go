package llm

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"
	"unicode/utf8"
)

// ask is a room's history ending in from's message text: an earlier line
// of someone else's and one of the persona's own come first, as
// BuildHistory writes them.
func ask(from, text string) []Message {
	return []Message{
		{Role: RoleUser, Name: "carol", Content: "earlier message"},
		{Role: RoleAssistant, Name: "x", Content: "my own earlier reply"},
		{Role: RoleUser, Name: from, Content: text},
	}
}

func complete(t *testing.T, req Request) (Reply, error) {
	t.Helper()
	r1, err1 := Scripted{}.Complete(t.Context(), req)
	r2, err2 := Scripted{}.Complete(t.Context(), req)
	if r1 != r2 || !errors.Is(err2, err1) {
		t.Errorf("not deterministic:\n%+v %v\n%+v %v", r1, err1, r2, err2)
	}
	return r1, err1
}

func TestScriptedReplies(t *testing.T) {
	tests := []struct {
		name string
		req  Request
		want string
	}{
		{
			name: "helper walks a newcomer through an install",
			req:  Request{Persona: "Helper", History: ask("newcomer", "how do I install docker on debian?")},
			want: `(demo reply, no model configured) @newcomer You asked "how do I install docker on debian". With a model configured I would help you work it out step by step.`,
		},
		{
			name: "helper drops the filler after a question",
			req:  Request{Persona: "Helper", History: ask("alice", "my go build fails with a nil map panic, any idea?")},
			want: `(demo reply, no model configured) @alice You asked "my go build fails with a nil map panic". With a model configured I would walk you through it.`,
		},
		{
			name: "teacher quotes what to explain without the mention",
			req:  Request{Persona: "Teacher", History: ask("newcomer", "@Teacher can you explain what a mutex is?")},
			want: `(demo reply, no model configured) @newcomer You asked "can you explain what a mutex is". With a model configured I would explain it one step at a time.`,
		},
		{
			name: "teacher's voice comes from the system prompt when the name says nothing",
			req:  Request{Persona: "Ada", System: "You are Ada, a patient tutor.", History: ask("dan", "explain goroutines to a beginner please")},
			want: `(demo reply, no model configured) @dan You asked "explain goroutines to a beginner". With a model configured I would explain it one step at a time.`,
		},
		{
			name: "planner would plan the release",
			req:  Request{Persona: "Planner", History: ask("newcomer", "what should we plan for the release next week?")},
			want: `(demo reply, no model configured) @newcomer You asked "what should we plan for the release next week". With a model configured I would propose a short plan with an owner for each step.`,
		},
		{
			name: "planner hears a statement as said, not asked",
			req:  Request{Persona: "Planner", History: ask("erin", "we need to migrate the database")},
			want: `(demo reply, no model configured) @erin You said "we need to migrate the database". With a model configured I would break it into small steps, riskiest first.`,
		},
		{
			name: "reviewer takes a first look at code with an unchecked error",
			req:  Request{Persona: "CodeReview", History: ask("alice", "@CodeReview please review: func f() { x, err := g(); return x }")},
			want: `(demo reply, no model configured) @alice A first look at your code: an error value looks unchecked; handle it or say why dropping it is safe. With a model configured I would review it line by line.`,
		},
		{
			name: "reviewer praises clean code and asks for tests",
			req:  Request{Persona: "CodeReview", History: ask("bob", "func add(a, b int) int { return a + b }")},
			want: `(demo reply, no model configured) @bob A first look at your code: it reads cleanly; I would add tests for empty input and the error path. With a model configured I would review it line by line.`,
		},
		{
			name: "reviewer looks at a code block with nothing around it",
			req:  Request{Persona: "CodeReview", History: ask("bob", "```go\nkey := \"secret-123\"\n```")},
			want: `(demo reply, no model configured) @bob A first look at your code: a credential seems to be in the code; load it from the environment instead. With a model configured I would review it line by line.`,
		},
		{
			name: "reviewer asks for the code when there is none",
			req:  Request{Persona: "CodeReview", History: ask("carol", "can someone review my code in PR 12?")},
			want: `(demo reply, no model configured) @carol You asked "can someone review my code in PR 12". With a model configured I would review the code with you; paste it in a code block.`,
		},
		{
			name: "unknown role speaks in its own name",
			req:  Request{Persona: "Zed", History: ask("fay", "a go question for anyone")},
			want: `(demo reply, no model configured) @fay Zed here. You said "a go question". With a model configured I would join in.`,
		},
		{
			name: "the question is quoted, not the greeting, and long ones are cut at a word",
			req:  Request{Persona: "Helper", History: ask("alice", "Hi all! I'm new here. How do I get the build to stop failing when the cache is cold and the runner is new?")},
			want: `(demo reply, no model configured) @alice You asked "How do I get the build to stop failing when the cache…". With a model configured I would help you work it out step by step.`,
		},
		{
			name: "no name, no mention",
			req:  Request{Persona: "Helper", History: []Message{{Role: RoleUser, Content: "good morning team, what is the status of the deploy?"}}},
			want: `(demo reply, no model configured) You asked "what is the status of the deploy". With a model configured I would walk you through it.`,
		},
		{
			name: "no user message: introduces itself by name",
			req:  Request{Persona: "Planner", System: "plan things"},
			want: `(demo reply, no model configured) Hi, I'm Planner. Tell me the goal and I'll propose a plan.`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := complete(t, tt.req)
			if err != nil {
				t.Fatalf("Complete: %v", err)
			}
			if r.Content != tt.want {
				t.Errorf("reply\n got %s\nwant %s", r.Content, tt.want)
			}
			if !strings.HasPrefix(r.Content, DemoPrefix) {
				t.Errorf("reply %q does not start with %q", r.Content, DemoPrefix)
			}
			if r.Model != ScriptedModel || r.Attempts != 1 || r.PromptTokens <= 0 || r.CompletionTokens <= 0 {
				t.Errorf("reply metadata = %+v, want scripted model, 1 attempt, token estimates", r)
			}
		})
	}
}

func TestScriptedHasNothingToSay(t *testing.T) {
	for _, text := range []string{
		"hi all, nice weather today",
		"nice weather for sailing",
		"@Solo hello?",
		"hello, anyone here?",
		"how are you?",
		"good morning everyone!",
		"thanks, that fixed it!",
		"thank you",
		"lol",
		"ok sounds good",
		"what a nice day",
		"👍👍",
		"@Teacher",
		"```go\nfunc f() {}\n```", // code, for a helper
		DemoPrefix + `@alice You asked "how do I install docker". With a model configured I would walk you through it.`,
		"@bob " + DemoPrefix + "@alice Helper here.", // a merged reply, its other askers put first
	} {
		t.Run(text, func(t *testing.T) {
			r, err := complete(t, Request{Persona: "Helper", History: ask("ann", text)})
			if !errors.Is(err, ErrNothingToSay) || r.Content != "" {
				t.Errorf("reply %q, err %v; want ErrNothingToSay", r.Content, err)
			}
		})
	}
}

// A person who names the persona is owed an answer: a greeting that
// @mentions it gets a demo greeting back, not silence; another persona's
// demo line that names it does not.
func TestScriptedAnswersAGreetingThatNamesIt(t *testing.T) {
	for _, text := range []string{"@Helper hello?", "hi @helper", "@Helper", "@Helper thanks!"} {
		r, err := complete(t, Request{Persona: "Helper", History: ask("ann", text)})
		if err != nil || !strings.HasPrefix(r.Content, DemoPrefix+"@ann Hello!") {
			t.Errorf("%q: reply %q, err %v; want a demo greeting to @ann", text, r.Content, err)
		}
	}
	if r, err := complete(t, Request{Persona: "Helper", History: ask("Teacher", DemoPrefix+"@Helper hi")}); !errors.Is(err, ErrNothingToSay) {
		t.Errorf("a demo line naming it: reply %q, err %v; want ErrNothingToSay", r.Content, err)
	}
	if _, err := complete(t, Request{Persona: "Helper", History: ask("ann", "@Helperbot hello?")}); !errors.Is(err, ErrNothingToSay) {
		t.Errorf("another name that starts with it: err %v; want ErrNothingToSay", err)
	}
}

func TestScriptedAnswersShortQuestionsWithATopic(t *testing.T) {
	for _, text := range []string{"@Solo go?", "@Solo are you there?", "@Solo and you?", "is go fast?", "hey, all tests fail on CI"} {
		r, err := complete(t, Request{Persona: "Solo", History: ask("ann", text)})
		if err != nil || !strings.HasPrefix(r.Content, DemoPrefix+"@ann ") {
			t.Errorf("%q: reply %q, err %v; want a demo reply to @ann", text, r.Content, err)
		}
	}
}

func TestQuoteOf(t *testing.T) {
	for _, tt := range []struct{ text, want string }{
		{"how do I install docker on debian?", "how do I install docker on debian"},
		{"@Teacher @Planner hi, what is a mutex?!", "what is a mutex"},
		{"hey, all tests fail on CI", "all tests fail on CI"},
		{"explain goroutines to a beginner please", "explain goroutines to a beginner"},
		{"why is this slow? thanks!", "why is this slow"},
		{"can @Planner plan the launch", "can Planner plan the launch"},
		{`what does "nil" mean here?`, "what does 'nil' mean here"},
		{"is this ok: panic(err)", "is this ok: panic(err)"},
		{"review this:\n```go\nfunc f() {}\n```", "review this"},
		{"what is C++ used for?", "what is C++ used for"},
		{"how do I make the integration tests stop timing out on the shared runner in CI?", "how do I make the integration tests stop timing out…"},
		{strings.Repeat("x", 80), strings.Repeat("x", 59) + "…"},
	} {
		got := quoteOf(tt.text)
		if got != tt.want {
			t.Errorf("quoteOf(%q) = %q, want %q", tt.text, got, tt.want)
		}
		if n := utf8.RuneCountInString(got); n > quoteRunes {
			t.Errorf("quoteOf(%q) is %d runes, want at most %d", tt.text, n, quoteRunes)
		}
	}
}

func TestScriptedRepliesVaryAcrossMessages(t *testing.T) {
	seen := map[string]bool{}
	for _, q := range []string{"how do channels work?", "why is my build slow?", "where do logs go?", "what breaks the cache?"} {
		r, _ := Scripted{}.Complete(t.Context(), Request{Persona: "Helper", History: []Message{{Role: RoleUser, Content: q}}})
		_, closing, _ := strings.Cut(r.Content, `". `)
		seen[closing] = true
	}
	if len(seen) < 2 {
		t.Errorf("four questions got %d distinct closings, want the phrasing to vary", len(seen))
	}
}

func TestScriptedDelay(t *testing.T) {
	req := Request{Persona: "Helper", History: []Message{{Role: RoleUser, Content: "how do I build it?"}}}
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
	t.Run("waits the delay to say nothing too", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			start := time.Now()
			small := Request{Persona: "Helper", History: []Message{{Role: RoleUser, Content: "hi!"}}}
			if _, err := (Scripted{Delay: 2 * time.Second}).Complete(t.Context(), small); !errors.Is(err, ErrNothingToSay) {
				t.Fatalf("err = %v, want ErrNothingToSay", err)
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

func TestScriptedStreamsNothingWhenItHasNothingToSay(t *testing.T) {
	called := false
	req := Request{Persona: "Helper", History: []Message{{Role: RoleUser, Name: "ann", Content: "thanks!"}},
		OnText: func(string) { called = true }}
	if _, err := (Scripted{}).Complete(t.Context(), req); !errors.Is(err, ErrNothingToSay) || called {
		t.Errorf("err = %v, OnText called %v; want ErrNothingToSay and no text", err, called)
	}
}

// A merged batch whose newest line is another persona's still answers the
// newest person who named the persona.
func TestScriptedAnswersAMentionBehindAnotherPersonasLine(t *testing.T) {
	h := []Message{
		{Role: RoleUser, Name: "carol", Content: "@Helper how do I deploy a docker image?"},
		{Role: RoleAssistant, Name: "Helper", Content: DemoPrefix + "@carol my earlier answer"},
		{Role: RoleUser, Name: "ann", Content: "@Helper how do I rotate my logs?"},
		{Role: RoleUser, Name: "Teacher", Content: DemoPrefix + "@bob Teacher here."},
	}
	r, err := complete(t, Request{Persona: "Helper", History: h})
	if err != nil || !strings.Contains(r.Content, "@ann") || !strings.Contains(r.Content, "rotate my logs") {
		t.Errorf("reply %q, err %v; want an answer to @ann's question", r.Content, err)
	}
	h[0].Content, h[2].Content = "how do I deploy?", "how do I rotate my logs?" // names nobody: nothing owed
	if r, err := complete(t, Request{Persona: "Helper", History: h}); !errors.Is(err, ErrNothingToSay) {
		t.Errorf("no mention: reply %q, err %v; want ErrNothingToSay", r.Content, err)
	}
}
