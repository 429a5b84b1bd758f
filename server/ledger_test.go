package server

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// flakyKV is an accounts bucket whose first fail Puts of key failKey fail
// (fail < 0: all of them).
type flakyKV struct {
	jetstream.KeyValue // nil: any other method panics

	mu      sync.Mutex
	failKey string
	fail    int
	failAll bool // every Put fails
	puts    int
	store   map[string][]byte
}

func (f *flakyKV) Put(_ context.Context, key string, value []byte) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.puts++
	if f.failAll {
		return 0, errors.New("injected put failure: the store is down")
	}
	if key == f.failKey {
		if f.fail != 0 {
			f.fail--
			return 0, errors.New("injected put failure")
		}
	}
	if f.store == nil {
		f.store = map[string][]byte{}
	}
	f.store[key] = value
	return uint64(f.puts), nil
}

func (f *flakyKV) stored(key string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.store[key]
	return ok
}

// fakeMsg is a JetStream delivery that records what was done with it.
type fakeMsg struct {
	jetstream.Msg // nil: any other method panics

	mu         sync.Mutex
	acks       int
	naks       []time.Duration
	inProgress int
	settled    time.Time // when it was last acked or nakked
}

func (m *fakeMsg) Subject() string { return roomSubject("r") }
func (m *fakeMsg) Ack() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.acks++
	m.settled = time.Now()
	return nil
}
func (m *fakeMsg) NakWithDelay(d time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.naks = append(m.naks, d)
	m.settled = time.Now()
	return nil
}
func (m *fakeMsg) InProgress() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.inProgress++
	return nil
}

func (m *fakeMsg) counts() (acks int, naks []time.Duration, inProgress int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.acks, append([]time.Duration(nil), m.naks...), m.inProgress
}

// runLedger runs l's writer for the rest of the synctest bubble's test.
func runLedger(t *testing.T, l *ledger) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { l.run(ctx) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
}

func TestLedgerWriteFailures(t *testing.T) {
	groups := map[string][]string{"src": {"src", "dep"}}
	cases := []struct {
		name       string
		fail       int // failing Puts, -1: all
		skipped    bool
		wantAck    bool
		wantNak    bool
		wantStored bool
		wantTook   time.Duration // backoff spent before the outcome
	}{
		{name: "transient failure is retried then acked", fail: 2, wantAck: true, wantStored: true, wantTook: 750 * time.Millisecond},
		{name: "persistent failure gives the delivery back", fail: -1, wantNak: true, wantTook: 1750 * time.Millisecond},
		{name: "persistent failure gives a skipped message back", fail: -1, skipped: true, wantNak: true, wantTook: 1750 * time.Millisecond},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				kv := &flakyKV{failKey: ledgerKey("src", "m1"), fail: tc.fail}
				l := newLedger(testLogger(t), kv, groups)
				l.nakDelay = time.Second
				runLedger(t, l)
				m := &fakeMsg{}
				start := time.Now()
				if tc.skipped {
					l.skip("src", "m1", noteSelf, m, start)
				} else {
					if l.hold("src", "m1", m) {
						t.Fatal("first delivery reported as held")
					}
					l.final("dep", "m1", "handled", start) // the downstream persona is done
					synctest.Wait()
					l.final("src", "m1", "handled", start)
				}
				time.Sleep(time.Minute) // far past every backoff
				synctest.Wait()
				acks, naks, _ := m.counts()
				m.mu.Lock()
				took := m.settled.Sub(start)
				m.mu.Unlock()
				if got := acks == 1; got != tc.wantAck {
					t.Errorf("acked %d times, want ack %v", acks, tc.wantAck)
				}
				if got := len(naks) == 1; got != tc.wantNak {
					t.Errorf("naks %v, want nak %v", naks, tc.wantNak)
				} else if tc.wantNak && naks[0] != time.Second {
					t.Errorf("nak delay %v, want the ledger's 1s", naks[0])
				}
				if got := kv.stored(ledgerKey("src", "m1")); got != tc.wantStored {
					t.Errorf("account stored = %v, want %v", got, tc.wantStored)
				}
				if took != tc.wantTook {
					t.Errorf("outcome after %v, want %v of backoff", took, tc.wantTook)
				}
				if n := l.held(); n != 0 {
					t.Errorf("%d deliveries still held, want none", n)
				}
				l.mu.Lock()
				pending := len(l.pending)
				l.mu.Unlock()
				if pending != 0 {
					t.Errorf("%d pending entries left in memory", pending)
				}
			})
		})
	}
}

// A delivery whose account could not be written must not stay held: the
// keep-alive would stop JetStream from redelivering it, and hold would drop
// the redelivery.
func TestLedgerGivenBackMessageIsRedeliverable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		kv := &flakyKV{failKey: ledgerKey("solo", "m1"), fail: ledgerWriteAttempts} // every attempt of the first write
		l := newLedger(testLogger(t), kv, nil)
		runLedger(t, l)
		first := &fakeMsg{}
		l.hold("solo", "m1", first)
		l.final("solo", "m1", "handled", time.Now())
		time.Sleep(time.Minute)
		synctest.Wait()

		l.keepAlive()
		if _, naks, inProgress := first.counts(); len(naks) != 1 || inProgress != 0 {
			t.Fatalf("first delivery: naks %v, in progress %d; want one nak and no keep-alive", naks, inProgress)
		}
		again := &fakeMsg{}
		if l.hold("solo", "m1", again) {
			t.Fatal("the redelivery was taken for a duplicate and would be dropped")
		}
		l.final("solo", "m1", "handled", time.Now())
		synctest.Wait()
		if acks, naks, _ := again.counts(); acks != 1 || len(naks) != 0 {
			t.Errorf("redelivery: %d acks, naks %v; want acked once", acks, naks)
		}
		if !kv.stored(ledgerKey("solo", "m1")) {
			t.Error("account not written on the redelivery")
		}
	})
}

// failingAccounts fails the first n Puts of a "handled" account.
type failingAccounts struct {
	jetstream.KeyValue
	n atomic.Int32
}

func (f *failingAccounts) Put(ctx context.Context, key string, value []byte) (uint64, error) {
	if strings.Contains(string(value), `"handled"`) && f.n.Add(-1) >= 0 {
		return 0, errors.New("injected put failure")
	}
	return f.KeyValue.Put(ctx, key, value)
}

func TestAccountNotWrittenIsDeliveredAgainAndSettles(t *testing.T) {
	for _, tc := range []struct {
		name       string
		fails      int32
		deliveries uint64
	}{
		{"a failure within the retries is absorbed", 1, 1},
		{"a failure past the retries comes back from JetStream", ledgerWriteAttempts, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.Specs = solo()
			cfg.AckWait = 2 * time.Second // a stuck message would be kept alive past several of these
			fa := &failingAccounts{}
			fa.n.Store(tc.fails)
			cfg.hooks.accounts = func(kv jetstream.KeyValue) jetstream.KeyValue { fa.KeyValue = kv; return fa }
			d := startDaemon(t, cfg)
			m := post(t, d, "r", "bob", "@Solo a go question")
			rec := waitAccount(t, d, "Solo", m.ID)
			if rec.Account != "handled" {
				t.Errorf("account %+v, want handled", rec)
			}
			waitSettled(t, d)
			if n := len(repliesTo(messages(t, d, "r"), m.ID)); n != 1 {
				t.Errorf("%d replies, want exactly 1", n)
			}
			if pi, _ := d.Persona("Solo"); pi.Snapshot.Counts.Delivered != tc.deliveries {
				t.Errorf("delivered %d times, want %d", pi.Snapshot.Counts.Delivered, tc.deliveries)
			}
		})
	}
}

// The express lane holds a message without an ack handle; the durable
// delivery that comes while it is held supplies the handle that is acked,
// and one that came first is never replaced by the express lane.
func TestLedgerExpressHold(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		kv := &flakyKV{}
		l := newLedger(testLogger(t), kv, nil)
		runLedger(t, l)

		// Express first, then the durable delivery: held, its handle acked.
		if !l.holdExpress("solo", "m1") {
			t.Fatal("express hold of a new message refused")
		}
		durable := &fakeMsg{}
		if !l.hold("solo", "m1", durable) {
			t.Fatal("the durable delivery of an express-held message was not reported held: it would be delivered twice")
		}
		l.keepAlive()
		l.final("solo", "m1", "handled", time.Now())
		synctest.Wait()
		if acks, naks, _ := durable.counts(); acks != 1 || len(naks) != 0 {
			t.Errorf("durable handle: %d acks, naks %v; want acked once", acks, naks)
		}

		// The durable delivery first: the express lane holds nothing.
		first := &fakeMsg{}
		l.hold("solo", "m2", first)
		if l.holdExpress("solo", "m2") {
			t.Error("express hold replaced a durable delivery's handle")
		}
		l.final("solo", "m2", "handled", time.Now())
		synctest.Wait()
		if acks, _, _ := first.counts(); acks != 1 {
			t.Errorf("durable handle of m2: %d acks, want 1", acks)
		}

		// Express only, accounted before the durable delivery comes: the
		// account is written, nothing is left held.
		l.holdExpress("solo", "m3")
		l.final("solo", "m3", "handled", time.Now())
		synctest.Wait()
		if !kv.stored(ledgerKey("solo", "m3")) || l.held() != 0 {
			t.Errorf("express-only: stored %v, held %d; want stored and nothing held", kv.stored(ledgerKey("solo", "m3")), l.held())
		}
		// An express delivery the inbox refused is forgotten.
		l.holdExpress("solo", "m4")
		l.unholdExpress("solo", "m4")
		if n := l.held(); n != 0 {
			t.Errorf("%d held after unholdExpress, want 0", n)
		}
	})
}

// A store that fails at shutdown cannot hold the shutdown past its
// deadline (issue 14): the writer's last flush gives every queued account
// back to JetStream once the deadline is gone.
func TestLedgerLastFlushEndsAtTheShutdownDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		kv := &flakyKV{failKey: "*", fail: -1}
		kv.failAll = true
		l := newLedger(testLogger(t), kv, map[string][]string{"src": {"src"}})
		l.nakDelay = time.Second
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() { l.run(ctx) })
		var msgs []*fakeMsg
		start := time.Now()
		for i := range 50 {
			m := &fakeMsg{}
			msgs = append(msgs, m)
			id := "m" + string(rune('A'+i%26)) + string(rune('a'+i/26))
			l.hold("src", id, m)
			l.final("src", id, "handled", start)
		}
		// Shutdown with a 3 s deadline, while the store fails every write
		// (each of 50 accounts would otherwise retry for 1.75 s).
		sctx, scancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer scancel()
		l.drainBy(sctx)
		cancel()
		wg.Wait()
		if took := time.Since(start); took > 4*time.Second {
			t.Fatalf("the last flush took %v with a 3s deadline", took)
		}
		for i, m := range msgs {
			if acks, naks, _ := m.counts(); acks != 0 || len(naks) != 1 {
				t.Fatalf("message %d: %d acks, %d naks; want it given back once", i, acks, len(naks))
			}
		}
	})
}
