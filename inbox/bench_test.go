package inbox

import (
	"fmt"
	"testing"
)

// The two benchmarks run the same Mixed workload: capacity 1000 (the seed's
// maxSize) and a steady depth of 1000, so half the arrivals find the queue
// full, plus a half-full variant where nothing is evicted. One op is one
// arrival and one departure.

var benchDepths = []int{1000, 500}

func BenchmarkInbox(b *testing.B) {
	for _, depth := range benchDepths {
		b.Run(fmt.Sprintf("depth=%d", depth), func(b *testing.B) {
			q := New[int](Options{Capacity: DefaultCapacity})
			push := func(e Entry[int]) {
				if _, err := q.Push(e); err != nil {
					b.Fatal(err)
				}
			}
			take := func() bool {
				e, ok := q.TakeTop()
				if ok {
					q.Finish(e.ID, Handled)
				}
				return ok
			}
			m := NewMixed(depth, 1)
			m.Fill(push)
			b.ReportAllocs()
			for b.Loop() {
				m.Step(push, take)
			}
			b.StopTimer()
			if c := q.Counts(); !c.Balanced() {
				b.Fatalf("counts do not balance: %+v", c)
			}
		})
	}
}

func BenchmarkSortedSliceBaseline(b *testing.B) {
	for _, depth := range benchDepths {
		b.Run(fmt.Sprintf("depth=%d", depth), func(b *testing.B) {
			s := &SortedSlice[int]{Capacity: DefaultCapacity}
			take := func() bool {
				_, ok := s.TakeTop()
				return ok
			}
			m := NewMixed(depth, 1)
			m.Fill(s.Push)
			b.ReportAllocs()
			for b.Loop() {
				m.Step(s.Push, take)
			}
		})
	}
}
