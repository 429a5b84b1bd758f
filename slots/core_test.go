package slots

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func at(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

func TestClassesAreServedInOrder(t *testing.T) {
	c := New(1)
	hold, ok := c.Enqueue(at(0), Call{Persona: "a", Class: Background})
	if !ok {
		t.Fatal("a free slot was not given")
	}
	bg, _ := c.Enqueue(at(1), Call{Persona: "b", Class: Background})
	pp, _ := c.Enqueue(at(2), Call{Persona: "c", Class: Persona})
	hu, _ := c.Enqueue(at(3), Call{Persona: "d", Class: Human})
	ad, _ := c.Enqueue(at(4), Call{Persona: "e", Class: Addressed})
	want := []ID{ad, hu, pp, bg}
	prev := hold
	for i, w := range want {
		got := c.Release(at(float64(10+i)), prev)
		if len(got) != 1 || got[0] != w {
			t.Fatalf("release %d started %v, want %v", i, got, w)
		}
		prev = w
	}
	st := c.Stats()
	if st.Wait[Addressed] != 6*time.Second || st.Started[Background] != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestWithinAClassTheLeastServedPersonaGoesFirst(t *testing.T) {
	c := New(1)
	// a holds the slot for 10 s, then both a and b wait: b has had nothing.
	first, _ := c.Enqueue(at(0), Call{Persona: "a", Class: Human})
	a2, _ := c.Enqueue(at(1), Call{Persona: "a", Class: Human})
	b1, _ := c.Enqueue(at(2), Call{Persona: "b", Class: Human})
	if got := c.Release(at(10), first); len(got) != 1 || got[0] != b1 {
		t.Fatalf("started %v, want b's call %v before a's older %v", got, b1, a2)
	}
	// Equal service: first come first served.
	c2 := New(1)
	h, _ := c2.Enqueue(at(0), Call{Persona: "x", Class: Human})
	y, _ := c2.Enqueue(at(1), Call{Persona: "y", Class: Human})
	z, _ := c2.Enqueue(at(2), Call{Persona: "z", Class: Human})
	if got := c2.Release(at(0), h); got[0] != y {
		t.Fatalf("started %v, want the earlier %v (not %v)", got, y, z)
	}
}

func TestIdlingBanksNoCredit(t *testing.T) {
	c := New(1)
	// a works alone for 100 s.
	prev, _ := c.Enqueue(at(0), Call{Persona: "a", Class: Human})
	for i := 1; i <= 10; i++ {
		next, _ := c.Enqueue(at(float64(10*i-1)), Call{Persona: "a", Class: Human})
		c.Release(at(float64(10*i)), prev)
		prev = next
	}
	// b arrives after sitting idle: it is lifted to a's virtual time, so it
	// does not hold the slot for 100 s before a gets it back.
	b, _ := c.Enqueue(at(101), Call{Persona: "b", Class: Human})
	if c.Received("b") < c.Received("a")-1e-9 {
		t.Fatalf("b's virtual time %v below a's %v: idle credit", c.Received("b"), c.Received("a"))
	}
	a, _ := c.Enqueue(at(102), Call{Persona: "a", Class: Human})
	started := c.Release(at(110), prev)
	if started[0] != b {
		t.Fatalf("started %v, want b %v", started, b)
	}
	if started = c.Release(at(120), b); started[0] != a {
		t.Fatalf("after b's one call, a's waiting call should run, started %v", started)
	}
}

func TestCancelAndWaitingAndOpen(t *testing.T) {
	c := New(1)
	if !c.Open(Persona) {
		t.Fatal("an empty core is not open")
	}
	r, _ := c.Enqueue(at(0), Call{Persona: "a", Class: Persona, Key: "room1"})
	w1, _ := c.Enqueue(at(1), Call{Persona: "b", Class: Human, Key: "room1"})
	w2, _ := c.Enqueue(at(1), Call{Persona: "b", Class: Human, Key: "room2"})
	if c.Open(Addressed) {
		t.Fatal("open with every slot held")
	}
	if got := c.Waiting("b", "room1"); len(got) != 1 || got[0] != w1 {
		t.Fatalf("waiting %v", got)
	}
	if !c.Cancel(w1) || c.Cancel(w1) {
		t.Fatal("cancel of a waiting call should succeed once")
	}
	if got := c.Release(at(2), r); len(got) != 1 || got[0] != w2 {
		t.Fatalf("the cancelled call took the slot: started %v", got)
	}
	if c.Stats().Cancelled[Human] != 1 {
		t.Fatalf("stats %+v", c.Stats())
	}
}

func TestVictimIsTheLowestClassThatStartedLast(t *testing.T) {
	c := New(3)
	c.Enqueue(at(0), Call{Persona: "a", Class: Addressed})
	h, _ := c.Enqueue(at(1), Call{Persona: "b", Class: Human})
	p1, _ := c.Enqueue(at(2), Call{Persona: "c", Class: Persona})
	if _, ok := c.Victim(); ok {
		t.Fatal("a victim with nothing addressed waiting")
	}
	c.Release(at(3), p1)
	p2, _ := c.Enqueue(at(4), Call{Persona: "d", Class: Persona})
	c.Enqueue(at(5), Call{Persona: "e", Class: Addressed})
	if v, ok := c.Victim(); !ok || v != p2 {
		t.Fatalf("victim %v %v, want the persona call %v (not the human %v)", v, ok, p2, h)
	}
	c.Release(at(6), p2)
	if v, ok := c.Victim(); ok {
		t.Fatalf("victim %v once the addressed call has its slot", v)
	}
}
