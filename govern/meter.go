package govern

import (
	"sync"
	"time"
)

// Meter measures handler time for the duty cycle: call Begin when a handler
// starts and End when it returns; the Sampler reads it each window. Busy
// time accrues at the rate of the handlers in flight, so a handler that is
// still running counts for the part of the window it has run, not only
// when it ends.
//
// The methods take now explicitly so the simulator can drive a Meter in
// virtual time; in real time pass time.Now(). Times that go backwards (two
// callers racing to the lock) add nothing rather than subtracting.
//
// The zero value is ready to use. Safe for concurrent use.
type Meter struct {
	mu       sync.Mutex
	last     time.Time
	inFlight int
	busy     time.Duration // wraps on overflow; differences stay exact
}

func (m *Meter) advance(now time.Time) {
	if now.After(m.last) {
		m.busy += time.Duration(m.inFlight) * now.Sub(m.last)
		m.last = now
	}
}

// Begin records that a handler started at now.
func (m *Meter) Begin(now time.Time) {
	m.mu.Lock()
	m.advance(now)
	m.inFlight++
	m.mu.Unlock()
}

// End records that a handler returned at now. An End without a matching
// Begin is ignored, so a miscount never drives InFlight negative.
func (m *Meter) End(now time.Time) {
	m.mu.Lock()
	m.advance(now)
	if m.inFlight > 0 {
		m.inFlight--
	}
	m.mu.Unlock()
}

// Read returns the handlers in flight and the total handler time accrued up
// to now. Only differences of busy between two reads are meaningful; they
// stay exact even if the total wraps around.
func (m *Meter) Read(now time.Time) (inFlight int, busy time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.advance(now)
	return m.inFlight, m.busy
}
