package slots

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// acquireAsync starts an Acquire and returns where its outcome lands.
func acquireAsync(wg *sync.WaitGroup, s *Scheduler, ctx context.Context, c Call) (g **Grant, err *error) {
	g, err = new(*Grant), new(error)
	wg.Go(func() { *g, *err = s.Acquire(ctx, c) })
	return g, err
}

func TestSchedulerNeverExceedsItsSlotsAndServesAddressedFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewScheduler(2, SchedulerOptions{})
		ctx := context.Background()
		var mu sync.Mutex
		inFlight, peak := 0, 0
		var order []string
		var wg sync.WaitGroup
		call := func(name string, class Class, d time.Duration) {
			wg.Go(func() {
				g, err := s.Acquire(ctx, Call{Persona: name, Class: class})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				inFlight++
				peak = max(peak, inFlight)
				order = append(order, name)
				mu.Unlock()
				time.Sleep(d)
				mu.Lock()
				inFlight--
				mu.Unlock()
				g.Release()
			})
			synctest.Wait()
		}
		for i := range 4 {
			// Ends one second apart, so that one slot frees at a time.
			call("chatter"+string(rune('0'+i)), Persona, time.Duration(10+i)*time.Second)
		}
		call("mention", Addressed, time.Second)
		wg.Wait()
		if peak != 2 {
			t.Fatalf("peak %d calls in flight, want the 2 slots", peak)
		}
		if order[2] != "mention" {
			t.Fatalf("start order %v: the mention should be next once a slot frees", order)
		}
	})
}

func TestSchedulerCancelledWaitGivesUpItsPlace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewScheduler(1, SchedulerOptions{})
		hold, err := s.Acquire(context.Background(), Call{Persona: "a"})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		ctx, cancel := context.WithCancel(context.Background())
		_, errB := acquireAsync(&wg, s, ctx, Call{Persona: "b"})
		gC, errC := acquireAsync(&wg, s, context.Background(), Call{Persona: "c"})
		synctest.Wait()
		cancel()
		synctest.Wait()
		if !errors.Is(*errB, context.Canceled) {
			t.Fatalf("b: %v", *errB)
		}
		hold.Release()
		hold.Release() // twice is harmless
		wg.Wait()
		if *errC != nil || *gC == nil {
			t.Fatalf("c did not get the slot b gave up: %v", *errC)
		}
		(*gC).Release()
		if in, _, _ := s.Load(); in != 0 {
			t.Fatalf("%d slots held after every release", in)
		}
	})
}

func TestSchedulerSupersededCallGivesUpBeforeASlot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewScheduler(1, SchedulerOptions{})
		hold, _ := s.Acquire(context.Background(), Call{Persona: "a"})
		var wg sync.WaitGroup
		_, errOld := acquireAsync(&wg, s, context.Background(), Call{Persona: "b", Class: Human, Key: "room"})
		gOther, _ := acquireAsync(&wg, s, context.Background(), Call{Persona: "b", Class: Human, Key: "elsewhere"})
		synctest.Wait()
		if n := s.Supersede("b", "room"); n != 1 {
			t.Fatalf("superseded %d calls, want 1", n)
		}
		synctest.Wait()
		if !errors.Is(*errOld, ErrSuperseded) {
			t.Fatalf("superseded call: %v", *errOld)
		}
		hold.Release()
		wg.Wait()
		if st := s.Stats(); st.Started[Human] != 1 || st.Cancelled[Human] != 1 {
			t.Fatalf("stats %+v: the superseded call must not have cost a slot", st)
		}
		(*gOther).Release()
	})
}

// An owed call gives up its waiting place too: the reply it comes back as
// is still Addressed, and its turn is its persona's, so one reply answers
// the mention and the newer message where two would each cost a slot.
func TestSchedulerSupersedesAWaitingAddressedCallToo(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewScheduler(1, SchedulerOptions{})
		hold, _ := s.Acquire(context.Background(), Call{Persona: "a", Class: Background})
		var wg sync.WaitGroup
		_, errOwed := acquireAsync(&wg, s, context.Background(), Call{Persona: "b", Class: Addressed, Key: "room"})
		synctest.Wait()
		if n := s.Supersede("b", "room"); n != 1 {
			t.Fatalf("superseded %d calls, want the owed one", n)
		}
		synctest.Wait()
		if !errors.Is(*errOwed, ErrSuperseded) {
			t.Fatalf("superseded owed call: %v", *errOwed)
		}
		gAgain, errAgain := acquireAsync(&wg, s, context.Background(), Call{Persona: "b", Class: Addressed, Key: "room"})
		hold.Release()
		wg.Wait()
		if *errAgain != nil {
			t.Fatalf("the merged reply: %v", *errAgain)
		}
		if st := s.Stats(); st.Started[Addressed] != 1 || st.Cancelled[Addressed] != 1 {
			t.Fatalf("stats %+v: one owed reply started, the superseded one cost no slot", st)
		}
		(*gAgain).Release()
	})
}

func TestSchedulerPreemptsTheLowestCallForAnAddressedOne(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewScheduler(1, SchedulerOptions{Preempt: true})
		chat, err := s.Acquire(context.Background(), Call{Persona: "a", Class: Persona})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		gM, errM := acquireAsync(&wg, s, context.Background(), Call{Persona: "b", Class: Addressed})
		synctest.Wait()
		if !errors.Is(context.Cause(chat.Context()), ErrPreempted) {
			t.Fatalf("the persona call was not preempted: %v", context.Cause(chat.Context()))
		}
		chat.Release() // its caller notices and gives the slot back
		wg.Wait()
		if *errM != nil {
			t.Fatal(*errM)
		}
		if (*gM).Context().Err() != nil {
			t.Fatal("the addressed call's context is cancelled")
		}
		(*gM).Release()
	})
}
