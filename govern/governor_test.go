package govern

import (
	"sync"
	"testing"
	"testing/synctest"
)

func TestGovernorZeroAndNilAreNominal(t *testing.T) {
	var zero Governor
	var nilg *Governor
	for name, g := range map[string]*Governor{"zero value": &zero, "nil": nilg, "new": New(Policy{})} {
		t.Run(name+" is nominal and not idle", func(t *testing.T) {
			if s := g.State(); s != Nominal {
				t.Errorf("State() = %v, want nominal", s)
			}
			if a := g.Adjust(); a != Nominal.Adjust() {
				t.Errorf("Adjust() = %+v, want %+v", a, Nominal.Adjust())
			}
			if g.Idle() {
				t.Error("Idle() before any observation")
			}
			if in, pr := g.Last(); in != (Inputs{}) || pr != 0 {
				t.Errorf("Last() = %+v, %v; want zero", in, pr)
			}
		})
	}
}

func TestGovernorObserve(t *testing.T) {
	g := New(Policy{})
	steps := []struct {
		name    string
		in      Inputs
		state   Thermal
		catchUp bool
	}{
		{"quiet system catches up", Inputs{Load: 0.1}, Nominal, true},
		{"full inboxes on a cool machine still catch up", Inputs{Load: 0.9}, Nominal, true},
		{"busy cores stop catch-up", Inputs{Duty: 0.4}, Nominal, false},
		{"duty at the ceiling is serious", Inputs{Duty: 0.7}, Serious, false},
		{"pressure gone returns to nominal at once and catches up", Inputs{}, Nominal, true},
		{"and stays there", Inputs{}, Nominal, true},
		{"heat jumps to critical at once", Inputs{Duty: 0.7, InFlight: 6, Cores: 2}, Critical, false},
	}
	for _, st := range steps {
		got := g.Observe(st.in)
		if got != st.state || g.State() != st.state {
			t.Fatalf("%s: Observe = %v, State = %v; want %v", st.name, got, g.State(), st.state)
		}
		a := g.Adjust()
		want := st.state.Adjust()
		want.CatchUp = st.catchUp
		if a != want || g.Idle() != st.catchUp {
			t.Fatalf("%s: Adjust = %+v, Idle = %v; want %+v", st.name, a, g.Idle(), want)
		}
		if in, _ := g.Last(); in != st.in {
			t.Fatalf("%s: Last inputs = %+v, want %+v", st.name, in, st.in)
		}
	}
	if _, pr := g.Last(); pr != 1.5 {
		t.Errorf("last pressure = %v, want 1.5 (six handlers on two cores)", pr)
	}
}

func TestGovernorUsesItsPolicy(t *testing.T) {
	g := New(Policy{Ceiling: 0.5})
	if s := g.Observe(Inputs{Duty: 0.5}); s != Serious {
		t.Errorf("duty 0.5 under ceiling 0.5: %v, want serious", s)
	}
	if g.Policy().Ceiling != 0.5 {
		t.Errorf("Policy() = %+v", g.Policy())
	}
}

func TestGovernorReadersSeeConsistentSnapshots(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := New(Policy{})
		inputs := []Inputs{{}, {Duty: 0.7}, {Duty: 2}, {Load: 0.8}, {}}
		var wg sync.WaitGroup
		wg.Go(func() {
			for range 200 {
				for _, in := range inputs {
					g.Observe(in)
				}
			}
		})
		for range 4 {
			wg.Go(func() {
				for range 1000 {
					a := g.Adjust()
					s := g.State()
					base := a
					base.CatchUp = false
					ok := false
					for st := Nominal; st <= Critical; st++ {
						ok = ok || base == st.Adjust()
					}
					if !ok || (a.CatchUp && base != Nominal.Adjust()) || !(s >= Nominal && s <= Critical) {
						t.Errorf("torn read: %+v in %v", a, s)
						return
					}
				}
			})
		}
		wg.Wait()
	})
}

func BenchmarkGovernorAdjust(b *testing.B) {
	g := New(Policy{})
	g.Observe(Inputs{Duty: 0.7})
	b.ReportAllocs()
	for b.Loop() {
		_ = g.Adjust()
	}
}
