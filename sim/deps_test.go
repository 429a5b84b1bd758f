package sim

import (
	"testing"
	"time"

	"github.com/personaos/persona/deps"
)

// chainScenario is s -> m -> c with a per-stage timeout shorter than the
// source's turn (it waits for the 3 s decision window) but longer than the
// dependents' (they reach the decision after it closed), so the source
// stalls on most messages while the middle stage finishes in time. Some
// messages are the personas' own.
func chainScenario() *Scenario {
	h := Handle{Median: time.Second, P95: 2 * time.Second}
	return &Scenario{
		Name: "chain", Seed: 1, Duration: 30 * time.Minute, Cores: 2,
		Coordination: Coordination{MinWindow: 3 * time.Second, MaxWindow: 3 * time.Second},
		DepsTimeout:  time.Second,
		Personas: []PersonaSpec{
			{Name: "s", Expertise: []string{"go"}, Handle: h},
			{Name: "m", Expertise: []string{"go"}, Handle: h, WaitsFor: []string{"s"}},
			{Name: "c", Expertise: []string{"go"}, Handle: h, WaitsFor: []string{"m"}},
		},
		Traffic: Traffic{Rate: 2.0 / 60, Rooms: 2, Human: 0.7, Topics: []Topic{{"go", 0.5}}, RepliesFeedBack: true},
	}
}

// The status a stage was released with reaches the stages after it, as in
// the runtime's tracker: when the source stalls, the middle stage is
// released incomplete, and so is the last one although the middle stage
// then finished normally.
func TestPipelineCarriesStatusDownTheChain(t *testing.T) {
	r, _ := simulated(t, chainScenario())
	m, c := r.byName["m"], r.byName["c"]
	var carried, incomplete int
	for mi := range r.msgs {
		if r.msgs[mi].author >= 0 {
			continue // the author rule, tested below
		}
		dm, dc := &r.dels[r.delOf(int32(mi), m)], &r.dels[r.delOf(int32(mi), c)]
		if dm.flags&fHeld != 0 || dc.flags&fHeld != 0 {
			continue // still at the barrier when the run ended
		}
		if dc.depStatus() < dm.depStatus() {
			t.Errorf("message %d: m released %v, then c %v: the gap upstream was lost", mi, dm.depStatus(), dc.depStatus())
		}
		if dm.depStatus() == deps.Incomplete {
			incomplete++
			// c's own clock started at m's release: released before its
			// deadline, c was released by m's finish, not by a timeout.
			if dc.at < dm.at+int64(r.sc.DepsTimeout) {
				carried++
			}
		}
	}
	if incomplete == 0 || carried == 0 {
		t.Fatalf("%d incomplete releases of m, %d carried to c by m's finish: the scenario no longer stalls its source", incomplete, carried)
	}
	if d := r.m; d.depViolations != 0 || d.incomplete < 2*carried {
		t.Errorf("report: %d violations, %d incomplete releases (want at least %d)", d.depViolations, d.incomplete, 2*carried)
	}
}

// A persona's own message is never delivered to it: it counts as having
// finished it, so the stage after it is released at once, Done, while the
// stages before it still get the message.
func TestPipelineAuthorHasFinishedItsOwnMessage(t *testing.T) {
	r, _ := simulated(t, chainScenario())
	s, m, c := r.byName["s"], r.byName["m"], r.byName["c"]
	var own int
	for mi := range r.msgs {
		msg := &r.msgs[mi]
		if msg.author != m {
			continue
		}
		own++
		ds, dc := &r.dels[r.delOf(int32(mi), s)], &r.dels[r.delOf(int32(mi), c)]
		if dc.flags&fHeld != 0 || dc.at != msg.at || dc.depStatus() != deps.Done {
			t.Errorf("message %d by m: c held %v, at %v (posted %v), %v; want released at the post, done",
				mi, dc.flags&fHeld != 0, dc.at, msg.at, dc.depStatus())
		}
		// Given it at the post, s takes it in unless its intake guard
		// skips it (a persona's message: often not relevant to s).
		if ds.acct != acSkipped && (ds.flags&fInInbox == 0 || ds.at != msg.at) {
			t.Errorf("message %d by m: the source s did not get it at the post", mi)
		}
	}
	if own == 0 {
		t.Fatal("m wrote no message: the scenario no longer tests the author rule")
	}
}
