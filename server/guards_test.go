package server

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/personaos/persona/chat"
	"github.com/personaos/persona/llm"
)

// gateModel answers at once, except a message containing BLOCK, which it
// holds until release is called. Every call is recorded, in order.
type gateModel struct {
	calls   chan llm.Request
	release func()
	gate    chan struct{}

	mu   sync.Mutex
	seen []llm.Request
}

func newGateModel() *gateModel {
	g := &gateModel{calls: make(chan llm.Request, 100), gate: make(chan struct{})}
	var once sync.Once
	g.release = func() { once.Do(func() { close(g.gate) }) }
	return g
}

func (g *gateModel) Complete(ctx context.Context, req llm.Request) (llm.Reply, error) {
	last := req.History[len(req.History)-1].Content
	g.mu.Lock()
	g.seen = append(g.seen, req)
	g.mu.Unlock()
	g.calls <- req
	if strings.Contains(last, "BLOCK") {
		if req.OnText != nil {
			req.OnText("thinking about it")
		}
		select {
		case <-g.gate:
		case <-ctx.Done():
			return llm.Reply{}, ctx.Err()
		}
	}
	return llm.Reply{Content: "noted: " + strings.ReplaceAll(last, "@", "")}, nil
}

func (g *gateModel) requests() []llm.Request {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.seen)
}

// next returns the newest history line of the next model call.
func (g *gateModel) next(t *testing.T) string {
	t.Helper()
	select {
	case req := <-g.calls:
		return req.History[len(req.History)-1].Content
	case <-time.After(10 * time.Second):
		t.Fatal("no model call within 10s")
		return ""
	}
}

// solo is one persona who knows about Go.
func solo() []PersonaSpec {
	return []PersonaSpec{{Name: "Solo", Expertise: []string{"go"}}}
}

// inject stores a message as if another daemon's persona had written it.
func inject(t *testing.T, d *Daemon, m chat.Message) chat.Message {
	t.Helper()
	if m.ID == "" {
		m.ID = newMessageID(time.Now())
	}
	if m.At.IsZero() {
		m.At = time.Now().UTC()
	}
	seq, err := d.bus.publish(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	d.rooms.posted(seq, m)
	return m
}

func queued(d *Daemon, name string) int {
	pi, _ := d.Persona(name)
	return pi.Snapshot.Counts.Queued
}

func waitAccount(t *testing.T, d *Daemon, persona, id string) Record {
	t.Helper()
	var rec Record
	eventually(t, 10*time.Second, persona+" accounts "+id, func() bool {
		r, ok := account(t, d, persona, id)
		rec = r
		return ok
	})
	return rec
}

func TestHumanIsAnsweredBeforePersonaChatter(t *testing.T) {
	g := newGateModel()
	defer g.release()
	cfg := testConfig(t)
	cfg.Specs = solo()
	cfg.Model = g
	d := startDaemon(t, cfg)

	// Solo has spoken in three rooms where a human is present.
	for _, room := range []string{"p1", "p2", "p3"} {
		post(t, d, room, "ann", "hello, a go question in "+room)
		g.next(t)
	}
	post(t, d, "busy", "ann", "BLOCK go")
	if got := g.next(t); !strings.Contains(got, "BLOCK") {
		t.Fatalf("model call %q, want the BLOCK message", got)
	}
	// While Solo is busy, other personas chat in those rooms, then a human
	// asks something.
	for _, room := range []string{"p1", "p2", "p3"} {
		inject(t, d, chat.Message{Room: room, Author: "Ghost", Kind: chat.Persona, Depth: 1,
			Content: "more thoughts on go from Ghost in " + room})
	}
	eventually(t, 10*time.Second, "three persona messages queued", func() bool { return queued(d, "Solo") == 3 })
	post(t, d, "h", "ann", "a human's question about go")
	eventually(t, 10*time.Second, "the human's message queued", func() bool { return queued(d, "Solo") == 4 })
	g.release()

	if got := g.next(t); got != "a human's question about go" {
		t.Errorf("after the busy spell Solo answered %q first, want the human's question", got)
	}
	for range 3 {
		if got := g.next(t); !strings.Contains(got, "Ghost") {
			t.Errorf("then %q, want the persona chatter", got)
		}
	}
	waitSettled(t, d)
}

func TestPendingMessagesOfARoomMerge(t *testing.T) {
	g := newGateModel()
	defer g.release()
	cfg := testConfig(t)
	cfg.Specs = solo()
	cfg.Model = g
	d := startDaemon(t, cfg)

	post(t, d, "busy", "ann", "BLOCK go")
	g.next(t)
	var ms []chat.Message
	for _, text := range []string{"first go question", "second, go on", "third: so, go or rust?"} {
		ms = append(ms, post(t, d, "r", "bob", text))
	}
	eventually(t, 10*time.Second, "three messages queued", func() bool { return queued(d, "Solo") == 3 })
	g.release()
	g.next(t) // the busy room's reply
	waitSettled(t, d)

	calls := g.requests()
	if len(calls) != 2 {
		t.Fatalf("%d model calls, want 2 (one per room)", len(calls))
	}
	var lines []string
	for _, h := range calls[1].History {
		lines = append(lines, h.Content)
	}
	if want := []string{"first go question", "second, go on", "third: so, go or rust?"}; !slices.Equal(lines, want) {
		t.Errorf("prompt history = %q, want the three messages, the newest last", lines)
	}
	rs := messages(t, d, "r")
	var replies []chat.Message
	for _, m := range rs {
		if m.Kind == chat.Persona {
			replies = append(replies, m)
		}
	}
	if len(replies) != 1 || replies[0].ReplyTo != ms[2].ID {
		t.Fatalf("replies = %+v, want one, to the newest message", replies)
	}
	for i, m := range ms {
		rec, _ := account(t, d, "Solo", m.ID)
		want := Record{Account: "handled", Note: noteMerged}
		if i == 2 {
			want.Note = noteReplied
		}
		if rec.Account != want.Account || rec.Note != want.Note {
			t.Errorf("message %d accounted %+v, want %+v", i, rec, want)
		}
	}
}

func TestReplyBudgetPerRoom(t *testing.T) {
	cfg := testConfig(t)
	cfg.Specs = solo()
	cfg.ReplyBudget = 2
	d := startDaemon(t, cfg)

	// Two people's questions spend the budget; persona chatter after them
	// is refused (a person's question would wait for the budget instead:
	// chat.Waits).
	var notes []string
	for i := range 2 {
		m := post(t, d, "chatty", "ann", fmt.Sprintf("go question %d?", i))
		notes = append(notes, waitAccount(t, d, "Solo", m.ID).Note)
	}
	for i := range 2 {
		m := inject(t, d, chat.Message{Room: "chatty", Author: "Ghost", Kind: chat.Persona, Depth: 1,
			Content: fmt.Sprintf("go chatter %d", i)})
		notes = append(notes, waitAccount(t, d, "Solo", m.ID).Note)
	}
	if want := []string{noteReplied, noteReplied, noteBudget, noteBudget}; !slices.Equal(notes, want) {
		t.Errorf("notes = %q, want %q", notes, want)
	}
	if n := d.counted("Solo", noteBudget); n != 2 {
		t.Errorf("budget count = %d, want 2", n)
	}
	// Another room has its own budget.
	m := post(t, d, "calm", "ann", "go question?")
	if rec := waitAccount(t, d, "Solo", m.ID); rec.Note != noteReplied {
		t.Errorf("another room: %+v", rec)
	}
	waitSettled(t, d)
}

func TestReplyBudgetNeverRefusesAMention(t *testing.T) {
	cfg := testConfig(t)
	cfg.Specs = solo()
	cfg.ReplyBudget = 2
	cfg.ReplyWindow = 4 * time.Second
	d := startDaemon(t, cfg)

	// Owed replies are never refused; over the budget they wait, paced to
	// one per window/budget (2s), so the room stays within its budget.
	var ats []time.Time
	for i := range 4 {
		m := post(t, d, "chatty", "ann", fmt.Sprintf("@Solo question %d?", i))
		if rec := waitAccount(t, d, "Solo", m.ID); rec.Note != noteReplied {
			t.Errorf("mention %d over a budget of 2: %+v, want replied", i, rec)
		}
		rs := repliesTo(messages(t, d, "chatty"), m.ID)
		if len(rs) != 1 {
			t.Fatalf("mention %d: %d replies", i, len(rs))
		}
		ats = append(ats, rs[0].At)
	}
	for i := 1; i < len(ats); i++ {
		if gap := ats[i].Sub(ats[i-1]); gap < 2*time.Second-250*time.Millisecond {
			t.Errorf("owed replies %d and %d %v apart, want paced 2s", i-1, i, gap)
		}
	}
	// The owed replies counted: persona chatter now finds the budget spent.
	m := inject(t, d, chat.Message{Room: "chatty", Author: "Ghost", Kind: chat.Persona, Depth: 1,
		Content: "a go remark nobody is named in"})
	if rec := waitAccount(t, d, "Solo", m.ID); rec.Note != noteBudget {
		t.Errorf("chatter after four owed replies: %+v, want %s", rec, noteBudget)
	}
	waitSettled(t, d)
}

func TestReplyBudgetCountsOtherDaemonsPersonaMessages(t *testing.T) {
	cfg := testConfig(t)
	cfg.Specs = solo()
	cfg.ReplyBudget = 2
	cfg.ReplyWindow = 3 * time.Second
	d := startDaemon(t, cfg)

	h := post(t, d, "shared", "ann", "hello, what's new in go?") // answered: Solo is active in the room
	waitAccount(t, d, "Solo", h.ID)
	// Personas of another daemon fill the room's budget between them.
	var last chat.Message
	for i := range 2 {
		last = inject(t, d, chat.Message{Room: "shared", Author: "Ghost", Kind: chat.Persona, Depth: 1,
			Content: fmt.Sprintf("ghost chatter %d", i)})
	}
	waitAccount(t, d, "Solo", last.ID)
	c := inject(t, d, chat.Message{Room: "shared", Author: "Ghost2", Kind: chat.Persona, Depth: 1,
		Content: "a go remark for anyone"})
	if rec := waitAccount(t, d, "Solo", c.ID); rec.Note != noteBudget {
		t.Errorf("chatter in a room other daemons' personas filled: %+v, want %s", rec, noteBudget)
	}
	// A person's question nobody is named in waits for the budget
	// (chat.Waits) and is answered once the others' messages leave the
	// window.
	q := post(t, d, "shared", "ann", "a go question for anyone")
	if rec := waitAccount(t, d, "Solo", q.ID); rec.Note != noteReplied {
		t.Errorf("a person's question in the filled room: %+v, want replied", rec)
	}
	// A person's mention is owed: it waits until the other daemons'
	// messages leave the window, and is answered.
	m := post(t, d, "shared", "ann", "@Solo and you?")
	if rec := waitAccount(t, d, "Solo", m.ID); rec.Note != noteReplied {
		t.Errorf("a person's mention in the same room: %+v, want replied", rec)
	}
	if rs := repliesTo(messages(t, d, "shared"), m.ID); len(rs) != 1 || rs[0].At.Sub(last.At) < cfg.ReplyWindow-250*time.Millisecond {
		t.Errorf("replies to the mention %+v, want one, once the last ghost message (%v) left the %v window", rs, last.At, cfg.ReplyWindow)
	}
	waitSettled(t, d)
}

func TestMergedReplyAddressesEveryAsker(t *testing.T) {
	g := newGateModel()
	defer g.release()
	cfg := testConfig(t)
	cfg.Specs = solo()
	cfg.Model = g
	d := startDaemon(t, cfg)

	post(t, d, "busy", "ann", "BLOCK go")
	g.next(t)
	post(t, d, "r", "carol", "can someone review my go code?")
	last := post(t, d, "r", "bob", "and a go question about docker")
	eventually(t, 10*time.Second, "two messages queued", func() bool { return queued(d, "Solo") == 2 })
	g.release()
	g.next(t)
	waitSettled(t, d)
	rs := repliesTo(messages(t, d, "r"), last.ID)
	if len(rs) != 1 {
		t.Fatalf("replies = %+v, want one merged reply", rs)
	}
	if !chat.Mentioned(rs[0].Content, "carol") {
		t.Errorf("merged reply %q does not address carol, whose message it merged", rs[0].Content)
	}
}

func TestQuietRoomAndDeepChainsAreNotAnswered(t *testing.T) {
	cfg := testConfig(t)
	cfg.Specs = solo()
	cfg.QuietAfter = time.Minute
	// The room's reply budget counts the injected persona messages too
	// (chat.Budget.Saw); this test is about the loop guards, not the budget.
	cfg.ReplyBudget = 100
	d := startDaemon(t, cfg)

	never := inject(t, d, chat.Message{Room: "empty", Author: "Ghost", Kind: chat.Persona, Depth: 1, Content: "@Solo anyone here? go?"})
	if rec := waitAccount(t, d, "Solo", never.ID); rec.Account != "skipped" || rec.Note != noteQuiet {
		t.Errorf("persona message in a room no human spoke in: %+v", rec)
	}

	h := post(t, d, "live", "ann", "hi all")
	waitAccount(t, d, "Solo", h.ID)
	fresh := inject(t, d, chat.Message{Room: "live", Author: "Ghost", Kind: chat.Persona, Depth: 1, Content: "@Solo what about go?"})
	if rec := waitAccount(t, d, "Solo", fresh.ID); rec.Note != noteReplied {
		t.Errorf("persona message right after a human's: %+v", rec)
	}
	late := inject(t, d, chat.Message{Room: "live", Author: "Ghost", Kind: chat.Persona, Depth: 1,
		Content: "@Solo still there? go?", At: h.At.Add(2 * time.Minute)})
	if rec := waitAccount(t, d, "Solo", late.ID); rec.Note != noteQuiet {
		t.Errorf("persona message two minutes after the last human one: %+v", rec)
	}
	deep := inject(t, d, chat.Message{Room: "live", Author: "Ghost", Kind: chat.Persona, Depth: cfg.withDefaults().MaxDepth,
		Content: "@Solo and go?"})
	if rec := waitAccount(t, d, "Solo", deep.ID); rec.Note != noteTooDeep {
		t.Errorf("persona message at the maximum depth: %+v", rec)
	}
	if d.counted("Solo", noteQuiet) != 2 || d.counted("Solo", noteTooDeep) != 1 {
		t.Errorf("counts: quiet %d, deep %d", d.counted("Solo", noteQuiet), d.counted("Solo", noteTooDeep))
	}
	// A human speaking again wakes the room.
	post(t, d, "live", "ann", "back")
	again := inject(t, d, chat.Message{Room: "live", Author: "Ghost", Kind: chat.Persona, Depth: 1, Content: "@Solo go?"})
	if rec := waitAccount(t, d, "Solo", again.ID); rec.Note != noteReplied {
		t.Errorf("after the human came back: %+v", rec)
	}
	waitSettled(t, d)
}

func TestNoDoubleAnswerAcrossRestart(t *testing.T) {
	cfg := testConfig(t)
	cfg.Specs = solo()
	crashy := cfg
	crashy.hooks.dropFinals = true // a crash after the reply, before the ack
	d1, err := New(crashy)
	if err != nil {
		t.Fatal(err)
	}
	if err := d1.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	m := post(t, d1, "r", "ann", "@Solo is go fast?")
	eventually(t, 10*time.Second, "the first reply", func() bool { return len(repliesTo(messages(t, d1, "r"), m.ID)) == 1 })
	if err := d1.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	d2 := startDaemon(t, cfg)
	rec := waitAccount(t, d2, "Solo", m.ID)
	if rec.Account != "handled" || rec.Note != noteAnswered {
		t.Errorf("redelivered message accounted %+v, want handled / %s", rec, noteAnswered)
	}
	waitSettled(t, d2)
	if n := len(repliesTo(messages(t, d2, "r"), m.ID)); n != 1 {
		t.Errorf("%d replies after the restart, want still 1", n)
	}
}

func TestClaimedReplyIsPublishedAfterCrash(t *testing.T) {
	g := newGateModel()
	cfg := testConfig(t)
	cfg.Specs = solo()
	cfg.Model = g
	d := startDaemon(t, cfg)

	// A crash between claiming a reply and publishing it left a claim
	// whose reply is nowhere in the stream.
	now := time.Now().UTC()
	human := chat.Message{ID: newMessageID(now), Room: "r", Author: "ann", Kind: chat.Human, Content: "@Solo go?", At: now}
	lost := chat.Message{ID: newMessageID(now), Room: "r", Author: "Solo", Kind: chat.Persona, Content: "the lost reply", At: now, ReplyTo: human.ID, Depth: 1}
	data, _ := encodeWire(lost)
	if _, err := d.bus.replies.Create(context.Background(), ledgerKey("Solo", human.ID), data); err != nil {
		t.Fatal(err)
	}
	inject(t, d, human)
	// This attempt published the reply: the message is replied, not
	// "answered before" (which counts a message another reply answered).
	if rec := waitAccount(t, d, "Solo", human.ID); rec.Note != noteReplied {
		t.Errorf("accounted %+v", rec)
	}
	rs := repliesTo(messages(t, d, "r"), human.ID)
	if len(rs) != 1 || rs[0].ID != lost.ID || rs[0].Content != "the lost reply" {
		t.Errorf("replies = %+v, want the claimed reply, published once", rs)
	}
	if n := len(g.requests()); n != 0 {
		t.Errorf("%d model calls for a message already answered", n)
	}
	waitSettled(t, d)
}

func TestWaitsForPipeline(t *testing.T) {
	cfg := testConfig(t)
	cfg.Specs = []PersonaSpec{
		{Name: "Drafter", Expertise: []string{"go"}},
		{Name: "Editor", Expertise: []string{"go"}, WaitsFor: []string{"Drafter"}},
	}
	d := startDaemon(t, cfg)
	if pi, _ := d.Persona("Editor"); pi.Backlog != nil {
		t.Errorf("a persona that waits for another has its own consumer: %+v", pi.Backlog)
	}
	m := post(t, d, "r", "ann", "a go question for both")
	eventually(t, 15*time.Second, "both stages reply", func() bool { return len(repliesTo(messages(t, d, "r"), m.ID)) >= 2 })
	waitSettled(t, d)
	rs := repliesTo(messages(t, d, "r"), m.ID)
	if len(rs) != 2 || rs[0].Author != "Drafter" || rs[1].Author != "Editor" {
		t.Fatalf("replies = %+v, want Drafter's, then Editor's", rs)
	}
	for _, p := range []string{"Drafter", "Editor"} {
		if rec, ok := account(t, d, p, m.ID); !ok || rec.Note != noteReplied {
			t.Errorf("%s: %+v", p, rec)
		}
	}
}
