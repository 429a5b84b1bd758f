package inbox

import "slices"

// SortedSlice is the seed's PersonaInbox, for comparison only: a slice kept
// sorted by static priority, highest first, re-sorted on every Push; when
// full the lowest entry is dropped (lost, not deferred); TakeTop pops the
// front. There is no aging, no deferred store and no accounting. It exists
// so that benchmarks, here and in `persona bench`, measure the Inbox against
// what the seed does (autonomous-persona-architecture.md, PersonaInbox.enqueue).
//
// The zero value is an empty SortedSlice of DefaultCapacity. It is not safe
// for concurrent use.
type SortedSlice[T any] struct {
	// Capacity bounds the entries held (0: DefaultCapacity, the seed's
	// maxSize).
	Capacity int

	q       []Entry[T]
	dropped int
}

// byPriorityDesc is the seed's comparator, b.priority - a.priority.
func byPriorityDesc[T any](a, b Entry[T]) int {
	switch {
	case a.Priority > b.Priority:
		return -1
	case a.Priority < b.Priority:
		return 1
	}
	return 0
}

// Push adds e exactly as the seed's enqueue does: if full, sort and drop the
// last (lowest) entry; then append and sort again. The sort is stable, as
// JavaScript's Array.prototype.sort is, so equal priorities stay first in,
// first out.
func (s *SortedSlice[T]) Push(e Entry[T]) {
	capacity := s.Capacity
	if capacity <= 0 {
		capacity = DefaultCapacity
	}
	if len(s.q) >= capacity {
		slices.SortStableFunc(s.q, byPriorityDesc[T])
		s.q[len(s.q)-1] = Entry[T]{}
		s.q = s.q[:len(s.q)-1]
		s.dropped++
	}
	s.q = append(s.q, e)
	slices.SortStableFunc(s.q, byPriorityDesc[T])
}

// TakeTop removes and returns the front (highest priority) entry, like the
// seed's pop (queue.shift()).
func (s *SortedSlice[T]) TakeTop() (Entry[T], bool) {
	if len(s.q) == 0 {
		var zero Entry[T]
		return zero, false
	}
	e := s.q[0]
	s.q[0] = Entry[T]{}
	s.q = s.q[1:]
	return e, true
}

// Len returns the number of entries held.
func (s *SortedSlice[T]) Len() int { return len(s.q) }

// Dropped returns how many entries Push dropped because the slice was full:
// work the seed loses silently and the Inbox defers instead.
func (s *SortedSlice[T]) Dropped() int { return s.dropped }
