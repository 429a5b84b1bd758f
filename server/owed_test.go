package server

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/personaos/persona/chat"
	"github.com/personaos/persona/llm"
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

// TestTenPeopleMentioningOnePersonAreAllAnsweredWithinTheBudget drives the
// issue's load, ten people each @mentioning one persona once a second for
// a minute against six replies a minute, ten times faster: each person
// every 100ms for 6s against six replies per 6s window. Same mentions per
// budgeted reply (100), a tenth of the wall time.
func TestTenPeopleMentioningOnePersonAreAllAnsweredWithinTheBudget(t *testing.T) {
	const (
		people = 10
		every  = 100 * time.Millisecond
		span   = 6 * time.Second
		budget = 6
		window = 6 * time.Second
	)
	cfg := testConfig(t)
	cfg.Specs = solo()
	cfg.ReplyBudget, cfg.ReplyWindow = budget, window
	d := startDaemon(t, cfg)

	var mu sync.Mutex
	var mentions []chat.Message
	var wg sync.WaitGroup
	start := time.Now()
	for p := range people {
		wg.Go(func() {
			tick := time.NewTicker(every)
			defer tick.Stop()
			for i := 0; time.Since(start) < span; i++ {
				m := post(t, d, "r", fmt.Sprintf("p%d", p), fmt.Sprintf("@Solo question %d from p%d?", i, p))
				mu.Lock()
				mentions = append(mentions, m)
				mu.Unlock()
				<-tick.C
			}
		})
	}
	wg.Wait()
	t.Logf("%d mentions posted in %v", len(mentions), time.Since(start).Round(time.Millisecond))

	// Every mention is answered: a reply to it, or a merged reply that
	// covers it (its replies-bucket entry) and addresses its author.
	var latest time.Duration // the longest a mention waited for its answer
	answered := func(m chat.Message) bool {
		e, err := d.bus.replies.Get(context.Background(), ledgerKey("Solo", m.ID))
		if err != nil {
			return false
		}
		r, err := decodeWire(e.Value())
		ok := err == nil && (r.ReplyTo == m.ID || chat.Mentioned(r.Content, m.Author))
		if ok {
			latest = max(latest, r.At.Sub(m.At))
		}
		return ok
	}
	eventually(t, 2*window+20*time.Second, "every mention answered", func() bool {
		for _, m := range mentions {
			if !answered(m) {
				return false
			}
		}
		return true
	})
	waitSettled(t, d)
	var replies []chat.Message
	for _, m := range allMessages(t, d, "r") {
		if m.Kind == chat.Persona {
			replies = append(replies, m)
		}
	}
	// Within the budget: no budget+1 replies within one window. A reply's
	// time is when its model call ended, a few milliseconds after its
	// reservation, hence the slack.
	const slack = 250 * time.Millisecond
	for i := 0; i+budget < len(replies); i++ {
		if gap := replies[i+budget].At.Sub(replies[i].At); gap < window-slack {
			t.Errorf("replies %d and %d are %v apart: %d replies within a %v window, budget %d", i, i+budget, gap, budget+1, window, budget)
		}
	}
	elapsed := replies[len(replies)-1].At.Sub(start)
	t.Logf("%d mentions answered by %d replies in %v; the longest wait for an answer %v", len(mentions), len(replies),
		elapsed.Round(time.Millisecond), latest.Round(time.Millisecond))
	if max := budget * (int(elapsed/window) + 1); len(replies) > max {
		t.Errorf("%d replies in %v, more than %d", len(replies), elapsed, max)
	}
	if n := d.counted("Solo", noteBudget); n != 0 {
		t.Errorf("%d mentions refused by the budget, want 0", n)
	}
}

// allMessages pages through every message of room, oldest first.
func allMessages(t *testing.T, d *Daemon, room string) []chat.Message {
	t.Helper()
	var out []chat.Message
	after := ""
	for {
		ms, err := d.Messages(context.Background(), room, after, 500)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ms...)
		if len(ms) < 500 {
			return out
		}
		after = ms[len(ms)-1].ID
	}
}

// holdModel answers at once, but holds a call whose newest line contains
// BLOCK until release, or until its context ends. It records nothing, so
// it takes any number of calls.
type holdModel struct {
	gate    chan struct{}
	release func()
}

func newHoldModel() *holdModel {
	h := &holdModel{gate: make(chan struct{})}
	var once sync.Once
	h.release = func() { once.Do(func() { close(h.gate) }) }
	return h
}

func (h *holdModel) Complete(ctx context.Context, req llm.Request) (llm.Reply, error) {
	last := req.History[len(req.History)-1].Content
	if strings.Contains(last, "BLOCK") {
		select {
		case <-h.gate:
		case <-ctx.Done():
			return llm.Reply{}, ctx.Err()
		}
	}
	return llm.Reply{Content: "noted"}, nil
}

func TestMentionIsNotHeldBehindADurableBacklog(t *testing.T) {
	const backlog = 4000
	g := newHoldModel()
	defer g.release()
	cfg := testConfig(t)
	cfg.Specs = solo()
	cfg.Model = g
	// The backlog is about delivery, not the budget: its rooms would
	// otherwise refuse most of it at once, which acknowledges it.
	cfg.ReplyBudget = backlog
	d := startDaemon(t, cfg)

	// Ordinary messages Solo engages with and whose model calls block:
	// they stay unacknowledged, up to the consumer's MaxAckPending.
	for i := range backlog {
		m := chat.Message{ID: newMessageID(time.Now()), Room: fmt.Sprintf("b%d", i%40), Author: "ann", Kind: chat.Human,
			Content: fmt.Sprintf("BLOCK go question %d", i), At: time.Now().UTC()}
		if _, err := d.bus.publish(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	var bl Backlog
	eventually(t, 60*time.Second, "the consumer saturated by the backlog", func() bool {
		pi, _ := d.Persona("Solo")
		if pi.Backlog != nil {
			bl = *pi.Backlog
		}
		return bl.Unacked >= 2*inboxCapacity(d, "Solo") && bl.Pending > 0
	})
	t.Logf("backlog: %d unacknowledged, %d not yet delivered", bl.Unacked, bl.Pending)

	start := time.Now()
	m := post(t, d, "q", "bob", "@Solo are you there?")
	eventually(t, 10*time.Second, "the mention answered within 10s", func() bool {
		return len(repliesTo(messages(t, d, "q"), m.ID)) == 1
	})
	t.Logf("mention answered %v after it was posted, behind %d queued messages", time.Since(start).Round(time.Millisecond), backlog)
	if pi, _ := d.Persona("Solo"); pi.Backlog == nil || pi.Backlog.Pending == 0 {
		t.Errorf("backlog %+v: want messages still waiting for the durable consumer", pi.Backlog)
	}

	// Once the model answers, the backlog drains and every message has
	// one account; the mention's durable delivery found it accounted.
	g.release()
	eventually(t, 120*time.Second, "the backlog accounted", func() bool { return settled(d) })
	if rec, _ := account(t, d, "Solo", m.ID); rec.Account != "handled" || rec.Note != noteReplied {
		t.Errorf("the mention's account = %+v, want handled, replied", rec)
	}
	if n := len(repliesTo(messages(t, d, "q"), m.ID)); n != 1 {
		t.Errorf("%d replies to the mention, want 1", n)
	}
}

func inboxCapacity(d *Daemon, name string) int {
	return d.byName[strings.ToLower(name)].p.Inbox().Options().Capacity
}
