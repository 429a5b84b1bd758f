package govern

import (
	"testing"
	"time"
)

func TestMeter(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	var m Meter
	if n, busy := m.Read(t0); n != 0 || busy != 0 {
		t.Fatalf("zero Meter reads %d, %v", n, busy)
	}
	steps := []struct {
		name     string
		do       func()
		read     time.Duration
		inFlight int
		busy     time.Duration
	}{
		{"one handler running accrues its time so far", func() { m.Begin(at(0)) }, 2 * time.Second, 1, 2 * time.Second},
		{"two handlers accrue twice as fast", func() { m.Begin(at(2 * time.Second)) }, 3 * time.Second, 2, 4 * time.Second},
		{"an ended handler stops accruing", func() { m.End(at(4 * time.Second)) }, 5 * time.Second, 1, 7 * time.Second},
		{"a time going backwards adds nothing", func() { m.Begin(at(time.Second)) }, 5 * time.Second, 2, 7 * time.Second},
		{"all ended, nothing accrues", func() { m.End(at(6 * time.Second)); m.End(at(6 * time.Second)) }, 9 * time.Second, 0, 9 * time.Second},
		{"an unmatched End is ignored", func() { m.End(at(9 * time.Second)) }, 10 * time.Second, 0, 9 * time.Second},
	}
	for _, st := range steps {
		st.do()
		n, busy := m.Read(at(st.read))
		if n != st.inFlight || busy != st.busy {
			t.Fatalf("%s: Read = %d, %v; want %d, %v", st.name, n, busy, st.inFlight, st.busy)
		}
	}
}
