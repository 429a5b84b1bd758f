package server

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/personaos/persona/chat"
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

func TestMentionWhoseReplyPublishFailsIsAnsweredAfterTheBusRecovers(t *testing.T) {
	var mu sync.Mutex
	down, failures := true, 0
	cfg := testConfig(t)
	cfg.Specs = solo()
	cfg.hooks.failReplyPublish = func(chat.Message) error {
		mu.Lock()
		defer mu.Unlock()
		if !down {
			return nil
		}
		failures++
		return fmt.Errorf("publish: %w", nats.ErrTimeout)
	}
	d := startDaemon(t, cfg)
	failed := func() int {
		mu.Lock()
		defer mu.Unlock()
		return failures
	}

	m := post(t, d, "r", "ann", "@Solo are you there?")
	// More failed publishes than the runtime's three attempts, spread
	// over a second and a half by the backoff.
	eventually(t, 20*time.Second, "five failed publishes", func() bool { return failed() >= 5 })
	if rec, ok := account(t, d, "Solo", m.ID); ok {
		t.Fatalf("during the outage the mention was accounted %+v; want it held, unacknowledged", rec)
	}
	if d.ledger.held() == 0 {
		t.Fatal("during the outage the mention is not held")
	}
	mu.Lock()
	down = false
	n := failures
	mu.Unlock()
	start := time.Now()
	eventually(t, 20*time.Second, "the mention answered after the bus recovered", func() bool {
		return len(repliesTo(messages(t, d, "r"), m.ID)) > 0
	})
	t.Logf("%d failed publishes; answered %v after the bus recovered", n, time.Since(start).Round(time.Millisecond))
	waitSettled(t, d)
	if rs := repliesTo(messages(t, d, "r"), m.ID); len(rs) != 1 {
		t.Errorf("%d replies, want exactly one", len(rs))
	}
	if rec, _ := account(t, d, "Solo", m.ID); rec.Account != "handled" || rec.Note != noteReplied {
		t.Errorf("account = %+v, want handled, replied", rec)
	}
	if pi, _ := d.Persona("Solo"); pi.Snapshot.Counts.Failed != 0 {
		t.Errorf("failed = %d, want 0: a bus error is not the persona's failure", pi.Snapshot.Counts.Failed)
	}
}
