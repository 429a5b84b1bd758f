package coord

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
//
// Stream is the real-time driver of a Core: every decision is the Core's; the
// Stream adds the clock, a lock, one timer armed at the Core's next deadline,
// the Awaiters' channels and OnDecision.
type Stream struct {
	opts Options
	log  *slog.Logger

	// timers counts timer callbacks that may still run: one per arming,
	// released either by the callback or by whoever stops the timer first.
	// time.AfterFunc owns the goroutine, so WaitGroup.Go does not fit here.
	timers sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	shut    chan struct{} // closed by Close; releases Awaiters
	core    *Core
	waiters map[string]*waiter // open items somebody awaits
	timer   *time.Timer        // nil until first armed
	armed   bool               // a callback count is held for the timer's current arming
	armedAt time.Time
}

// waiter is the sync point of one open item: done is closed once d is set.
type waiter struct {
	done chan struct{}
	d    Decision
}

// New returns a running Stream. Call Close when done with it.
func New(opts Options) *Stream {
	o := opts.withDefaults()
	return &Stream{
		opts:    o,
		log:     o.Logger,
		shut:    make(chan struct{}),
		core:    NewCore(o),
		waiters: make(map[string]*waiter),
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
	s.do(func(now time.Time) []Decision {
		return s.core.Open(now, Opening{Item: item, Key: key, Expected: expected, Addressees: addressees})
	})
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
	var err error
	closed := s.do(func(now time.Time) []Decision {
		if t.At.IsZero() {
			t.At = now
		}
		var ds []Decision
		ds, err = s.core.Think(now, t)
		return ds
	})
	if closed {
		return fmt.Errorf("coord: think %s on %s: %w", t.Persona, t.Item, ErrClosed)
	}
	return err
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
	s.do(func(now time.Time) []Decision { return s.core.Withdraw(now, item, persona) })
}

// Leave withdraws persona from item only if the item is open: unlike
// Withdraw it never opens an item, so a persona that leaves an item whose
// decision is long made and forgotten (or that was never opened) does not
// create a second, empty decision. The runtime uses it.
func (s *Stream) Leave(item, persona string) {
	if item == "" || persona == "" {
		return
	}
	s.do(func(now time.Time) []Decision { return s.core.Leave(now, item, persona) })
}

// do runs one step of the core under the lock at the current time, wakes the
// Awaiters of the decisions it closed, re-arms the timer, and publishes them
// outside the lock. It reports whether the stream was closed (f not run).
func (s *Stream) do(f func(now time.Time) []Decision) (closed bool) {
	now := time.Now()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return true
	}
	ds := f(now)
	s.settleLocked(ds)
	s.rearmLocked(now, false)
	s.mu.Unlock()
	s.publish(ds)
	return false
}

// Await is the sync point: it blocks until item's decision is made and returns
// it, or returns early with an error wrapping ctx.Err(), ErrClosed (the stream
// closed first) or ErrUnknownItem. A decided item returns at once, even after
// Close. Awaiters never wait on each other: a dead persona only delays the
// decision until the window ends.
func (s *Stream) Await(ctx context.Context, item string) (Decision, error) {
	s.mu.Lock()
	if d, ok := s.core.Decision(item); ok {
		s.mu.Unlock()
		return d.clone(), nil
	}
	if s.closed {
		s.mu.Unlock()
		return Decision{}, fmt.Errorf("coord: await %s: %w", item, ErrClosed)
	}
	if s.core.State(item) != ItemOpen {
		s.mu.Unlock()
		return Decision{}, fmt.Errorf("coord: await %s: %w", item, ErrUnknownItem)
	}
	w := s.waiters[item]
	if w == nil {
		w = &waiter{done: make(chan struct{})}
		s.waiters[item] = w
	}
	s.mu.Unlock()
	select {
	case <-w.done:
		// w.d was written before done was closed and is never written again.
		return w.d.clone(), nil
	case <-s.shut:
		select {
		case <-w.done:
			return w.d.clone(), nil
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
	d, ok := s.core.Decision(item)
	if !ok {
		return Decision{}, false
	}
	return d.clone(), true
}

// Recent returns up to n remembered decisions, newest first.
func (s *Stream) Recent(n int) []Decision {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.core.Recent(n)
	for i := range out {
		out[i] = out[i].clone()
	}
	return out
}

// Window returns the window the next opened item will get.
func (s *Stream) Window() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.core.Window()
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

// Close stops the window timer, releases pending Awaiters with ErrClosed,
// and blocks until a running timer callback (and its OnDecision calls) has
// returned. Open items are abandoned without a decision. Close is idempotent.
func (s *Stream) Close() {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.shut)
		s.disarmLocked()
	}
	s.mu.Unlock()
	s.timers.Wait()
}

// rearmLocked points the one timer at the core's next deadline. force is
// for the timer's own callback: the arming it served is spent even if the
// deadline it was armed for is somehow still pending.
func (s *Stream) rearmLocked(now time.Time, force bool) {
	next, ok := s.core.NextDeadline()
	if !force && s.armed && ok && next.Equal(s.armedAt) {
		return
	}
	s.disarmLocked()
	if !ok {
		return
	}
	s.timers.Add(1)
	s.armed, s.armedAt = true, next
	if s.timer == nil {
		s.timer = time.AfterFunc(next.Sub(now), s.fire)
		return
	}
	s.timer.Reset(next.Sub(now))
}

// disarmLocked stops the timer. When Stop fails the callback is already
// running (or about to): it owns its count and finds the core's new state.
func (s *Stream) disarmLocked() {
	if s.armed && s.timer.Stop() {
		s.timers.Done()
	}
	s.armed = false
}

func (s *Stream) fire() {
	defer s.timers.Done()
	now := time.Now()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	ds := s.core.Expire(now)
	s.settleLocked(ds)
	s.rearmLocked(now, true)
	s.mu.Unlock()
	s.publish(ds)
}

// settleLocked wakes the Awaiters of the decisions the core just closed. An
// amended decision finds no waiter: its item's were woken when it closed.
func (s *Stream) settleLocked(ds []Decision) {
	for _, d := range ds {
		if w := s.waiters[d.Item]; w != nil {
			w.d = d
			close(w.done)
			delete(s.waiters, d.Item)
		}
	}
}

func (s *Stream) publish(ds []Decision) {
	for _, d := range ds {
		if d.Evicted {
			s.log.Warn("coord: too many open items, closed oldest early",
				"item", d.Item, "max_open", s.opts.MaxOpen)
		}
		s.log.Debug("coord: decision", "item", d.Item, "key", d.Key, "granted", d.Granted,
			"missing", d.Missing, "timed_out", d.TimedOut, "evicted", d.Evicted,
			"took", d.Closed.Sub(d.Opened))
		if s.opts.OnDecision != nil {
			s.opts.OnDecision(d.clone())
		}
	}
}
