package server

import (
	"strings"
	"testing"
	"time"

	"github.com/personaos/persona/chat"
	"github.com/personaos/persona/llm"
)

// With no model configured (llm.Scripted), a newcomer's first questions
// each get one reply a person can read, saying it is a demo and quoting
// the question; small talk gets none, accounted as nothing to say, with no
// failure shown; and no persona answers another's demo line.
func TestDemoRepliesANewcomerCanRead(t *testing.T) {
	cfg := testConfig(t)
	cfg.Specs = fourPersonas() // and no model: the scripted one
	d := startDaemon(t, cfg)

	for _, q := range []struct{ text, quote string }{
		{"how do I install docker on debian?", `"how do I install docker on debian"`},
		{"@Teacher can you explain what a mutex is?", `"can you explain what a mutex is"`},
		{"what should we plan for the release next week?", `"what should we plan for the release next week"`},
	} {
		m := post(t, d, "general", "newcomer", q.text)
		var rs []chat.Message
		eventually(t, 20*time.Second, "a reply to "+q.text, func() bool {
			rs = repliesTo(messages(t, d, "general"), m.ID)
			return len(rs) > 0
		})
		waitSettled(t, d)
		r := rs[0]
		t.Logf("%s: %s", r.Author, r.Content)
		if !strings.HasPrefix(r.Content, llm.DemoPrefix+"@newcomer ") || !strings.Contains(r.Content, q.quote) || !strings.Contains(r.Content, "With a model configured I would") {
			t.Errorf("reply to %q:\n%s\nwant the demo prefix, @newcomer, the quote %s and what a model would do", q.text, r.Content, q.quote)
		}
		if strings.HasPrefix(q.text, "@Teacher") && r.Author != "Teacher" {
			t.Errorf("the mention was answered by %s", r.Author)
		}
	}
	if n := personaLines(messages(t, d, "general")); n != 3 {
		t.Errorf("%d persona messages after three questions, want 3: personas answered each other's demo lines", n)
	}

	hi := post(t, d, "general", "newcomer", "hi all, nice weather today")
	waitSettled(t, d)
	ms := messages(t, d, "general")
	if rs := repliesTo(ms, hi.ID); len(rs) != 0 {
		t.Errorf("small talk answered: %+v", rs)
	}
	if n := personaLines(ms); n != 3 {
		t.Errorf("%d persona messages after small talk, want still 3", n)
	}
	for _, m := range ms {
		if m.Kind == chat.System {
			t.Errorf("system note in the room: %q", m.Content)
		}
	}
	silent := 0
	for _, s := range cfg.Specs {
		rec, ok := account(t, d, s.Name, hi.ID)
		if !ok {
			t.Errorf("%s has no account of the small talk", s.Name)
			continue
		}
		if rec.Note == noteNothingToSay {
			silent++
			if rec.Account != "handled" {
				t.Errorf("%s: %+v, want handled", s.Name, rec)
			}
		}
		if pi, _ := d.Persona(s.Name); pi.Snapshot.Counts.Failed != 0 {
			t.Errorf("%s failed %d messages", s.Name, pi.Snapshot.Counts.Failed)
		}
	}
	if silent == 0 {
		t.Errorf("no persona accounted the small talk %q", noteNothingToSay)
	}
	if n := d.counted("Helper", noteNothingToSay) + d.counted("Teacher", noteNothingToSay) + d.counted("Planner", noteNothingToSay) + d.counted("CodeReview", noteNothingToSay); n != uint64(silent) {
		t.Errorf("counted %d messages with nothing to say, want %d", n, silent)
	}
	// A greeting that names a persona is owed an answer: it gets one.
	greet := post(t, d, "general", "newcomer", "@Teacher hi!")
	eventually(t, 20*time.Second, "the named persona greets back", func() bool {
		rs := repliesTo(messages(t, d, "general"), greet.ID)
		return len(rs) == 1 && rs[0].Author == "Teacher" && strings.Contains(rs[0].Content, "Hello!")
	})
}

func personaLines(ms []chat.Message) int {
	n := 0
	for _, m := range ms {
		if m.Kind == chat.Persona {
			n++
		}
	}
	return n
}
