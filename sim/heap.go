package sim

// evKind names what an event does when its time comes.
type evKind uint8

const (
	evArrival      evKind = iota // the next message from outside
	evTick                       // once per virtual second: sample, govern, report progress
	evCallDone                   // a = call: a model call finished
	evDecision                   // the coordination stream's earliest deadline (stream.go)
	evScan                       // a = persona, b = timer generation: the scan timer fires
	evWork                       // a = persona: a local step ends (persona: evaluation; seed: next cycle)
	evStep                       // a = persona: the persona policy steps (woken, or urgent work left)
	evResume                     // a = persona: its decision is made; act on it
	evDepTimeout                 // a = pipeline, b = generation: its barriers' next deadline
	evAwaitTimeout               // a = persona, b = delivery: its wait for the decision runs out
	evBudget                     // a = call: its compute-budget token is due; it may take a slot
)

// event is one scheduled happening. Events are ordered by time, then by the
// order they were scheduled (seq), so equal times are first in, first out
// and a run is deterministic.
type event struct {
	at   int64
	seq  uint64
	kind evKind
	a, b int32
}

// eventHeap is a binary min-heap of events by (at, seq), written by hand
// (no interface calls, no boxing) because it is the simulator's hot path.
type eventHeap struct {
	ev  []event
	seq uint64
}

func (h *eventHeap) len() int { return len(h.ev) }

func before(a, b *event) bool {
	if a.at != b.at {
		return a.at < b.at
	}
	return a.seq < b.seq
}

func (h *eventHeap) push(e event) {
	h.seq++
	e.seq = h.seq
	h.ev = append(h.ev, e)
	i := len(h.ev) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !before(&h.ev[i], &h.ev[p]) {
			break
		}
		h.ev[i], h.ev[p] = h.ev[p], h.ev[i]
		i = p
	}
}

// peek returns the earliest event; the heap must not be empty.
func (h *eventHeap) peek() *event { return &h.ev[0] }

func (h *eventHeap) pop() event {
	top := h.ev[0]
	last := len(h.ev) - 1
	h.ev[0] = h.ev[last]
	h.ev = h.ev[:last]
	i, n := 0, last
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		c := l
		if r := l + 1; r < n && before(&h.ev[r], &h.ev[l]) {
			c = r
		}
		if !before(&h.ev[c], &h.ev[i]) {
			break
		}
		h.ev[i], h.ev[c] = h.ev[c], h.ev[i]
		i = c
	}
	return top
}

// fifo is an unbounded first-in, first-out queue of int32 (the model
// server's waiting calls).
type fifo struct {
	buf  []int32
	head int
}

func (q *fifo) len() int { return len(q.buf) - q.head }

func (q *fifo) push(v int32) { q.buf = append(q.buf, v) }

func (q *fifo) pop() int32 {
	v := q.buf[q.head]
	q.head++
	if q.head > 1024 && q.head*2 > len(q.buf) {
		// Compact once the consumed prefix dominates, so memory follows
		// the queue's length, not its history.
		n := copy(q.buf, q.buf[q.head:])
		q.buf = q.buf[:n]
		q.head = 0
	}
	return v
}
