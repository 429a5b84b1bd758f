package coord

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"sync"
	"time"
)

// Lifecycle and validation errors. Errors returned by Stream wrap these; test
// with errors.Is.
var (
	// ErrClosed is returned once Stream.Close has been called.
	ErrClosed = errors.New("coord: stream closed")
	// ErrClosedDecision is returned by Think when the item's decision is
	// already made: the thought arrived too late to count.
	ErrClosedDecision = errors.New("coord: decision already closed")
	// ErrUnknownItem is returned by Await for an item that was never opened
	// or whose decision has been forgotten (see Options.MaxClosed).
	ErrUnknownItem = errors.New("coord: unknown item")
	// ErrInvalidThought is returned by Think for a thought without persona or
	// item, with an unknown intent, or with a confidence outside [0, 1].
	ErrInvalidThought = errors.New("coord: invalid thought")
)

// Defaults for Options. The 1.5 s window and K = 1 come from the coordination
// issue; the seed's ChatCoordinationStream leaves them unspecified.
const (
	DefaultWindow    = 1500 * time.Millisecond
	DefaultMinWindow = 250 * time.Millisecond
	DefaultMaxWindow = 10 * time.Second
	DefaultSamples   = 256
	DefaultK         = 1
	DefaultMaxClosed = 4096
	DefaultMaxOpen   = 65536
)

// Decision is the outcome for one item, published once to every thinker. A
// Decision handed out by Stream is a copy: callers may modify it.
type Decision struct {
	Item string `json:"item"`
	Key  string `json:"key"`
	// Granted lists the personas allowed to act, in grant order (addressees
	// first, then by rank; see Grant).
	Granted []string `json:"granted"`
	// Thoughts holds the latest thought of every persona that thought, in
	// order of each persona's first thought, including personas that then
	// withdrew (their reason says so).
	Thoughts []Thought `json:"thoughts"`
	// Reasons explains, for every persona that thought, withdrew, or was
	// expected, why it was or was not granted.
	Reasons map[string]string `json:"reasons"`
	// Missing lists expected thinkers (including addressees) that neither
	// thought nor withdrew, in the order they were first expected.
	Missing []string `json:"missing,omitempty"`
	// TimedOut is true when the window closed the decision rather than every
	// expected thinker having spoken.
	TimedOut bool `json:"timed_out"`
	// Evicted is true when the decision was closed early because more than
	// Options.MaxOpen items were open.
	Evicted bool `json:"evicted,omitempty"`
	// K is the number of responders that was wanted for the item's key.
	K int `json:"k"`
	// Window is the window the item was opened with.
	Window time.Duration `json:"window_ns"`
	Opened time.Time     `json:"opened"`
	Closed time.Time     `json:"closed"`
}

// IsGranted reports whether persona is among the granted.
func (d Decision) IsGranted(persona string) bool { return slices.Contains(d.Granted, persona) }

func (d Decision) clone() Decision {
	d.Granted = slices.Clone(d.Granted)
	d.Thoughts = slices.Clone(d.Thoughts)
	d.Missing = slices.Clone(d.Missing)
	r := make(map[string]string, len(d.Reasons))
	for p, why := range d.Reasons {
		r[p] = why
	}
	d.Reasons = r
	return d
}

// Options configures a Stream. The zero value is valid: every zero or negative
// field takes its default, filled in by withDefaults.
type Options struct {
	// Window is the initial decision window, used until the adaptive rule has
	// MinSamples samples, and always when FixedWindow is set. Default 1.5 s.
	Window time.Duration
	// MinWindow and MaxWindow bound the adaptive window. Defaults 250 ms and
	// 10 s; they are widened if needed so that MinWindow <= Window <= MaxWindow.
	MinWindow, MaxWindow time.Duration
	// FixedWindow disables adaptation: every item gets Window. By default the
	// window adapts to clamp(p95 time-to-thought * 1.25, MinWindow, MaxWindow)
	// over the last Samples thoughts (see AdaptWindow), because a thought may
	// itself need a model call whose latency we cannot know in advance.
	FixedWindow bool
	// Samples is how many recent time-to-thought samples the adaptive rule
	// keeps. Default 256, at least MinSamples.
	Samples int
	// K is how many non-addressed responders are granted per item. Default 1.
	K int
	// KFor overrides K per key (per room, per camera). A result <= 0 means K,
	// so a lookup miss returning 0 cannot silence a key.
	KFor func(key string) int
	// MaxClosed bounds how many closed decisions are remembered; the oldest is
	// forgotten first. Default 4096.
	MaxClosed int
	// MaxOpen bounds how many items may be open at once; opening one more
	// closes the oldest open item at once (Decision.Evicted). Default 65536.
	MaxOpen int
	// Logger receives debug lines per decision and a warning per eviction.
	// Default slog.Default().
	Logger *slog.Logger
	// WindowFromFirstThought starts an item's window at its first thought
	// instead of at Open. Personas that scan on their own cadence notice an
	// item seconds apart; counted from Open, a short window would close
	// before anyone spoke. Counted from the first thought, the first to
	// notice gets the window to hear its peers, and an item nobody thinks
	// about waits up to Patience. Time-to-thought samples are then measured
	// from the first thought too.
	WindowFromFirstThought bool
	// Patience bounds how long an item opened with WindowFromFirstThought
	// waits for its first thought before it closes with no grant. Default
	// one minute.
	Patience time.Duration
	// OnDecision, if set, is called once per decision, outside the stream's
	// lock, on the goroutine that closed it (a Think, Withdraw or Open caller,
	// or the item's window timer). It may call back into the Stream, except
	// Close (Close waits for timer callbacks). Calls for different items may
	// run concurrently and in any order.
	OnDecision func(Decision)
}

func (o Options) withDefaults() Options {
	if o.Window <= 0 {
		o.Window = DefaultWindow
	}
	if o.MinWindow <= 0 {
		o.MinWindow = DefaultMinWindow
	}
	if o.MaxWindow <= 0 {
		o.MaxWindow = DefaultMaxWindow
	}
	o.MinWindow = min(o.MinWindow, o.Window)
	o.MaxWindow = max(o.MaxWindow, o.Window)
	if o.Samples <= 0 {
		o.Samples = DefaultSamples
	}
	o.Samples = max(o.Samples, MinSamples)
	if o.K <= 0 {
		o.K = DefaultK
	}
	if o.MaxClosed <= 0 {
		o.MaxClosed = DefaultMaxClosed
	}
	if o.MaxOpen <= 0 {
		o.MaxOpen = DefaultMaxOpen
	}
	if o.Patience <= 0 {
		o.Patience = time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Stream is the coordination stream: it collects thoughts per item, closes each
// item's decision, and publishes it. Create one with New; the zero value is not
// usable. All methods are safe for concurrent use. Most callers want Open (when
// an item is delivered), Think or Withdraw (per persona), then Await.
type Stream struct {
	opts Options
	log  *slog.Logger

	// timers counts window callbacks that may still run: one per open item,
	// released either by the callback or by whoever stops the timer first.
	// time.AfterFunc owns the goroutine, so WaitGroup.Go does not fit here.
	timers sync.WaitGroup

	mu       sync.Mutex
	closed   bool
	shut     chan struct{} // closed by Close; releases Awaiters
	open     map[string]*entry
	order    list.List // of *entry, oldest opened first
	decided  map[string]*closedRec
	ring     []*closedRec // closed decisions, FIFO, len MaxClosed
	ringNext int
	last     map[string]time.Time // persona -> last grant stamp
	stamp    time.Time            // latest grant stamp handed out
	win      *window
}

type entry struct {
	item, key  string
	expected   []string // expected thinkers, addressees included
	isExpected map[string]bool
	addressees []string
	isAddr     map[string]bool
	thoughts   []Thought
	thoughtIdx map[string]int
	withdrawn  map[string]bool
	explicit   bool // opened by Open, so time-to-thought is meaningful
	opened     time.Time
	started    time.Time // the window's start: opened, or the first thought
	window     time.Duration
	timer      *time.Timer
	elem       *list.Element
	done       chan struct{} // closed once decision is set
	decision   Decision
}

type closedRec struct {
	d        Decision
	explicit bool
	started  time.Time
	addr     map[string]bool // the item's addressees
}

// New returns a running Stream. Call Close when done with it.
func New(opts Options) *Stream {
	o := opts.withDefaults()
	return &Stream{
		opts:    o,
		log:     o.Logger,
		shut:    make(chan struct{}),
		open:    make(map[string]*entry),
		decided: make(map[string]*closedRec),
		ring:    make([]*closedRec, o.MaxClosed),
		last:    make(map[string]time.Time),
		win:     newWindow(o),
	}
}

// Open announces an item: expected lists the personas that should think about
// it, addressees the personas the item names (an @mention). Addressees are
// expected too. Open starts the item's window. It is idempotent: opening an
// open item merges expected and addressees (the key and window stay), and
// opening an item already decided, or on a closed stream, does nothing. Think
// and Withdraw open unknown items themselves, so arrival order does not matter.
func (s *Stream) Open(item, key string, expected, addressees []string) {
	if item == "" {
		return
	}
	now := time.Now()
	s.mu.Lock()
	if s.closed || s.decided[item] != nil {
		s.mu.Unlock()
		return
	}
	e, pub := s.entryLocked(item, key, now)
	e.explicit = true
	if e.key == "" {
		e.key = key
	}
	for _, a := range addressees {
		if !e.isAddr[a] {
			e.isAddr[a] = true
			e.addressees = append(e.addressees, a)
		}
		e.expect(a)
	}
	for _, p := range expected {
		e.expect(p)
	}
	if e.complete() {
		pub = append(pub, s.closeLocked(e, now, false, false))
	}
	s.mu.Unlock()
	s.publish(pub)
}

// Think records a thought. The first thought of a persona on an item opened by
// Open is a time-to-thought sample for the adaptive window, measured from Open
// to arrival; so is a late one, otherwise a window that is too short could
// never learn to grow. A later thought from the same persona replaces its
// earlier one, and a thought after Withdraw cancels the withdrawal. Think
// returns an error wrapping ErrInvalidThought, ErrClosedDecision (too late:
// the decision is made) or ErrClosed.
func (s *Stream) Think(t Thought) error {
	if err := validate(t); err != nil {
		return err
	}
	now := time.Now()
	if t.At.IsZero() {
		t.At = now
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fmt.Errorf("coord: think %s on %s: %w", t.Persona, t.Item, ErrClosed)
	}
	if rec := s.decided[t.Item]; rec != nil {
		late := !slices.ContainsFunc(rec.d.Thoughts, func(o Thought) bool { return o.Persona == t.Persona })
		if rec.explicit && late {
			s.win.add(now.Sub(rec.started))
		}
		if late && (rec.addr[t.Persona] || t.Addressed) && !rec.d.IsGranted(t.Persona) {
			// An addressee is always granted, even one that was busy past
			// the window: the decision is amended and published again.
			rec.d.Granted = append(slices.Clip(rec.d.Granted), t.Persona)
			rec.d.Thoughts = append(slices.Clip(rec.d.Thoughts), t)
			rec.d.Reasons = maps.Clone(rec.d.Reasons)
			rec.d.Reasons[t.Persona] = "addressee, thought after the decision closed: granted late"
			rec.d.Missing = slices.DeleteFunc(slices.Clone(rec.d.Missing), func(p string) bool { return p == t.Persona })
			d := rec.d.clone()
			s.mu.Unlock()
			s.publish([]Decision{d})
			return nil
		}
		s.mu.Unlock()
		return fmt.Errorf("coord: think %s on %s: %w", t.Persona, t.Item, ErrClosedDecision)
	}
	e, pub := s.entryLocked(t.Item, t.Key, now)
	if i, ok := e.thoughtIdx[t.Persona]; ok {
		e.thoughts[i] = t
	} else {
		if len(e.thoughts) == 0 && s.opts.WindowFromFirstThought {
			e.started = now
			s.rearmLocked(e, e.window)
		}
		e.thoughtIdx[t.Persona] = len(e.thoughts)
		e.thoughts = append(e.thoughts, t)
		if e.explicit {
			s.win.add(now.Sub(e.started))
		}
	}
	delete(e.withdrawn, t.Persona)
	if e.complete() {
		pub = append(pub, s.closeLocked(e, now, false, false))
	}
	s.mu.Unlock()
	s.publish(pub)
	return nil
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

// Withdraw records that persona will not think about item (it declined or
// deferred the item), so the decision need not wait for it. A persona that
// already thought is withdrawn from the grant but its thought stays visible in
// the decision. Withdraw opens an unknown item, and does nothing on a decided
// item or a closed stream.
func (s *Stream) Withdraw(item, persona string) {
	if item == "" || persona == "" {
		return
	}
	now := time.Now()
	s.mu.Lock()
	if s.closed || s.decided[item] != nil {
		s.mu.Unlock()
		return
	}
	e, pub := s.entryLocked(item, "", now)
	e.withdrawn[persona] = true
	if e.complete() {
		pub = append(pub, s.closeLocked(e, now, false, false))
	}
	s.mu.Unlock()
	s.publish(pub)
}

// Leave withdraws persona from item only if the item is open: unlike
// Withdraw it never opens an item, so a persona that leaves an item whose
// decision is long made and forgotten (or that was never opened) does not
// create a second, empty decision. The runtime uses it.
func (s *Stream) Leave(item, persona string) {
	if item == "" || persona == "" {
		return
	}
	now := time.Now()
	s.mu.Lock()
	e := s.open[item]
	if s.closed || e == nil {
		s.mu.Unlock()
		return
	}
	e.withdrawn[persona] = true
	var pub []Decision
	if e.complete() {
		pub = append(pub, s.closeLocked(e, now, false, false))
	}
	s.mu.Unlock()
	s.publish(pub)
}

// Await is the sync point: it blocks until item's decision is made and returns
// it, or returns early with an error wrapping ctx.Err(), ErrClosed (the stream
// closed first) or ErrUnknownItem. A decided item returns at once, even after
// Close. Awaiters never wait on each other: a dead persona only delays the
// decision until the window ends.
func (s *Stream) Await(ctx context.Context, item string) (Decision, error) {
	s.mu.Lock()
	if rec := s.decided[item]; rec != nil {
		d := rec.d.clone()
		s.mu.Unlock()
		return d, nil
	}
	if s.closed {
		s.mu.Unlock()
		return Decision{}, fmt.Errorf("coord: await %s: %w", item, ErrClosed)
	}
	e := s.open[item]
	s.mu.Unlock()
	if e == nil {
		return Decision{}, fmt.Errorf("coord: await %s: %w", item, ErrUnknownItem)
	}
	select {
	case <-e.done:
		// e.decision was written before done was closed and is never written again.
		return e.decision.clone(), nil
	case <-s.shut:
		select {
		case <-e.done:
			return e.decision.clone(), nil
		default:
			return Decision{}, fmt.Errorf("coord: await %s: %w", item, ErrClosed)
		}
	case <-ctx.Done():
		return Decision{}, fmt.Errorf("coord: await %s: %w", item, ctx.Err())
	}
}

// Decision returns item's decision if it is closed and still remembered.
func (s *Stream) Decision(item string) (Decision, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rec := s.decided[item]; rec != nil {
		return rec.d.clone(), true
	}
	return Decision{}, false
}

// Recent returns up to n remembered decisions, newest first.
func (s *Stream) Recent(n int) []Decision {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Decision
	for i := 1; i <= len(s.ring) && len(out) < n; i++ {
		rec := s.ring[(s.ringNext-i+len(s.ring))%len(s.ring)]
		if rec == nil {
			break
		}
		out = append(out, rec.d.clone())
	}
	return out
}

// Window returns the window the next opened item will get.
func (s *Stream) Window() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.win.current()
}

// MaxWindow returns the longest window an item can get: Window when the
// window is fixed, MaxWindow otherwise. A thinker that has spoken never
// waits longer than this for its decision, so it bounds Await.
func (s *Stream) MaxWindow() time.Duration {
	if s.opts.FixedWindow {
		return s.opts.Window
	}
	return s.opts.MaxWindow
}

// Close stops every window timer, releases pending Awaiters with ErrClosed,
// and blocks until running timer callbacks (and their OnDecision calls) have
// returned. Open items are abandoned without a decision. Close is idempotent.
func (s *Stream) Close() {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.shut)
		for _, e := range s.open {
			if e.timer.Stop() {
				s.timers.Done()
			}
		}
	}
	s.mu.Unlock()
	s.timers.Wait()
}

// entryLocked returns item's open entry, creating it (with its window timer)
// if needed, and returns the decision of any item evicted to respect MaxOpen.
func (s *Stream) entryLocked(item, key string, now time.Time) (*entry, []Decision) {
	if e := s.open[item]; e != nil {
		return e, nil
	}
	e := &entry{
		item:       item,
		key:        key,
		isExpected: make(map[string]bool),
		isAddr:     make(map[string]bool),
		thoughtIdx: make(map[string]int),
		withdrawn:  make(map[string]bool),
		opened:     now,
		started:    now,
		window:     s.win.current(),
		done:       make(chan struct{}),
	}
	s.open[item] = e
	e.elem = s.order.PushBack(e)
	first := e.window
	if s.opts.WindowFromFirstThought {
		first = s.opts.Patience
	}
	s.timers.Add(1)
	// The callback takes s.mu, which we hold, so it cannot see e.timer unset.
	e.timer = time.AfterFunc(first, func() { s.expire(e) })

	var pub []Decision
	for len(s.open) > s.opts.MaxOpen {
		old := s.order.Front().Value.(*entry)
		s.log.Warn("coord: too many open items, closing oldest early",
			"item", old.item, "max_open", s.opts.MaxOpen)
		pub = append(pub, s.closeLocked(old, now, false, true))
	}
	return e, pub
}

// rearmLocked restarts e's window timer for d. s.mu is held. If the old
// timer already fired, its callback waits for s.mu and then closes the item:
// patience ran out at the same moment as the first thought.
func (s *Stream) rearmLocked(e *entry, d time.Duration) {
	if !e.timer.Stop() {
		return
	}
	e.timer = time.AfterFunc(d, func() { s.expire(e) })
}

func (s *Stream) expire(e *entry) {
	defer s.timers.Done()
	s.mu.Lock()
	if s.closed || s.open[e.item] != e {
		s.mu.Unlock()
		return
	}
	d := s.closeLocked(e, time.Now(), true, false)
	s.mu.Unlock()
	s.publish([]Decision{d})
}

// closeLocked makes e's decision, remembers it, and wakes its Awaiters.
func (s *Stream) closeLocked(e *entry, now time.Time, timedOut, evicted bool) Decision {
	if e.timer.Stop() {
		s.timers.Done()
	}
	s.order.Remove(e.elem)
	delete(s.open, e.item)

	considered := make([]Thought, 0, len(e.thoughts))
	for _, t := range e.thoughts {
		if !e.withdrawn[t.Persona] {
			considered = append(considered, t)
		}
	}
	k := s.opts.K
	if s.opts.KFor != nil {
		if kk := s.opts.KFor(e.key); kk > 0 {
			k = kk
		}
	}
	addressees := e.addressees
	for _, t := range considered {
		if t.Addressed && !e.isAddr[t.Persona] {
			addressees = append(slices.Clip(addressees), t.Persona)
		}
	}
	granted, reasons := Grant(considered, addressees, k, s.last)
	for p := range e.withdrawn {
		reasons[p] = "withdrew"
	}
	var missing []string
	for _, p := range e.expected {
		if _, ok := e.thoughtIdx[p]; !ok && !e.withdrawn[p] {
			missing = append(missing, p)
			if !e.isAddr[p] {
				reasons[p] = "did not think"
			}
		}
	}
	// Grant stamps strictly increase so that grants within one clock tick (or
	// one synctest instant) still order by recency.
	for _, p := range granted {
		if now.After(s.stamp) {
			s.stamp = now
		} else {
			s.stamp = s.stamp.Add(time.Nanosecond)
		}
		s.last[p] = s.stamp
	}

	d := Decision{
		Item: e.item, Key: e.key,
		Granted:  granted,
		Thoughts: slices.Clone(e.thoughts),
		Reasons:  reasons,
		Missing:  missing,
		TimedOut: timedOut,
		Evicted:  evicted,
		K:        k,
		Window:   e.window,
		Opened:   e.opened,
		Closed:   now,
	}
	e.decision = d
	close(e.done)

	rec := &closedRec{d: d, explicit: e.explicit, started: e.started, addr: e.isAddr}
	if old := s.ring[s.ringNext]; old != nil && s.decided[old.d.Item] == old {
		delete(s.decided, old.d.Item)
	}
	s.ring[s.ringNext] = rec
	s.ringNext = (s.ringNext + 1) % len(s.ring)
	s.decided[e.item] = rec
	return d.clone()
}

func (s *Stream) publish(ds []Decision) {
	for _, d := range ds {
		s.log.Debug("coord: decision", "item", d.Item, "key", d.Key, "granted", d.Granted,
			"missing", d.Missing, "timed_out", d.TimedOut, "evicted", d.Evicted,
			"took", d.Closed.Sub(d.Opened))
		if s.opts.OnDecision != nil {
			s.opts.OnDecision(d)
		}
	}
}

func (e *entry) expect(p string) {
	if p != "" && !e.isExpected[p] {
		e.isExpected[p] = true
		e.expected = append(e.expected, p)
	}
}

// complete reports whether every expected thinker has thought or withdrawn.
// With nobody expected only the window can close the item.
func (e *entry) complete() bool {
	if len(e.expected) == 0 {
		return false
	}
	for _, p := range e.expected {
		if _, ok := e.thoughtIdx[p]; !ok && !e.withdrawn[p] {
			return false
		}
	}
	return true
}
