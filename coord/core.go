package coord

import (
	"container/heap"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"
)

// Core is the coordination stream's decision logic with no clock, goroutine,
// lock or channel: every method that can change a decision takes now
// explicitly and returns the decisions it closed, which the caller publishes.
// A driver calls Expire at NextDeadline; Stream is the real-time driver, and
// a simulator drives the same Core in virtual time, so both decide alike.
//
// Create one with NewCore; the zero value is not usable. A Core is not safe
// for concurrent use. Most drivers call Open as items arrive, Think and
// Leave as personas speak, and Expire whenever NextDeadline passes. Decisions it returns share their slices and map with
// its own memory: treat them as read-only (Stream hands out copies).
type Core struct {
	opts           Options
	open           map[string]*entry
	oldest, newest *entry // open items in the order they opened, for MaxOpen
	deadlines      deadlineHeap
	seq            uint64 // deadlines set so far
	decided        map[string]*closedRec
	ring           []*closedRec // closed decisions, FIFO, len MaxClosed
	ringNext       int
	last           map[string]time.Time // persona -> last grant stamp
	stamp          time.Time            // latest grant stamp handed out
	win            *window
	considered     []Thought // scratch for close
}

// Opening is an item as its producer announces it to Core.Open. An Opening
// without Item is ignored.
type Opening struct {
	Item, Key string
	// Expected lists the personas that should think about the item,
	// Addressees those it names (an @mention); addressees are expected too.
	Expected, Addressees []string
	// Unbounded gives the item no window and no patience: it closes only
	// when every expected thinker has thought or withdrawn (at once when
	// nobody is expected), or when evicted. It suits a producer that invokes
	// every thinker itself and waits for all of them (the simulator's direct
	// policy). Stream never sets it, since one dead persona would then hold
	// the item forever. It is read only when the Opening creates the item.
	Unbounded bool
}

// ItemState is where an item stands in a Core.
type ItemState uint8

const (
	// ItemUnknown: never opened, or decided and forgotten (see MaxClosed).
	ItemUnknown ItemState = iota
	// ItemOpen: its decision is not made yet.
	ItemOpen
	// ItemDecided: its decision is made and remembered.
	ItemDecided
)

type entry struct {
	item, key  string
	members    []member       // every persona the item has seen, in first-seen order
	idx        map[string]int // members by name, built once there are many
	expected   int            // members expected to think
	waiting    int            // expected members that neither thought nor withdrew
	thoughts   []Thought      // latest thought per persona, in first-thought order
	explicit   bool           // opened by Open, so time-to-thought is meaningful
	unbounded  bool
	opened     time.Time
	started    time.Time // the window's start: opened, or the first thought
	window     time.Duration
	deadline   time.Time
	seq        uint64 // when its deadline was set: ties close first set, first closed
	hi         int    // index in Core.deadlines; -1 when not armed
	prev, next *entry // the open-order list
}

type member struct {
	name      string
	expected  bool
	addressee bool
	withdrawn bool
	thought   int // index in entry.thoughts; -1 none
}

func (m *member) spoken() bool { return m.thought >= 0 || m.withdrawn }

type closedRec struct {
	d          Decision
	explicit   bool
	started    time.Time
	addressees []string // the item's addressees, for late thoughts
}

// memberIndexAt is when an entry indexes its members by name: below it a
// linear scan is cheaper than a map, and most items see few personas.
const memberIndexAt = 64

// NewCore returns an empty Core. opts are filled in as for New; Logger and
// OnDecision are not used (the Core neither logs nor publishes: its caller does).
func NewCore(opts Options) *Core {
	o := opts.withDefaults()
	return &Core{
		opts:    o,
		open:    make(map[string]*entry),
		decided: make(map[string]*closedRec),
		ring:    make([]*closedRec, o.MaxClosed),
		last:    make(map[string]time.Time),
		win:     newWindow(o),
	}
}

// Open announces an item at now; see Stream.Open. Opening an open item
// merges expected and addressees (key, window and Unbounded stay); opening a
// decided item does nothing. It returns the decisions it closed: items
// evicted to respect MaxOpen, and this one if every expected thinker has
// already spoken (or, when Unbounded, nobody is expected).
func (c *Core) Open(now time.Time, o Opening) []Decision {
	if o.Item == "" || c.decided[o.Item] != nil {
		return nil
	}
	e, out := c.entry(now, o.Item, o.Key, o.Unbounded)
	e.explicit = true
	if e.members == nil {
		// Most items are opened by their producer before anyone speaks:
		// size the roster once rather than growing it persona by persona.
		e.members = make([]member, 0, len(o.Expected)+len(o.Addressees))
	}
	if e.key == "" {
		e.key = o.Key
	}
	for _, a := range o.Addressees {
		if a != "" {
			m := e.add(a)
			m.addressee = true
			e.expect(m)
		}
	}
	for _, p := range o.Expected {
		if p != "" {
			e.expect(e.add(p))
		}
	}
	if e.complete() {
		out = append(out, c.close(e, now, false, false))
	}
	return out
}

// Think records t at now; see Stream.Think. t.At is kept as given. It returns
// the decisions it closed (items evicted because t opened a new one, and t's
// item if t was the last expected thinker), or, for a late thought of an
// addressee (of the item, or t.Addressed) not yet granted, the amended
// decision that grants it. Errors wrap ErrInvalidThought or
// ErrClosedDecision (too late: the decision is made without t).
func (c *Core) Think(now time.Time, t Thought) ([]Decision, error) {
	if err := validate(t); err != nil {
		return nil, err
	}
	if rec := c.decided[t.Item]; rec != nil {
		late := !slices.ContainsFunc(rec.d.Thoughts, func(o Thought) bool { return o.Persona == t.Persona })
		if rec.explicit && late {
			c.win.add(now.Sub(rec.started))
		}
		if late && (t.Addressed || slices.Contains(rec.addressees, t.Persona)) && !rec.d.IsGranted(t.Persona) {
			// An addressee is always granted, even one that was busy past
			// the window: the decision is amended and published again. It
			// stamps no grant time: the persona was not chosen over anyone.
			// Copy on write: earlier returns share the old slices.
			rec.d.Granted = append(slices.Clip(rec.d.Granted), t.Persona)
			rec.d.Thoughts = append(slices.Clip(rec.d.Thoughts), t)
			rec.d.Reasons = maps.Clone(rec.d.Reasons)
			rec.d.Reasons[t.Persona] = "addressee, thought after the decision closed: granted late"
			rec.d.Missing = slices.DeleteFunc(slices.Clone(rec.d.Missing), func(p string) bool { return p == t.Persona })
			return []Decision{rec.d}, nil
		}
		return nil, fmt.Errorf("coord: think %s on %s: %w", t.Persona, t.Item, ErrClosedDecision)
	}
	e, out := c.entry(now, t.Item, t.Key, false)
	m := e.add(t.Persona)
	if m.thought >= 0 {
		e.thoughts[m.thought] = t
	} else {
		if len(e.thoughts) == 0 && c.opts.WindowFromFirstThought {
			e.started = now
			if !e.unbounded {
				c.arm(e, now.Add(e.window))
			}
		}
		if m.expected && !m.spoken() {
			e.waiting--
		}
		m.thought = len(e.thoughts)
		e.thoughts = append(e.thoughts, t)
		if e.explicit {
			c.win.add(now.Sub(e.started))
		}
	}
	m.withdrawn = false
	if e.complete() {
		out = append(out, c.close(e, now, false, false))
	}
	return out, nil
}

func validate(t Thought) error {
	var why string
	switch {
	case t.Persona == "":
		why = "empty persona"
	case t.Item == "":
		why = "empty item"
	case !t.Intent.Valid():
		why = fmt.Sprintf("unknown intent %q", t.Intent)
	case math.IsNaN(t.Confidence) || t.Confidence < 0 || t.Confidence > 1:
		why = fmt.Sprintf("confidence %v outside [0, 1]", t.Confidence)
	default:
		return nil
	}
	return fmt.Errorf("coord: think %q on %q: %s: %w", t.Persona, t.Item, why, ErrInvalidThought)
}

// Withdraw records at now that persona will not think about item; see
// Stream.Withdraw. It opens an unknown item and does nothing on a decided
// one. It returns the decisions it closed.
func (c *Core) Withdraw(now time.Time, item, persona string) []Decision {
	if item == "" || persona == "" || c.decided[item] != nil {
		return nil
	}
	e, out := c.entry(now, item, "", false)
	return append(out, c.withdraw(now, e, persona)...)
}

// Leave withdraws persona from item only if the item is open; see
// Stream.Leave. It returns the decision it closed, if any.
//
// A persona that has already thought on the item stays in the decision:
// leaving only means it will not speak again (it merged the item into a
// newer one, say, and answers it there). So Leave and another persona's
// last word at the same instant close the same decision in either order.
func (c *Core) Leave(now time.Time, item, persona string) []Decision {
	e := c.open[item]
	if e == nil || persona == "" || e.thought(persona) {
		return nil
	}
	return c.withdraw(now, e, persona)
}

func (c *Core) withdraw(now time.Time, e *entry, persona string) []Decision {
	m := e.add(persona)
	if m.expected && !m.spoken() {
		e.waiting--
	}
	m.withdrawn = true
	if e.complete() {
		return []Decision{c.close(e, now, false, false)}
	}
	return nil
}

// NextDeadline returns the earliest moment an open item's window (or
// patience) ends, and false when no open item has one. A driver arms one
// timer for it and calls Expire when it fires.
func (c *Core) NextDeadline() (time.Time, bool) {
	if len(c.deadlines) == 0 {
		return time.Time{}, false
	}
	return c.deadlines[0].deadline, true
}

// Expire closes, with TimedOut set, every open item whose deadline is at or
// before now, earliest deadline first (ties: the deadline set first), and
// returns their decisions.
func (c *Core) Expire(now time.Time) []Decision {
	var out []Decision
	for len(c.deadlines) > 0 && !c.deadlines[0].deadline.After(now) {
		out = append(out, c.close(c.deadlines[0], now, true, false))
	}
	return out
}

// State reports where item stands.
func (c *Core) State(item string) ItemState {
	switch {
	case c.open[item] != nil:
		return ItemOpen
	case c.decided[item] != nil:
		return ItemDecided
	}
	return ItemUnknown
}

// Decision returns item's decision if it is made and still remembered. The
// result shares memory with the Core: do not modify it.
func (c *Core) Decision(item string) (Decision, bool) {
	if rec := c.decided[item]; rec != nil {
		return rec.d, true
	}
	return Decision{}, false
}

// Recent returns up to n remembered decisions, newest first. They share
// memory with the Core: do not modify them.
func (c *Core) Recent(n int) []Decision {
	var out []Decision
	for i := 1; i <= len(c.ring) && len(out) < n; i++ {
		rec := c.ring[(c.ringNext-i+len(c.ring))%len(c.ring)]
		if rec == nil {
			break
		}
		out = append(out, rec.d)
	}
	return out
}

// Window returns the window the next opened item will get.
func (c *Core) Window() time.Duration { return c.win.current() }

// MaxWindow returns the longest window an item can get; see Stream.MaxWindow.
func (c *Core) MaxWindow() time.Duration {
	if c.opts.FixedWindow {
		return c.opts.Window
	}
	return c.opts.MaxWindow
}

// entry returns item's open entry, creating it (with its deadline, unless
// unbounded) if needed, and returns the decisions of items evicted to
// respect MaxOpen.
func (c *Core) entry(now time.Time, item, key string, unbounded bool) (*entry, []Decision) {
	if e := c.open[item]; e != nil {
		return e, nil
	}
	e := &entry{
		item: item, key: key,
		unbounded: unbounded,
		opened:    now, started: now,
		window: c.win.current(),
		hi:     -1,
	}
	c.open[item] = e
	if c.newest == nil {
		c.oldest = e
	} else {
		c.newest.next, e.prev = e, c.newest
	}
	c.newest = e
	if !unbounded {
		first := e.window
		if c.opts.WindowFromFirstThought {
			first = c.opts.Patience
		}
		c.arm(e, now.Add(first))
	}
	var out []Decision
	for len(c.open) > c.opts.MaxOpen {
		out = append(out, c.close(c.oldest, now, false, true))
	}
	return e, out
}

// arm sets e's deadline, in the heap or moved within it.
//
// Equal deadlines close in the order they were set, as one timer per item
// would fire: the simulator's figures depend on that order at equal
// virtual instants, so it is part of the contract.
func (c *Core) arm(e *entry, at time.Time) {
	e.deadline = at
	c.seq++
	e.seq = c.seq
	if e.hi < 0 {
		heap.Push(&c.deadlines, e)
		return
	}
	heap.Fix(&c.deadlines, e.hi)
}

// close makes e's decision at now and remembers it.
func (c *Core) close(e *entry, now time.Time, timedOut, evicted bool) Decision {
	if e.hi >= 0 {
		heap.Remove(&c.deadlines, e.hi)
	}
	if e.prev == nil {
		c.oldest = e.next
	} else {
		e.prev.next = e.next
	}
	if e.next == nil {
		c.newest = e.prev
	} else {
		e.next.prev = e.prev
	}
	e.prev, e.next = nil, nil
	delete(c.open, e.item)

	considered := c.considered[:0]
	var addressees []string
	for i := range e.members {
		if e.members[i].addressee {
			addressees = append(addressees, e.members[i].name)
		}
	}
	itemAddr := slices.Clip(addressees)
	for _, t := range e.thoughts {
		m := e.member(t.Persona)
		if m.withdrawn {
			continue
		}
		considered = append(considered, t)
		if t.Addressed && !m.addressee {
			addressees = append(addressees, t.Persona)
		}
	}
	k := c.opts.K
	if c.opts.KFor != nil {
		if kk := c.opts.KFor(e.key); kk > 0 {
			k = kk
		}
	}
	granted, why := Grant(considered, addressees, k, c.last)
	clear(considered) // Grant keeps nothing of it; drop the references
	c.considered = considered
	// One map sized for every persona the item saw: Grant's is sized for the
	// thinkers, and growing it persona by persona costs more than a copy.
	reasons := make(map[string]string, len(e.members))
	maps.Copy(reasons, why)
	var missing []string
	if e.waiting > 0 {
		missing = make([]string, 0, e.waiting)
	}
	for i := range e.members {
		m := &e.members[i]
		switch {
		case m.withdrawn:
			reasons[m.name] = "withdrew"
		case m.expected && m.thought < 0:
			missing = append(missing, m.name)
			if !m.addressee {
				reasons[m.name] = "did not think"
			}
		}
	}
	// Grant stamps strictly increase so that grants within one clock tick (or
	// one synctest instant, or one virtual instant) still order by recency.
	for _, p := range granted {
		if now.After(c.stamp) {
			c.stamp = now
		} else {
			c.stamp = c.stamp.Add(time.Nanosecond)
		}
		c.last[p] = c.stamp
	}
	window := e.window
	if e.unbounded {
		window = 0
	}
	d := Decision{
		Item: e.item, Key: e.key,
		Granted:  granted,
		Thoughts: e.thoughts,
		Reasons:  reasons,
		Missing:  missing,
		TimedOut: timedOut,
		Evicted:  evicted,
		K:        k,
		Window:   window,
		Opened:   e.opened,
		Closed:   now,
	}
	rec := &closedRec{d: d, explicit: e.explicit, started: e.started, addressees: itemAddr}
	if old := c.ring[c.ringNext]; old != nil && c.decided[old.d.Item] == old {
		delete(c.decided, old.d.Item)
	}
	c.ring[c.ringNext] = rec
	c.ringNext = (c.ringNext + 1) % len(c.ring)
	c.decided[e.item] = rec
	return d
}

func (e *entry) member(p string) *member {
	if e.idx != nil {
		if i, ok := e.idx[p]; ok {
			return &e.members[i]
		}
		return nil
	}
	for i := range e.members {
		if e.members[i].name == p {
			return &e.members[i]
		}
	}
	return nil
}

// add returns p's member record, adding it if new. The pointer is valid
// until the next add.
// thought reports whether p has thought on the item (and not withdrawn).
func (e *entry) thought(p string) bool {
	m := e.member(p)
	return m != nil && m.thought >= 0 && !m.withdrawn
}

func (e *entry) add(p string) *member {
	if m := e.member(p); m != nil {
		return m
	}
	e.members = append(e.members, member{name: p, thought: -1})
	n := len(e.members)
	switch {
	case e.idx != nil:
		e.idx[p] = n - 1
	case n >= memberIndexAt:
		e.idx = make(map[string]int, 2*n)
		for i := range e.members {
			e.idx[e.members[i].name] = i
		}
	}
	return &e.members[n-1]
}

func (e *entry) expect(m *member) {
	if m.expected {
		return
	}
	m.expected = true
	e.expected++
	if !m.spoken() {
		e.waiting++
	}
}

// complete reports whether the item can close before its window: every
// expected thinker has thought or withdrawn. With nobody expected only the
// window can close it, or nothing can wait at all for an unbounded item.
func (e *entry) complete() bool {
	if e.expected == 0 {
		return e.unbounded
	}
	return e.waiting == 0
}

// deadlineHeap orders armed items by deadline, then by the order their
// deadlines were set, so that Expire is deterministic.
type deadlineHeap []*entry

func (h deadlineHeap) Len() int { return len(h) }
func (h deadlineHeap) Less(i, j int) bool {
	if c := h[i].deadline.Compare(h[j].deadline); c != 0 {
		return c < 0
	}
	return h[i].seq < h[j].seq
}
func (h deadlineHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].hi, h[j].hi = i, j
}
func (h *deadlineHeap) Push(x any) {
	e := x.(*entry)
	e.hi = len(*h)
	*h = append(*h, e)
}
func (h *deadlineHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.hi = -1
	return e
}
