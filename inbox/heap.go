package inbox

import (
	"math/bits"
	"time"
)

// node is one queued (or in-flight) entry. It remembers its slot in the
// heap so that removal by ID is O(log n).
type node[T any] struct {
	e        Entry[T]
	urgent   bool // at or above the urgent line: above every non-urgent entry
	flight   bool // taken, not yet finished
	deferred bool // in the deferred store
	key      float64
	seq      uint64 // arrival order: first in, first out on equal keys
	idx      int
}

// slot holds a node's sort key inline, so comparisons never chase a
// pointer.
type slot[T any] struct {
	urgent bool
	key    float64
	seq    uint64
	n      *node[T]
}

// above is the inbox's total order: urgent first, then higher key, then
// earlier arrival. The highest entry is taken first; the lowest (the newest
// of the lowest non-urgent ones, if any) is the first to be deferred.
func above[T any](a, b *slot[T]) bool {
	if a.urgent != b.urgent {
		return a.urgent
	}
	if a.key != b.key {
		return a.key > b.key
	}
	return a.seq < b.seq
}

// mmheap is a min-max heap: even levels hold minima of their subtrees, odd
// levels maxima, so both the entry to take (the maximum) and the entry to
// defer (the minimum) are found at the top, and push, remove-at and both
// pops are O(log n) on a single array.
type mmheap[T any] struct {
	s []slot[T]
}

func (h *mmheap[T]) len() int { return len(h.s) }

func isMinLevel(i int) bool {
	return bits.Len(uint(i+1))%2 == 1 // level = bits.Len(i+1)-1; even levels hold minima
}

func (h *mmheap[T]) set(i int, s slot[T]) {
	h.s[i] = s
	s.n.idx = i
}

func (h *mmheap[T]) swap(i, j int) {
	h.s[i], h.s[j] = h.s[j], h.s[i]
	h.s[i].n.idx = i
	h.s[j].n.idx = j
}

// maxIndex is the slot of the highest entry.
func (h *mmheap[T]) maxIndex() int {
	switch len(h.s) {
	case 1:
		return 0
	case 2:
		return 1
	}
	if above(&h.s[2], &h.s[1]) {
		return 2
	}
	return 1
}

func (h *mmheap[T]) max() *node[T] { return h.s[h.maxIndex()].n }
func (h *mmheap[T]) min() *node[T] { return h.s[0].n }

func (h *mmheap[T]) push(n *node[T]) {
	h.s = append(h.s, slot[T]{urgent: n.urgent, key: n.key, seq: n.seq, n: n})
	i := len(h.s) - 1
	n.idx = i
	h.up(i)
}

// remove takes n out of the heap.
func (h *mmheap[T]) remove(n *node[T]) {
	i := n.idx
	last := len(h.s) - 1
	if i != last {
		h.set(i, h.s[last])
	}
	h.s[last] = slot[T]{}
	h.s = h.s[:last]
	if i < last {
		h.fix(i)
	}
	if cap(h.s) > 64 && len(h.s) < cap(h.s)/4 {
		h.s = append([]slot[T](nil), h.s...) // give memory back after a burst
	}
}

// fix restores the heap after the entry at i was replaced by one from the
// end. It may belong above its parent: then the two swap, the parent's old
// entry sinks through i's subtree (it bounded that subtree from the other
// side) and the moved entry rises; otherwise it sinks or rises on its own
// levels.
func (h *mmheap[T]) fix(i int) {
	moved := h.s[i].n
	if i > 0 {
		p := (i - 1) / 2
		if isMinLevel(i) && above(&h.s[i], &h.s[p]) {
			h.swap(i, p)
			h.downMin(i)
			h.upMax(p)
			return
		}
		if !isMinLevel(i) && above(&h.s[p], &h.s[i]) {
			h.swap(i, p)
			h.downMax(i)
			h.upMin(p)
			return
		}
	}
	h.down(i)
	if moved.idx == i {
		if isMinLevel(i) {
			h.upMin(i)
		} else {
			h.upMax(i)
		}
	}
}

func (h *mmheap[T]) up(i int) {
	if i == 0 {
		return
	}
	p := (i - 1) / 2
	if isMinLevel(i) {
		if above(&h.s[i], &h.s[p]) {
			h.swap(i, p)
			h.upMax(p)
		} else {
			h.upMin(i)
		}
		return
	}
	if above(&h.s[p], &h.s[i]) {
		h.swap(i, p)
		h.upMin(p)
	} else {
		h.upMax(i)
	}
}

func (h *mmheap[T]) upMin(i int) {
	for i > 2 {
		g := ((i-1)/2 - 1) / 2
		if !above(&h.s[g], &h.s[i]) {
			return
		}
		h.swap(i, g)
		i = g
	}
}

func (h *mmheap[T]) upMax(i int) {
	for i > 2 {
		g := ((i-1)/2 - 1) / 2
		if !above(&h.s[i], &h.s[g]) {
			return
		}
		h.swap(i, g)
		i = g
	}
}

func (h *mmheap[T]) down(i int) {
	if isMinLevel(i) {
		h.downMin(i)
	} else {
		h.downMax(i)
	}
}

// extreme returns the index of the lowest (or highest) among the children
// and grandchildren of i, and whether it is a grandchild; -1 if none.
func (h *mmheap[T]) extreme(i int, highest bool) (int, bool) {
	n := len(h.s)
	c := 2*i + 1
	if c >= n {
		return -1, false
	}
	best := c
	better := func(j, k int) bool { // is j more extreme than k
		if highest {
			return above(&h.s[j], &h.s[k])
		}
		return above(&h.s[k], &h.s[j])
	}
	if c+1 < n && better(c+1, best) {
		best = c + 1
	}
	g := 2*c + 1
	if g >= n {
		return best, false
	}
	grand := false
	for j := g; j < g+4 && j < n; j++ {
		if better(j, best) {
			best, grand = j, true
		}
	}
	return best, grand
}

func (h *mmheap[T]) downMin(i int) {
	for {
		m, grand := h.extreme(i, false)
		if m < 0 || !above(&h.s[i], &h.s[m]) {
			return
		}
		h.swap(i, m)
		if !grand {
			return
		}
		if p := (m - 1) / 2; above(&h.s[m], &h.s[p]) {
			h.swap(m, p)
		}
		i = m
	}
}

func (h *mmheap[T]) downMax(i int) {
	for {
		m, grand := h.extreme(i, true)
		if m < 0 || !above(&h.s[m], &h.s[i]) {
			return
		}
		h.swap(i, m)
		if !grand {
			return
		}
		if p := (m - 1) / 2; above(&h.s[p], &h.s[m]) {
			h.swap(m, p)
		}
		i = m
	}
}

// topK appends the k highest nodes, highest first, without changing the
// heap. Every node's value is bounded above by its nearest max-level
// ancestor, so a frontier that starts at the top three slots and, on taking
// a max-level slot, adds its children and grandchildren, yields the nodes in
// order in O(k log k).
func (h *mmheap[T]) topK(k int, visit func(*node[T])) {
	if k <= 0 || len(h.s) == 0 {
		return
	}
	var fr frontier[T]
	for i := 0; i < 3 && i < len(h.s); i++ {
		fr.push(h.s, i)
	}
	for got := 0; got < k && fr.len() > 0; got++ {
		i := fr.pop(h.s)
		visit(h.s[i].n)
		if i == 0 || isMinLevel(i) {
			continue
		}
		c := 2*i + 1
		for _, j := range [6]int{c, c + 1, 2*c + 1, 2*c + 2, 2*(c+1) + 1, 2*(c+1) + 2} {
			if j < len(h.s) {
				fr.push(h.s, j)
			}
		}
	}
}

// frontier is a small max-heap of slot indices, used by topK.
type frontier[T any] struct{ idx []int }

func (f *frontier[T]) len() int { return len(f.idx) }

func (f *frontier[T]) push(s []slot[T], i int) {
	f.idx = append(f.idx, i)
	j := len(f.idx) - 1
	for j > 0 {
		p := (j - 1) / 2
		if !above(&s[f.idx[j]], &s[f.idx[p]]) {
			break
		}
		f.idx[j], f.idx[p] = f.idx[p], f.idx[j]
		j = p
	}
}

func (f *frontier[T]) pop(s []slot[T]) int {
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
		if r := l + 1; r < len(f.idx) && above(&s[f.idx[r]], &s[f.idx[l]]) {
			c = r
		}
		if !above(&s[f.idx[c]], &s[f.idx[j]]) {
			break
		}
		f.idx[j], f.idx[c] = f.idx[c], f.idx[j]
		j = c
	}
	return top
}

// deferredEntry is a node in the deferred store and the time it expires.
type deferredEntry[T any] struct {
	n     *node[T]
	until time.Time
}

// ring is the deferred store: first in, first out. Its nodes stay in the
// inbox's ID index, so duplicates are refused without a second map.
type ring[T any] struct {
	buf  []deferredEntry[T]
	head int
	n    int
}

func (r *ring[T]) len() int { return r.n }

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
}

func (r *ring[T]) front() deferredEntry[T] { return r.buf[r.head] }

func (r *ring[T]) at(i int) deferredEntry[T] { return r.buf[(r.head+i)%len(r.buf)] }

func (r *ring[T]) popFront() deferredEntry[T] {
	d := r.buf[r.head]
	r.buf[r.head] = deferredEntry[T]{}
	r.head = (r.head + 1) % len(r.buf)
	r.n--
	if r.n == 0 {
		r.buf, r.head = nil, 0
	}
	return d
}
