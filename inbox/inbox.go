package inbox

import (
	"errors"
	"sync"
	"time"
)

// Defaults. The capacity and the urgent line are the seed's numbers.
const (
	DefaultCapacity    = 1000 // seed: PersonaInbox.maxSize
	DefaultUrgent      = 0.8  // seed: shouldEngage "never neglect" line (made inclusive)
	DefaultAging       = 0.005
	DefaultDeferredTTL = 10 * time.Minute
	DefaultLowWater    = 0.5
)

var (
	// ErrClosed is returned by Push after Close.
	ErrClosed = errors.New("inbox: closed")
	// ErrDuplicate is returned by Push when an item with the same ID is
	// already in the inbox, in flight or deferred: the same work is never
	// held twice.
	ErrDuplicate = errors.New("inbox: duplicate item id")
	// ErrEmptyID is returned by Push for an entry without an ID.
	ErrEmptyID = errors.New("inbox: entry has no id")
)

// Options configures an Inbox. The zero value is valid: every zero field
// takes the default documented on it.
type Options struct {
	// Capacity bounds the items waiting in the inbox (default 1000).
	Capacity int
	// Urgent is the inclusive priority line at or above which an item is
	// urgent (default 0.8). Urgent items are never deferred while a
	// non-urgent item is present, and their arrival calls Notify.
	Urgent float64
	// Aging is the rise of effective priority per second of waiting
	// (default 0.005: a 0.3 item reaches the urgent line after 100 s).
	// Negative disables aging.
	Aging float64
	// DeferredCapacity bounds the deferred store (default 10 x Capacity).
	// When it is full the oldest deferred item expires early.
	DeferredCapacity int
	// DeferredTTL is how long a deferred item is kept for catch-up before
	// it expires (default 10 minutes).
	DeferredTTL time.Duration
	// LowWater is the load (depth / capacity) below which deferred items
	// are re-admitted by Readmit (default 0.5).
	LowWater float64
	// Report keeps every deferred entry for DrainDeferred and every entry
	// that expires inside the inbox (a deferred one past its time-to-live
	// at Readmit, or pushed out of a full deferred store) for DrainRetired,
	// so that a consumer can report each by name: which entry a full inbox
	// deferred is the lowest, not always the newcomer. Whoever sets it
	// must drain both; without it those entries are only counted.
	Report bool
	// Notify, if set, is called after every Push that queued its entry
	// (not for one deferred on arrival), outside the lock, with whether
	// the entry is urgent. It is the wake-up hook: a
	// consumer sleeps until it is called, instead of polling.
	Notify func(urgent bool)
}

func (o Options) withDefaults() Options {
	if o.Capacity <= 0 {
		o.Capacity = DefaultCapacity
	}
	if o.Urgent <= 0 {
		o.Urgent = DefaultUrgent
	}
	if o.Aging == 0 {
		o.Aging = DefaultAging
	}
	if o.Aging < 0 {
		o.Aging = 0
	}
	if o.DeferredCapacity <= 0 {
		o.DeferredCapacity = 10 * o.Capacity
	}
	if o.DeferredTTL <= 0 {
		o.DeferredTTL = DefaultDeferredTTL
	}
	if o.LowWater <= 0 || o.LowWater > 1 {
		o.LowWater = DefaultLowWater
	}
	return o
}

// Entry is one item of work in an inbox.
type Entry[T any] struct {
	ID       string
	Priority float64   // static priority, 0..1
	Enqueued time.Time // when it entered the inbox; set by Push if zero
	Deadline time.Time // optional: past it the entry expires
	Value    T
}

// Account is the final account an item ends in.
type Account int

const (
	Handled  Account = iota // the persona processed it
	Declined                // the persona chose not to engage (or it waited past its time-to-live)
	Expired                 // its deadline passed, or it was deferred past its time-to-live
	Failed                  // its handler failed on every attempt
)

func (a Account) String() string {
	switch a {
	case Handled:
		return "handled"
	case Declined:
		return "declined"
	case Expired:
		return "expired"
	case Failed:
		return "failed"
	}
	return "unknown"
}

// Counts is a consistent snapshot of an inbox's accounts. At every moment
//
//	Delivered == Handled + Declined + Expired + Failed + Queued + Deferred + InFlight
//
// which Balanced checks.
type Counts struct {
	Delivered  uint64 `json:"delivered"` // accepted by Push
	Handled    uint64 `json:"handled"`
	Declined   uint64 `json:"declined"`
	Expired    uint64 `json:"expired"`
	Failed     uint64 `json:"failed"`
	Deferrals  uint64 `json:"deferrals"`  // times an item was moved to the deferred store
	Readmitted uint64 `json:"readmitted"` // times a deferred item came back
	Queued     int    `json:"queued"`     // waiting in the inbox now
	Deferred   int    `json:"deferred"`   // in the deferred store now
	InFlight   int    `json:"in_flight"`  // taken, not yet finished
}

// Balanced reports whether every delivered item is in exactly one place.
func (c Counts) Balanced() bool {
	return c.Delivered == c.Handled+c.Declined+c.Expired+c.Failed+
		uint64(c.Queued)+uint64(c.Deferred)+uint64(c.InFlight)
}

// Outcome says what Push did.
type Outcome int

const (
	Accepted          Outcome = iota // queued
	AcceptedEvicting                 // queued; the lowest other item was deferred to make room
	DeferredOnArrival                // the inbox was full and the newcomer was the lowest: deferred
)

// Inbox is a bounded priority inbox with aging, a deferred store and
// complete accounting. All methods are safe for concurrent use; it is built
// for many producers and one consumer. Most callers want Push, TakeTop and
// Finish. Every operation on the queue is O(log n).
type Inbox[T any] struct {
	opts  Options
	epoch time.Time

	mu       sync.Mutex
	h        mmheap[T] // queued entries: the highest and the lowest at the top
	seq      uint64
	byID     map[string]*node[T] // queued, in-flight and deferred entries
	deferred ring[T]
	free     []*node[T]   // recycled nodes: a steady inbox allocates none
	retired  []Retired[T] // closed inside the inbox, for DrainRetired
	noted    []Entry[T]   // deferred entries, for DrainDeferred
	inFlight int
	urgentN  int
	closed   bool
	c        Counts
}

// New returns an empty inbox.
func New[T any](opts Options) *Inbox[T] {
	opts = opts.withDefaults()
	return &Inbox[T]{
		opts: opts,
		byID: make(map[string]*node[T]),
	}
}

// Options returns the inbox's options with defaults filled in.
func (q *Inbox[T]) Options() Options { return q.opts }

// key is the static ordering key: with one aging rate for all entries,
// priority + rate*(now - enqueued) orders the same as
// priority - rate*enqueued, so nothing is re-sorted as time passes.
func (q *Inbox[T]) key(e *Entry[T]) float64 {
	if q.epoch.IsZero() {
		q.epoch = e.Enqueued
	}
	return e.Priority - q.opts.Aging*e.Enqueued.Sub(q.epoch).Seconds()
}

// Effective returns an entry's priority raised by aging at now.
func (q *Inbox[T]) Effective(e Entry[T], now time.Time) float64 {
	return e.Priority + q.opts.Aging*max(0, now.Sub(e.Enqueued).Seconds())
}

// Urgent reports whether a static priority is at or above the urgent line.
func (q *Inbox[T]) Urgent(priority float64) bool { return priority >= q.opts.Urgent }

// Push offers an entry. When the inbox is full the entry with the lowest
// effective priority (possibly the newcomer) is deferred, never dropped;
// urgent entries are deferred only when every queued entry is urgent.
func (q *Inbox[T]) Push(e Entry[T]) (Outcome, error) {
	if e.ID == "" {
		return 0, ErrEmptyID
	}
	if e.Enqueued.IsZero() {
		e.Enqueued = time.Now()
	}
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return 0, ErrClosed
	}
	if _, dup := q.byID[e.ID]; dup {
		q.mu.Unlock()
		return 0, ErrDuplicate
	}
	q.c.Delivered++
	out := q.admit(&e, e.Enqueued)
	urgent := q.Urgent(e.Priority)
	q.mu.Unlock()
	if out != DeferredOnArrival && q.opts.Notify != nil {
		q.opts.Notify(urgent)
	}
	return out, nil
}

// admit queues e at now, deferring the lowest entry if full. q.mu is held.
func (q *Inbox[T]) admit(e *Entry[T], now time.Time) Outcome {
	n := q.newNode(e)
	out := Accepted
	if q.h.len() >= q.opts.Capacity {
		// The victim is the lowest entry, the newcomer included. The order
		// puts every urgent entry above every non-urgent one, so an urgent
		// entry is the victim only when nothing non-urgent is queued.
		victim := q.h.min()
		ns := slot[T]{urgent: n.urgent, key: n.key, seq: n.seq}
		vs := slot[T]{urgent: victim.urgent, key: victim.key, seq: victim.seq}
		if above(&vs, &ns) {
			victim = n
		}
		if victim == n {
			q.byID[n.e.ID] = n // a newcomer: not indexed yet
			q.deferLocked(n, now)
			return DeferredOnArrival
		}
		q.unqueueLocked(victim)
		q.deferLocked(victim, now)
		out = AcceptedEvicting
	}
	q.insertLocked(n)
	return out
}

// newNode returns a node for e, recycled when possible. q.mu is held.
func (q *Inbox[T]) newNode(e *Entry[T]) *node[T] {
	var n *node[T]
	if k := len(q.free); k > 0 {
		n = q.free[k-1]
		q.free = q.free[:k-1]
	} else {
		n = new(node[T])
	}
	n.e = *e
	n.urgent = q.Urgent(e.Priority)
	n.key = q.key(&n.e)
	q.seq++
	n.seq = q.seq
	return n
}

// recycle keeps a finished node for reuse. q.mu is held.
func (q *Inbox[T]) recycle(n *node[T]) {
	*n = node[T]{} // drop references to the payload
	if len(q.free) < 256 {
		q.free = append(q.free, n)
	}
}

// takeLocked moves a queued node in flight: out of the heaps, still in
// byID so that a duplicate delivery is refused while it is handled. q.mu
// is held.
func (q *Inbox[T]) takeLocked(n *node[T]) {
	q.unqueueLocked(n)
	n.flight = true
	q.inFlight++
}

// queueLocked puts n in the heap. q.mu is held.
func (q *Inbox[T]) queueLocked(n *node[T]) {
	q.h.push(n)
	if n.urgent {
		q.urgentN++
	}
}

// unqueueLocked takes n out of the heap; it stays known by ID. q.mu is held.
func (q *Inbox[T]) unqueueLocked(n *node[T]) {
	q.h.remove(n)
	if n.urgent {
		q.urgentN--
	}
}

func (q *Inbox[T]) insertLocked(n *node[T]) {
	q.byID[n.e.ID] = n
	q.queueLocked(n)
}

func (q *Inbox[T]) removeLocked(n *node[T]) {
	delete(q.byID, n.e.ID)
	q.unqueueLocked(n)
}

// deferLocked moves n (indexed, not queued) to the deferred store at now. Entries
// are deferred in time order, so the store's front is always the first to
// expire. A full store expires its oldest entry early. q.mu is held.
func (q *Inbox[T]) deferLocked(n *node[T], now time.Time) {
	if q.deferred.len() >= q.opts.DeferredCapacity {
		old := q.deferred.popFront()
		q.expireDeferredLocked(old.n)
	}
	n.deferred = true // still indexed by ID: a duplicate is refused
	if q.opts.Report {
		q.noted = append(q.noted, n.e)
	}
	q.deferred.pushBack(deferredEntry[T]{n: n, until: now.Add(q.opts.DeferredTTL)})
	q.c.Deferrals++
}

// Len returns the number of queued entries (not deferred, not in flight).
func (q *Inbox[T]) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.h.len()
}

// Load returns depth / capacity in [0, 1].
func (q *Inbox[T]) Load() float64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return float64(q.h.len()) / float64(q.opts.Capacity)
}

// HasUrgent reports whether an urgent entry is queued.
func (q *Inbox[T]) HasUrgent() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.urgentN > 0
}

// Peek appends up to k queued entries in order of effective priority,
// highest first, to dst without removing them. It costs O(k log k).
func (q *Inbox[T]) Peek(k int, dst []Entry[T]) []Entry[T] {
	q.mu.Lock()
	defer q.mu.Unlock()
	if k <= 0 || q.h.len() == 0 {
		return dst
	}
	q.h.topK(k, func(n *node[T]) { dst = append(dst, n.e) })
	return dst
}

// Top returns the entry with the highest effective priority without
// removing it.
func (q *Inbox[T]) Top() (Entry[T], bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.h.len() == 0 {
		var zero Entry[T]
		return zero, false
	}
	return q.h.max().e, true
}

// TakeTop removes the entry with the highest effective priority and puts it
// in flight; the caller must Finish it.
func (q *Inbox[T]) TakeTop() (Entry[T], bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.h.len() == 0 {
		var zero Entry[T]
		return zero, false
	}
	n := q.h.max()
	q.takeLocked(n)
	return n.e, true
}

// TakeTopIf removes the top entry and puts it in flight only if ok accepts
// it, so a consumer decides and takes under one lock.
func (q *Inbox[T]) TakeTopIf(ok func(Entry[T]) bool) (Entry[T], bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var zero Entry[T]
	if q.h.len() == 0 {
		return zero, false
	}
	n := q.h.max()
	if !ok(n.e) {
		return zero, false
	}
	q.takeLocked(n)
	return n.e, true
}

// TakeTopN takes up to n entries from the top, in order, while ok accepts
// them, puts them in flight and appends them to dst: a consumer with fast
// work takes a batch under one lock.
func (q *Inbox[T]) TakeTopN(n int, ok func(Entry[T]) bool, dst []Entry[T]) []Entry[T] {
	q.mu.Lock()
	defer q.mu.Unlock()
	for ; n > 0 && q.h.len() > 0; n-- {
		top := q.h.max()
		if !ok(top.e) {
			break
		}
		q.takeLocked(top)
		dst = append(dst, top.e)
	}
	return dst
}

// Take removes the entry with the given ID and puts it in flight.
func (q *Inbox[T]) Take(id string) (Entry[T], bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	n, ok := q.byID[id]
	if !ok || n.flight || n.deferred {
		var zero Entry[T]
		return zero, false
	}
	q.takeLocked(n)
	return n.e, true
}

// Finish closes the account of an entry that was taken. It reports false if
// the ID was not in flight.
func (q *Inbox[T]) Finish(id string, a Account) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	n, ok := q.byID[id]
	if !ok || !n.flight {
		return false
	}
	delete(q.byID, id)
	q.inFlight--
	q.recycle(n)
	q.count(a)
	return true
}

// Requeue puts an in-flight entry back in the queue at now (a retry after a
// handler error). It follows Push's rules when full.
func (q *Inbox[T]) Requeue(e Entry[T], now time.Time) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	n, ok := q.byID[e.ID]
	if !ok || !n.flight {
		return false
	}
	delete(q.byID, e.ID)
	q.inFlight--
	q.recycle(n)
	q.admit(&e, now)
	return true
}

// Resolve closes the account of a queued entry without taking it, e.g. a
// merged chat message whose newer sibling answered it. It reports false if
// the ID is not queued.
func (q *Inbox[T]) Resolve(id string, a Account) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	n, ok := q.byID[id]
	if !ok || n.flight || n.deferred {
		return false
	}
	q.removeLocked(n)
	q.recycle(n)
	q.count(a)
	return true
}

// TakeWhere removes every queued entry that match accepts and puts them in
// flight, in no particular order. It is O(n).
func (q *Inbox[T]) TakeWhere(match func(Entry[T]) bool) []Entry[T] {
	q.mu.Lock()
	defer q.mu.Unlock()
	var hit []*node[T]
	for _, sl := range q.h.s {
		n := sl.n
		if match(n.e) {
			hit = append(hit, n)
		}
	}
	out := make([]Entry[T], 0, len(hit))
	for _, n := range hit {
		q.takeLocked(n)
		out = append(out, n.e)
	}
	return out
}

func (q *Inbox[T]) count(a Account) {
	switch a {
	case Handled:
		q.c.Handled++
	case Declined:
		q.c.Declined++
	case Expired:
		q.c.Expired++
	default:
		q.c.Failed++
	}
}

// Sweep retires queued entries whose deadline passed (Expired) and those
// that waited longer than maxWait without being engaged (Declined; zero
// maxWait keeps them), and deferred entries past their time-to-live
// (Expired). It returns the retired entries with their accounts appended to
// dst. It is O(n) and meant to run about once per scan, not per item.
func (q *Inbox[T]) Sweep(now time.Time, maxWait time.Duration, dst []Retired[T]) []Retired[T] {
	q.mu.Lock()
	defer q.mu.Unlock()
	var victims []*node[T]
	for _, sl := range q.h.s {
		n := sl.n
		switch {
		case !n.e.Deadline.IsZero() && !now.Before(n.e.Deadline):
			victims = append(victims, n)
		case maxWait > 0 && !q.Urgent(n.e.Priority) && now.Sub(n.e.Enqueued) >= maxWait:
			victims = append(victims, n)
		}
	}
	for _, n := range victims {
		q.removeLocked(n)
		a := Declined
		if !n.e.Deadline.IsZero() && !now.Before(n.e.Deadline) {
			a = Expired
		}
		q.count(a)
		dst = append(dst, Retired[T]{Entry: n.e, Account: a})
		q.recycle(n)
	}
	for q.deferred.len() > 0 {
		d := q.deferred.front()
		if now.Before(d.until) && (d.n.e.Deadline.IsZero() || now.Before(d.n.e.Deadline)) {
			break
		}
		q.deferred.popFront()
		q.c.Expired++
		dst = append(dst, Retired[T]{Entry: d.n.e, Account: Expired})
		delete(q.byID, d.n.e.ID)
		q.recycle(d.n)
	}
	return dst
}

// expireDeferredLocked closes a deferred entry as expired and keeps it for
// DrainRetired, so that no account closes unseen. q.mu is held.
func (q *Inbox[T]) expireDeferredLocked(n *node[T]) {
	delete(q.byID, n.e.ID)
	q.c.Expired++
	if q.opts.Report {
		q.retired = append(q.retired, Retired[T]{Entry: n.e, Account: Expired})
	}
	q.recycle(n)
}

// DrainRetired appends to dst the entries that expired inside the inbox
// since the last call (a deferred entry past its time-to-live at Readmit,
// or the oldest pushed out of a full deferred store; with Options.Report)
// and forgets them. The consumer calls it once per scan to report them;
// Sweep returns its own.
func (q *Inbox[T]) DrainRetired(dst []Retired[T]) []Retired[T] {
	q.mu.Lock()
	defer q.mu.Unlock()
	dst = append(dst, q.retired...)
	clear(q.retired)
	q.retired = q.retired[:0]
	return dst
}

// DrainDeferred appends to dst the entries deferred since the last call
// (with Options.Report) and forgets them.
func (q *Inbox[T]) DrainDeferred(dst []Entry[T]) []Entry[T] {
	q.mu.Lock()
	defer q.mu.Unlock()
	dst = append(dst, q.noted...)
	clear(q.noted)
	q.noted = q.noted[:0]
	return dst
}

// Retired is an entry that Sweep closed, with its account.
type Retired[T any] struct {
	Entry   Entry[T]
	Account Account
}

// Readmit moves deferred entries back into the queue, oldest first, while
// the load is below the low-water mark, up to max entries (max <= 0: no
// limit). Entries past their time-to-live expire instead. It returns how
// many came back.
func (q *Inbox[T]) Readmit(now time.Time, max int) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	// Compare as floats: truncating LowWater*Capacity to an int made the
	// mark stricter than documented (a capacity-1 inbox never readmitted).
	low := q.opts.LowWater * float64(q.opts.Capacity)
	count := 0
	for q.deferred.len() > 0 && float64(q.h.len()) < low && (max <= 0 || count < max) {
		d := q.deferred.popFront()
		n := d.n
		if !now.Before(d.until) || (!n.e.Deadline.IsZero() && !now.Before(n.e.Deadline)) {
			q.expireDeferredLocked(n)
			continue
		}
		n.deferred = false
		q.seq++
		n.seq = q.seq
		q.queueLocked(n)
		q.c.Readmitted++
		count++
	}
	return count
}

// DeferredLen returns the number of deferred entries.
func (q *Inbox[T]) DeferredLen() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.deferred.len()
}

// Counts returns a consistent snapshot of the accounts.
func (q *Inbox[T]) Counts() Counts {
	q.mu.Lock()
	defer q.mu.Unlock()
	c := q.c
	c.Queued = q.h.len()
	c.Deferred = q.deferred.len()
	c.InFlight = q.inFlight
	return c
}

// Close stops Push and returns every queued and deferred entry, highest
// effective priority first for the queued ones, so a shutdown reports what
// was left instead of dropping it silently. The entries stay counted as
// Queued and Deferred.
func (q *Inbox[T]) Close() (queued, deferred []Entry[T]) {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	queued = q.Peek(q.Len(), nil)
	q.mu.Lock()
	defer q.mu.Unlock()
	for i := range q.deferred.len() {
		deferred = append(deferred, q.deferred.at(i).n.e)
	}
	return queued, deferred
}
