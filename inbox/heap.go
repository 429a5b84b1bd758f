package inbox

import "time"

// node is one queued entry. It sits in the max-heap and in exactly one of
// the two min-heaps, and remembers its index in each so that removal by ID
// is O(log n).
type node[T any] struct {
	e      Entry[T]
	urgent bool // at or above the urgent line: ahead of every non-urgent entry
	key    float64
	seq    uint64
	imax   int
	imin   int
}

type side uint8

const (
	sideMax side = iota
	sideMin
)

// heap is a binary heap of nodes. The max side orders urgent entries first,
// then by key descending, then by arrival (first in, first out); the min
// sides hold one class each and order by key ascending, newest first on
// equal keys, so the newest of the lowest is the first to be deferred.
type heap[T any] struct {
	side  side
	nodes []*node[T]
	seq   uint64
}

func (h *heap[T]) len() int      { return len(h.nodes) }
func (h *heap[T]) top() *node[T] { return h.nodes[0] }

func (h *heap[T]) less(a, b *node[T]) bool {
	if h.side == sideMax {
		if a.urgent != b.urgent {
			return a.urgent
		}
		if a.key != b.key {
			return a.key > b.key
		}
		return a.seq < b.seq
	}
	if a.key != b.key {
		return a.key < b.key
	}
	return a.seq > b.seq
}

func (h *heap[T]) setIndex(n *node[T], i int) {
	if h.side == sideMax {
		n.imax = i
	} else {
		n.imin = i
	}
}

func (h *heap[T]) index(n *node[T]) int {
	if h.side == sideMax {
		return n.imax
	}
	return n.imin
}

func (h *heap[T]) push(n *node[T]) {
	if h.side == sideMax {
		h.seq++
		n.seq = h.seq
	}
	h.nodes = append(h.nodes, n)
	i := len(h.nodes) - 1
	h.setIndex(n, i)
	h.up(i)
}

func (h *heap[T]) remove(n *node[T]) {
	i := h.index(n)
	last := len(h.nodes) - 1
	if i != last {
		h.swap(i, last)
	}
	h.nodes[last] = nil
	h.nodes = h.nodes[:last]
	if i != last {
		if !h.down(i) {
			h.up(i)
		}
	}
	if cap(h.nodes) > 64 && len(h.nodes) < cap(h.nodes)/4 {
		// Give memory back after a burst.
		h.nodes = append([]*node[T](nil), h.nodes...)
	}
}

func (h *heap[T]) swap(i, j int) {
	h.nodes[i], h.nodes[j] = h.nodes[j], h.nodes[i]
	h.setIndex(h.nodes[i], i)
	h.setIndex(h.nodes[j], j)
}

func (h *heap[T]) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !h.less(h.nodes[i], h.nodes[p]) {
			return
		}
		h.swap(i, p)
		i = p
	}
}

func (h *heap[T]) down(i int) bool {
	start := i
	n := len(h.nodes)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		c := l
		if r := l + 1; r < n && h.less(h.nodes[r], h.nodes[l]) {
			c = r
		}
		if !h.less(h.nodes[c], h.nodes[i]) {
			break
		}
		h.swap(i, c)
		i = c
	}
	return i > start
}

// frontier is a small max-heap of indices into a max-heap's node slice,
// used by Peek to list the top k without disturbing the inbox.
type frontier[T any] struct{ idx []int }

func (f *frontier[T]) len() int { return len(f.idx) }

func (f *frontier[T]) before(nodes []*node[T], a, b int) bool {
	x, y := nodes[a], nodes[b]
	if x.urgent != y.urgent {
		return x.urgent
	}
	if x.key != y.key {
		return x.key > y.key
	}
	return x.seq < y.seq
}

func (f *frontier[T]) push(nodes []*node[T], i int) {
	f.idx = append(f.idx, i)
	j := len(f.idx) - 1
	for j > 0 {
		p := (j - 1) / 2
		if !f.before(nodes, f.idx[j], f.idx[p]) {
			break
		}
		f.idx[j], f.idx[p] = f.idx[p], f.idx[j]
		j = p
	}
}

func (f *frontier[T]) pop(nodes []*node[T]) int {
	top := f.idx[0]
	last := len(f.idx) - 1
	f.idx[0] = f.idx[last]
	f.idx = f.idx[:last]
	j := 0
	for {
		l := 2*j + 1
		if l >= len(f.idx) {
			break
		}
		c := l
		if r := l + 1; r < len(f.idx) && f.before(nodes, f.idx[r], f.idx[l]) {
			c = r
		}
		if !f.before(nodes, f.idx[c], f.idx[j]) {
			break
		}
		f.idx[j], f.idx[c] = f.idx[c], f.idx[j]
		j = c
	}
	return top
}

// deferredEntry is an entry in the deferred store and the time it expires.
type deferredEntry[T any] struct {
	e     Entry[T]
	until time.Time
}

// ring is the deferred store: first in, first out, with an ID set so that
// duplicates are refused. Entries are deferred in time order, so the front
// is always the first to expire.
type ring[T any] struct {
	buf  []deferredEntry[T]
	head int
	n    int
	ids  map[string]struct{}
}

func (r *ring[T]) len() int { return r.n }

func (r *ring[T]) has(id string) bool {
	_, ok := r.ids[id]
	return ok
}

func (r *ring[T]) pushBack(d deferredEntry[T]) {
	if r.n == len(r.buf) {
		nb := make([]deferredEntry[T], max(8, 2*len(r.buf)))
		for i := range r.n {
			nb[i] = r.buf[(r.head+i)%len(r.buf)]
		}
		r.buf, r.head = nb, 0
	}
	r.buf[(r.head+r.n)%len(r.buf)] = d
	r.n++
	if r.ids == nil {
		r.ids = make(map[string]struct{})
	}
	r.ids[d.e.ID] = struct{}{}
}

func (r *ring[T]) front() deferredEntry[T] { return r.buf[r.head] }

func (r *ring[T]) at(i int) deferredEntry[T] { return r.buf[(r.head+i)%len(r.buf)] }

func (r *ring[T]) popFront() deferredEntry[T] {
	d := r.buf[r.head]
	var zero deferredEntry[T]
	r.buf[r.head] = zero
	r.head = (r.head + 1) % len(r.buf)
	r.n--
	delete(r.ids, d.e.ID)
	if r.n == 0 {
		r.buf, r.head, r.ids = nil, 0, nil
	}
	return d
}
