package inbox

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// model is a plain reference implementation of the inbox's documented
// behaviour, with slices and linear scans instead of heaps. TestModel runs
// the Inbox and the model side by side on a long random sequence and
// compares every result, the counts and the full order after every step.
//
// The test uses priorities in 1/16ths, whole seconds and an aging rate of
// 1/64 so that effective priorities are exact and both sides agree on ties.
type model struct {
	opts     Options
	q        []mEntry // queued, unordered
	seq      int
	def      []modelDeferred // oldest first
	inFlight map[string]Entry[int]
	c        Counts
}

type mEntry struct {
	e   Entry[int]
	seq int
}

// rank is the effective priority at t0 up to a constant: with one aging
// rate it orders like the effective priority at any time.
func (m *model) rank(e Entry[int]) float64 {
	return e.Priority - m.opts.Aging*e.Enqueued.Sub(t0).Seconds()
}

func (m *model) urgent(e Entry[int]) bool { return e.Priority >= m.opts.Urgent }

// before reports whether a comes out before b: urgent first, then higher
// effective priority, then first in.
func (m *model) before(a, b mEntry) bool {
	if ua, ub := m.urgent(a.e), m.urgent(b.e); ua != ub {
		return ua
	}
	if ra, rb := m.rank(a.e), m.rank(b.e); ra != rb {
		return ra > rb
	}
	return a.seq < b.seq
}

func (m *model) sorted() []Entry[int] {
	s := slices.Clone(m.q)
	slices.SortFunc(s, func(a, b mEntry) int {
		if m.before(a, b) {
			return -1
		}
		return 1
	})
	out := make([]Entry[int], len(s))
	for i, x := range s {
		out[i] = x.e
	}
	return out
}

func (m *model) find(id string) int {
	return slices.IndexFunc(m.q, func(x mEntry) bool { return x.e.ID == id })
}

func (m *model) held(id string) bool {
	_, inFlight := m.inFlight[id]
	return m.find(id) >= 0 || inFlight || slices.ContainsFunc(m.def, func(d modelDeferred) bool { return d.e.ID == id })
}

func (m *model) deferAt(e Entry[int], now time.Time) {
	if len(m.def) >= m.opts.DeferredCapacity {
		m.def = m.def[1:]
		m.c.Expired++
	}
	m.def = append(m.def, modelDeferred{e: e, until: now.Add(m.opts.DeferredTTL)})
	m.c.Deferrals++
}

// admit states the full rule directly: among the queued entries and the
// newcomer, defer the lowest non-urgent one (on equal rank the newest); only
// if all are urgent, the lowest of all.
func (m *model) admit(e Entry[int], now time.Time) Outcome {
	m.seq++
	n := mEntry{e, m.seq}
	if len(m.q) < m.opts.Capacity {
		m.q = append(m.q, n)
		return Accepted
	}
	cands := append(slices.Clone(m.q), n)
	anyLow := slices.ContainsFunc(cands, func(x mEntry) bool { return !m.urgent(x.e) })
	victim := -1
	for i, x := range cands {
		if anyLow && m.urgent(x.e) {
			continue
		}
		if victim < 0 {
			victim = i
			continue
		}
		v := cands[victim]
		if rx, rv := m.rank(x.e), m.rank(v.e); rx < rv || (rx == rv && x.seq > v.seq) {
			victim = i
		}
	}
	if victim == len(m.q) {
		m.deferAt(e, now)
		return DeferredOnArrival
	}
	m.deferAt(m.q[victim].e, now)
	m.q[victim] = n
	return AcceptedEvicting
}

func (m *model) push(e Entry[int]) (Outcome, error) {
	switch {
	case e.ID == "":
		return 0, ErrEmptyID
	case m.held(e.ID):
		return 0, ErrDuplicate
	}
	m.c.Delivered++
	return m.admit(e, e.Enqueued), nil
}

func (m *model) count(a Account) {
	switch a {
	case Handled:
		m.c.Handled++
	case Declined:
		m.c.Declined++
	case Expired:
		m.c.Expired++
	default:
		m.c.Failed++
	}
}

func (m *model) takeAt(i int) Entry[int] {
	e := m.q[i].e
	m.q = slices.Delete(m.q, i, i+1)
	m.inFlight[e.ID] = e
	return e
}

func (m *model) counts() Counts {
	c := m.c
	c.Queued, c.Deferred, c.InFlight = len(m.q), len(m.def), len(m.inFlight)
	return c
}

func dead(e Entry[int], now time.Time) bool {
	return !e.Deadline.IsZero() && !now.Before(e.Deadline)
}

func (m *model) sweep(now time.Time, maxWait time.Duration) []string {
	var out []string
	m.q = slices.DeleteFunc(m.q, func(x mEntry) bool {
		a := Declined
		switch {
		case dead(x.e, now):
			a = Expired
		case maxWait > 0 && !m.urgent(x.e) && now.Sub(x.e.Enqueued) >= maxWait:
		default:
			return false
		}
		m.count(a)
		out = append(out, x.e.ID+":"+a.String())
		return true
	})
	for len(m.def) > 0 && (!now.Before(m.def[0].until) || dead(m.def[0].e, now)) {
		out = append(out, m.def[0].e.ID+":expired")
		m.def = m.def[1:]
		m.c.Expired++
	}
	return out
}

func (m *model) readmit(now time.Time, limit int) int {
	n := 0
	for len(m.def) > 0 && float64(len(m.q)) < m.opts.LowWater*float64(m.opts.Capacity) && (limit <= 0 || n < limit) {
		d := m.def[0]
		m.def = m.def[1:]
		if !now.Before(d.until) || dead(d.e, now) {
			m.c.Expired++
			continue
		}
		m.seq++
		m.q = append(m.q, mEntry{d.e, m.seq})
		m.c.Readmitted++
		n++
	}
	return n
}

func TestModel(t *testing.T) {
	opts := Options{
		Capacity:         8,
		Urgent:           0.75,
		Aging:            1.0 / 64,
		DeferredCapacity: 6,
		DeferredTTL:      5 * time.Minute,
		LowWater:         0.5,
	}
	q := New[int](opts)
	m := &model{opts: q.Options(), inFlight: make(map[string]Entry[int])}
	rng := rand.New(rand.NewPCG(2025, 11))
	now := t0
	next := 0
	closed := false

	// anyID picks an ID the model knows (queued, in flight or deferred), or
	// an unknown one.
	anyID := func() string {
		var all []string
		for _, x := range m.q {
			all = append(all, x.e.ID)
		}
		for id := range m.inFlight {
			all = append(all, id)
		}
		for _, d := range m.def {
			all = append(all, d.e.ID)
		}
		slices.Sort(all) // map order must not leak into the sequence
		if len(all) == 0 || rng.IntN(8) == 0 {
			return "unknown"
		}
		return all[rng.IntN(len(all))]
	}
	inFlightEntry := func() (Entry[int], bool) {
		var ids []string
		for id := range m.inFlight {
			ids = append(ids, id)
		}
		if len(ids) == 0 {
			return Entry[int]{}, false
		}
		slices.Sort(ids)
		return m.inFlight[ids[rng.IntN(len(ids))]], true
	}
	sameEntry := func(step int, op string, got, want Entry[int], gotOK, wantOK bool) {
		t.Helper()
		if gotOK != wantOK || got != want {
			t.Fatalf("step %d %s: inbox %+v %v, model %+v %v", step, op, got, gotOK, want, wantOK)
		}
	}

	const steps = 20000
	for step := range steps {
		var op string
		switch r := rng.IntN(100); {
		case r < 35:
			op = "push"
			next++
			e := Entry[int]{
				ID:       fmt.Sprint("e", next),
				Priority: float64(rng.IntN(17)) / 16,
				Enqueued: now.Add(-time.Duration(rng.IntN(30)) * time.Second),
				Value:    next,
			}
			if rng.IntN(4) == 0 {
				e.Deadline = now.Add(time.Duration(rng.IntN(120)) * time.Second)
			}
			switch rng.IntN(20) {
			case 0:
				e.ID = anyID() // most likely a duplicate
			case 1:
				e.ID = ""
			}
			gotOut, gotErr := q.Push(e)
			var wantOut Outcome
			var wantErr error
			switch {
			case closed && e.ID != "":
				wantErr = ErrClosed
			default:
				wantOut, wantErr = m.push(e)
			}
			if gotOut != wantOut || !errors.Is(gotErr, wantErr) {
				t.Fatalf("step %d: Push(%+v) = %v, %v; model %v, %v", step, e, gotOut, gotErr, wantOut, wantErr)
			}
		case r < 47:
			op = "take top"
			got, gotOK := q.TakeTop()
			var want Entry[int]
			wantOK := len(m.q) > 0
			if wantOK {
				want = m.takeAt(m.find(m.sorted()[0].ID))
			}
			sameEntry(step, op, got, want, gotOK, wantOK)
		case r < 52:
			op = "take top if"
			accept := func(e Entry[int]) bool { return e.Priority >= 0.5 }
			got, gotOK := q.TakeTopIf(accept)
			var want Entry[int]
			wantOK := len(m.q) > 0 && accept(m.sorted()[0])
			if wantOK {
				want = m.takeAt(m.find(m.sorted()[0].ID))
			}
			sameEntry(step, op, got, want, gotOK, wantOK)
		case r < 57:
			op = "take by id"
			id := anyID()
			got, gotOK := q.Take(id)
			var want Entry[int]
			i := m.find(id)
			if i >= 0 {
				want = m.takeAt(i)
			}
			sameEntry(step, op, got, want, gotOK, i >= 0)
		case r < 59:
			op = "take where"
			lo := float64(rng.IntN(16)) / 16
			match := func(e Entry[int]) bool { return e.Priority >= lo && e.Priority < lo+0.25 }
			got := ids(q.TakeWhere(match))
			var want []string
			for _, e := range m.sorted() {
				if match(e) {
					want = append(want, m.takeAt(m.find(e.ID)).ID)
				}
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("step %d: TakeWhere = %v, model %v", step, got, want)
			}
		case r < 75:
			op = "finish"
			id := anyID()
			if e, ok := inFlightEntry(); ok && rng.IntN(4) != 0 {
				id = e.ID
			}
			a := Account(rng.IntN(5))
			_, wantOK := m.inFlight[id]
			if wantOK {
				delete(m.inFlight, id)
				m.count(a)
			}
			if gotOK := q.Finish(id, a); gotOK != wantOK {
				t.Fatalf("step %d: Finish(%q) = %v, model %v", step, id, gotOK, wantOK)
			}
		case r < 80:
			op = "requeue"
			e, ok := inFlightEntry()
			if !ok || rng.IntN(8) == 0 {
				e = Entry[int]{ID: anyID(), Enqueued: now}
			}
			_, wantOK := m.inFlight[e.ID]
			if wantOK {
				delete(m.inFlight, e.ID)
				m.admit(e, now)
			}
			if gotOK := q.Requeue(e, now); gotOK != wantOK {
				t.Fatalf("step %d: Requeue(%q) = %v, model %v", step, e.ID, gotOK, wantOK)
			}
		case r < 83:
			op = "resolve"
			id := anyID()
			a := Account(rng.IntN(4))
			i := m.find(id)
			if i >= 0 {
				m.q = slices.Delete(m.q, i, i+1)
				m.count(a)
			}
			if gotOK := q.Resolve(id, a); gotOK != (i >= 0) {
				t.Fatalf("step %d: Resolve(%q) = %v, model %v", step, id, gotOK, i >= 0)
			}
		case r < 86:
			op = "sweep"
			maxWait := []time.Duration{0, 30 * time.Second, 90 * time.Second}[rng.IntN(3)]
			var got []string
			for _, r := range q.Sweep(now, maxWait, nil) {
				got = append(got, r.Entry.ID+":"+r.Account.String())
			}
			want := m.sweep(now, maxWait)
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("step %d: Sweep = %v, model %v", step, got, want)
			}
		case r < 90:
			op = "readmit"
			limit := rng.IntN(4)
			if got, want := q.Readmit(now, limit), m.readmit(now, limit); got != want {
				t.Fatalf("step %d: Readmit(%d) = %d, model %d", step, limit, got, want)
			}
		case r < 99:
			op = "tick"
			now = now.Add(time.Duration(rng.IntN(20)) * time.Second)
		default:
			op = "peek"
			k := rng.IntN(5)
			want := m.sorted()
			if got := ids(q.Peek(k, nil)); !slices.Equal(got, ids(want[:min(k, len(want))])) {
				t.Fatalf("step %d: Peek(%d) = %v, model %v", step, k, got, ids(want))
			}
		}
		if !closed && step == steps*19/20 {
			q.Close()
			closed = true
		}

		c := q.Counts()
		if !c.Balanced() {
			t.Fatalf("step %d (%s): counts do not balance: %+v", step, op, c)
		}
		if want := m.counts(); c != want {
			t.Fatalf("step %d (%s): counts %+v, model %+v", step, op, c, want)
		}
		if got, want := ids(q.Peek(q.Len(), nil)), ids(m.sorted()); !slices.Equal(got, want) {
			t.Fatalf("step %d (%s): order %v, model %v", step, op, got, want)
		}
		if got, want := q.HasUrgent(), slices.ContainsFunc(m.q, func(x mEntry) bool { return m.urgent(x.e) }); got != want {
			t.Fatalf("step %d (%s): HasUrgent %v, model %v", step, op, got, want)
		}
	}
	c := q.Counts()
	t.Logf("after %d steps: %+v", steps, c)
	// The sequence must have exercised every path, or it proves little.
	if c.Handled == 0 || c.Declined == 0 || c.Expired == 0 || c.Failed == 0 || c.Deferrals == 0 || c.Readmitted == 0 {
		t.Errorf("the random sequence missed an account: %+v", c)
	}
}

// modelDeferred is the reference model's deferred entry.
type modelDeferred struct {
	e     Entry[int]
	until time.Time
}
