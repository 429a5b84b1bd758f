package server

import (
	"strings"
	"testing"
	"time"
)

// Nothing owed is dropped (issue 10, item 4): the daemon's side.

func TestMentionPreemptsItsPersonasOrdinaryModelCall(t *testing.T) {
	g := newGateModel()
	defer g.release()
	cfg := testConfig(t)
	cfg.Specs = solo()
	cfg.Model = g
	d := startDaemon(t, cfg)

	slow := post(t, d, "busy", "ann", "BLOCK a go question for anyone")
	if got := g.next(t); !strings.Contains(got, "BLOCK") {
		t.Fatalf("first model call %q, want the ordinary message", got)
	}
	start := time.Now()
	m := post(t, d, "other", "bob", "@Solo quick one?")
	// The ordinary call stays blocked: only preemption lets the mention in.
	eventually(t, 10*time.Second, "the mention answered while the ordinary call is blocked", func() bool {
		return len(repliesTo(messages(t, d, "other"), m.ID)) == 1
	})
	t.Logf("mention answered %v after it was posted, behind a blocked model call", time.Since(start).Round(time.Millisecond))
	pi, _ := d.Persona("Solo")
	if pi.Snapshot.Preempted < 1 {
		t.Errorf("preempted = %d, want the ordinary call cut short", pi.Snapshot.Preempted)
	}
	if n := len(repliesTo(messages(t, d, "busy"), slow.ID)); n != 0 {
		t.Fatalf("%d replies to the ordinary message while its model call is blocked", n)
	}
	// The ordinary message went back to the inbox, not to failed: once
	// the model answers it, it is answered.
	g.release()
	eventually(t, 10*time.Second, "the ordinary message answered after all", func() bool {
		return len(repliesTo(messages(t, d, "busy"), slow.ID)) == 1
	})
	waitSettled(t, d)
	if rec, _ := account(t, d, "Solo", slow.ID); rec.Account != "handled" || rec.Note != noteReplied {
		t.Errorf("the preempted message's account = %+v, want handled, replied", rec)
	}
}
