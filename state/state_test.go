package state

import (
	"math"
	"testing"
	"time"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

// st builds a state with the given numbers and lets Observe derive the
// mood, as the persona loop does.
func st(cfg Config, energy, attention, load float64, responses int) State {
	s := New(cfg)
	s.Energy, s.Attention, s.Responses = energy, attention, responses
	s.Observe(load, 1)
	return s
}

// inMood returns a default state in the given mood with full attention.
func inMood(t *testing.T, m Mood) State {
	t.Helper()
	var s State
	switch m {
	case Idle:
		s = st(Config{}, 1, 1, 0, 0)
	case Active:
		s = st(Config{}, 1, 1, 0, 1)
	case Tired:
		s = st(Config{}, 0.25, 1, 0, 1)
	case Overwhelmed:
		s = st(Config{}, 1, 1, 0.5, 0)
	}
	if s.Mood != m {
		t.Fatalf("setup: mood %v, want %v", s.Mood, m)
	}
	return s
}

func TestConfigDefaults(t *testing.T) {
	want := Config{
		DrainPer:             10 * time.Second,
		RecoverPer:           20 * time.Second,
		TiredEnergy:          0.3,
		AttentionFatigue:     0.9,
		ActiveEnergy:         0.5,
		ActiveWindow:         time.Minute,
		OverwhelmedLoad:      0.05,
		Urgent:               0.8,
		ThresholdIdle:        0.1,
		ThresholdActive:      0.3,
		ThresholdTired:       0.5,
		ThresholdOverwhelmed: 0.9,
		TiredFloor:           0.2,
		AttentionWeight:      0.1,
		CadenceIdle:          3 * time.Second,
		CadenceActive:        5 * time.Second,
		CadenceTired:         7 * time.Second,
		CadenceOverwhelmed:   10 * time.Second,
		BudgetLow:            0.5,
		BudgetSlowdown:       2,
	}
	if got := (Config{}).Defaults(); got != want {
		t.Errorf("zero Config defaults to\n%+v\nwant\n%+v", got, want)
	}
	s := New(Config{})
	if s.Config() != want {
		t.Error("New does not fill the defaults")
	}
	if s.Energy != 1 || s.Attention != 1 || s.Budget != 1 || s.Mood != Idle {
		t.Errorf("New = %+v, want full energy, attention and budget, idle", s)
	}
	custom := Config{Urgent: 0.7, CadenceIdle: time.Second, TiredFloor: 0.05}.Defaults()
	if custom.Urgent != 0.7 || custom.CadenceIdle != time.Second || custom.TiredFloor != 0.05 || custom.DrainPer != 10*time.Second {
		t.Errorf("set fields must be kept and the others defaulted: %+v", custom)
	}
}

func TestMoodString(t *testing.T) {
	for m, want := range map[Mood]string{Idle: "idle", Active: "active", Tired: "tired", Overwhelmed: "overwhelmed", 7: "mood(7)"} {
		if got := m.String(); got != want {
			t.Errorf("Mood(%d).String() = %q, want %q", int(m), got, want)
		}
		if b, err := m.MarshalText(); err != nil || string(b) != want {
			t.Errorf("Mood(%d).MarshalText() = %q, %v", int(m), b, err)
		}
	}
}

func TestRecordActivity(t *testing.T) {
	tests := []struct {
		name                string
		energy, attention   float64
		d                   time.Duration
		complexity          float64
		wantEnergy, wantAtt float64
		wantMood            Mood
	}{
		{"one second drains a tenth", 1, 1, time.Second, 1, 0.9, 1, Active},
		{"complexity scales the drain", 1, 1, 2 * time.Second, 2.5, 0.5, 1, Idle},
		{"zero complexity counts as one", 1, 1, time.Second, 0, 0.9, 1, Active},
		{"negative complexity counts as one", 1, 1, time.Second, -3, 0.9, 1, Active},
		{"drain stops at zero", 0.5, 1, 30 * time.Second, 1, 0, 0.9, Tired},
		{"attention fatigues below the tired line", 0.35, 1, time.Second, 1, 0.25, 0.9, Tired},
		{"attention fatigues again on each unit", 0.25, 0.9, 0, 1, 0.25, 0.81, Tired},
		{"no fatigue at exactly the tired line", 0.5, 1, 2 * time.Second, 1, 0.3, 1, Idle},
		{"half-full energy is idle, not active", 0.7, 1, 2 * time.Second, 1, 0.5, 1, Idle},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := st(Config{}, tt.energy, tt.attention, 0, 0)
			s.Rested = 5 * time.Second
			now := t0.Add(time.Hour)
			s.RecordActivity(now, tt.d, tt.complexity)
			if !near(s.Energy, tt.wantEnergy) || !near(s.Attention, tt.wantAtt) {
				t.Errorf("energy %v attention %v, want %v %v", s.Energy, s.Attention, tt.wantEnergy, tt.wantAtt)
			}
			if s.Mood != tt.wantMood {
				t.Errorf("mood %v, want %v", s.Mood, tt.wantMood)
			}
			if s.Responses != 1 || !s.LastActivity.Equal(now) || s.Rested != 0 {
				t.Errorf("responses %d, last activity %v, rested %v: want 1, now, 0", s.Responses, s.LastActivity, s.Rested)
			}
		})
	}
	t.Run("custom drain rate", func(t *testing.T) {
		s := New(Config{DrainPer: time.Minute})
		s.RecordActivity(t0, 30*time.Second, 1)
		if !near(s.Energy, 0.5) {
			t.Errorf("energy %v, want 0.5", s.Energy)
		}
	})
}

func TestRest(t *testing.T) {
	tests := []struct {
		name                string
		energy, attention   float64
		d                   time.Duration
		wantEnergy, wantAtt float64
	}{
		{"energy recovers a twentieth per second, attention twice as fast", 0.5, 0.5, 5 * time.Second, 0.75, 1},
		{"from empty", 0, 0, 2 * time.Second, 0.1, 0.2},
		{"recovery stops at one", 0.9, 0.2, 10 * time.Second, 1, 1},
		{"zero rest changes nothing", 0.4, 0.4, 0, 0.4, 0.4},
		{"negative rest changes nothing", 0.4, 0.4, -time.Minute, 0.4, 0.4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := st(Config{}, tt.energy, tt.attention, 0, 0)
			s.Rest(tt.d)
			if !near(s.Energy, tt.wantEnergy) || !near(s.Attention, tt.wantAtt) {
				t.Errorf("energy %v attention %v, want %v %v", s.Energy, s.Attention, tt.wantEnergy, tt.wantAtt)
			}
			if want := max(0, tt.d); s.Rested != want {
				t.Errorf("rested %v, want %v", s.Rested, want)
			}
		})
	}
}

func TestMood(t *testing.T) {
	tests := []struct {
		name      string
		cfg       Config
		energy    float64
		load      float64
		responses int
		want      Mood
	}{
		{"overwhelmed beats tired", Config{}, 0.1, 0.06, 3, Overwhelmed},
		{"a load of exactly 50 in 1000 is not overwhelmed", Config{}, 1, 0.05, 0, Idle},
		{"a load above 50 in 1000 is overwhelmed", Config{}, 1, 0.051, 0, Overwhelmed},
		{"the overwhelmed line is a ratio of capacity", Config{OverwhelmedLoad: 0.5}, 1, 0.4, 0, Idle},
		{"above a custom overwhelmed ratio", Config{OverwhelmedLoad: 0.5}, 1, 0.6, 0, Overwhelmed},
		{"tired beats active", Config{}, 0.29, 0, 3, Tired},
		{"energy exactly at the tired line is not tired", Config{}, 0.3, 0, 0, Idle},
		{"active needs energy above one half", Config{}, 0.5, 0, 1, Idle},
		{"active with energy and recent work", Config{}, 0.51, 0, 1, Active},
		{"idle without recent work", Config{}, 1, 0, 0, Idle},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := st(tt.cfg, tt.energy, 1, tt.load, tt.responses).Mood; got != tt.want {
				t.Errorf("mood %v, want %v", got, tt.want)
			}
		})
	}
}

// TestActiveWindow: the seed's response count never reset, so one answer
// made a persona active forever; rest as long as the window clears it.
func TestActiveWindow(t *testing.T) {
	tests := []struct {
		name   string
		cfg    Config
		rests  []time.Duration
		want   Mood
		wantRs int
	}{
		{"still active within the window", Config{}, []time.Duration{59 * time.Second}, Active, 1},
		{"idle once rest fills the window", Config{}, []time.Duration{59 * time.Second, time.Second}, Idle, 0},
		{"rests add up", Config{}, []time.Duration{30 * time.Second, 30 * time.Second}, Idle, 0},
		{"custom window", Config{ActiveWindow: 10 * time.Second}, []time.Duration{10 * time.Second}, Idle, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(tt.cfg)
			s.RecordActivity(t0, time.Second, 1)
			if s.Mood != Active {
				t.Fatalf("after work: %v, want active", s.Mood)
			}
			for _, d := range tt.rests {
				s.Rest(d)
			}
			if s.Mood != tt.want || s.Responses != tt.wantRs {
				t.Errorf("mood %v responses %d, want %v %d", s.Mood, s.Responses, tt.want, tt.wantRs)
			}
		})
	}
	t.Run("work restarts the window", func(t *testing.T) {
		s := New(Config{})
		s.RecordActivity(t0, time.Second, 1)
		s.Rest(40 * time.Second)
		s.RecordActivity(t0.Add(41*time.Second), time.Second, 1)
		s.Rest(40 * time.Second)
		if s.Mood != Active || s.Responses != 2 {
			t.Errorf("mood %v responses %d, want active 2: 40 s since the last work is inside the window", s.Mood, s.Responses)
		}
	})
}

func TestThreshold(t *testing.T) {
	tests := []struct {
		mood      Mood
		shift     float64
		attention float64
		want      float64
	}{
		{Idle, 0, 1, 0.1},
		{Active, 0, 1, 0.3},
		{Tired, 0, 1, 0.5},
		{Overwhelmed, 0, 1, 0.9},
		{Idle, 0.2, 1, 0.3},
		{Idle, 0, 0.5, 0.15},
		{Active, 0.1, 0, 0.5},
	}
	for _, tt := range tests {
		s := inMood(t, tt.mood)
		s.Attention = tt.attention
		if got := s.Threshold(tt.shift); !near(got, tt.want) {
			t.Errorf("%v, shift %v, attention %v: threshold %v, want %v", tt.mood, tt.shift, tt.attention, got, tt.want)
		}
	}
}

func TestShouldEngage(t *testing.T) {
	tests := []struct {
		name     string
		s        State
		priority float64
		shift    float64
		want     bool
	}{
		// Thresholds are strict: a priority must be above them.
		{"idle declines at exactly 0.1", st(Config{}, 1, 1, 0, 0), 0.1, 0, false},
		{"idle engages above 0.1", st(Config{}, 1, 1, 0, 0), 0.11, 0, true},
		{"active declines at exactly 0.3", st(Config{}, 1, 1, 0, 1), 0.3, 0, false},
		{"active engages above 0.3", st(Config{}, 1, 1, 0, 1), 0.31, 0, true},
		{"tired declines at exactly 0.5", st(Config{}, 0.25, 1, 0, 1), 0.5, 0, false},
		{"tired engages above 0.5", st(Config{}, 0.25, 1, 0, 1), 0.51, 0, true},
		{"tired at the 0.2 floor declines", st(Config{}, 0.2, 1, 0, 1), 0.79, 0, false},
		{"tired just above the floor engages", st(Config{}, 0.21, 1, 0, 1), 0.79, 0, true},
		{"overwhelmed declines below the urgent line", st(Config{}, 1, 1, 0.5, 0), 0.79, 0, false},
		// The urgent line is inclusive and beats everything.
		{"urgent engaged when idle", st(Config{}, 1, 1, 0, 0), 0.8, 0, true},
		{"urgent engaged at zero energy", st(Config{}, 0, 0, 0, 1), 0.8, 0, true},
		{"urgent engaged when overwhelmed", st(Config{}, 1, 1, 0.9, 0), 0.8, 0, true},
		{"urgent engaged under a big governor shift", st(Config{}, 1, 1, 0, 0), 0.8, 5, true},
		{"urgent engaged when everything is against it", st(Config{}, 0, 0, 1, 9), 0.8, 5, true},
		{"just below urgent is subject to mood", st(Config{}, 0, 0, 0, 1), 0.7999, 0, false},
		{"custom urgent line", st(Config{Urgent: 0.6}, 0, 0, 1, 1), 0.6, 1, true},
		// The governor's shift raises the bar for the rest.
		{"shift raises the idle bar", st(Config{}, 1, 1, 0, 0), 0.5, 0.4, false},
		{"shift leaves room above it", st(Config{}, 1, 1, 0, 0), 0.51, 0.4, true},
		// Lost attention raises the bar by (1-attention)*0.1.
		{"fatigued attention is pickier", st(Config{}, 1, 0.5, 0, 0), 0.14, 0, false},
		{"fatigued attention still engages above the raised bar", st(Config{}, 1, 0.5, 0, 0), 0.16, 0, true},
		{"attention weight is configurable", st(Config{AttentionWeight: 0.5}, 1, 0, 0, 0), 0.59, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.s.ShouldEngage(tt.priority, tt.shift); got != tt.want {
				t.Errorf("%v (energy %v, attention %v): ShouldEngage(%v, shift %v) = %v, want %v",
					tt.s.Mood, tt.s.Energy, tt.s.Attention, tt.priority, tt.shift, got, tt.want)
			}
		})
	}
}

func TestCadence(t *testing.T) {
	tests := []struct {
		name       string
		cfg        Config
		mood       Mood
		budget     float64
		multiplier float64
		want       time.Duration
	}{
		{"idle scans every 3s", Config{}, Idle, 1, 1, 3 * time.Second},
		{"active every 5s", Config{}, Active, 1, 1, 5 * time.Second},
		{"tired every 7s", Config{}, Tired, 1, 1, 7 * time.Second},
		{"overwhelmed every 10s", Config{}, Overwhelmed, 1, 1, 10 * time.Second},
		{"low budget doubles it", Config{}, Idle, 0.49, 1, 6 * time.Second},
		{"budget at exactly one half does not", Config{}, Idle, 0.5, 1, 3 * time.Second},
		{"governor multiplier stretches it", Config{}, Active, 1, 1.5, 7500 * time.Millisecond},
		{"low budget and governor multiply", Config{}, Overwhelmed, 0.1, 3, 60 * time.Second},
		{"zero multiplier means one", Config{}, Tired, 1, 0, 7 * time.Second},
		{"negative multiplier means one", Config{}, Tired, 1, -2, 7 * time.Second},
		{"custom slowdown", Config{BudgetSlowdown: 4}, Idle, 0, 1, 12 * time.Second},
		{"negative cadence scans again at once", Config{CadenceIdle: -1}, Idle, 0.1, 3, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := inMood(t, tt.mood)
			s.cfg = tt.cfg.Defaults()
			s.Observe(s.Load, tt.budget)
			if s.Mood != tt.mood {
				t.Fatalf("setup: mood %v", s.Mood)
			}
			if got := s.Cadence(tt.multiplier); got != tt.want {
				t.Errorf("Cadence(%v) at budget %v = %v, want %v", tt.multiplier, tt.budget, got, tt.want)
			}
		})
	}
}

// TestBusyPersonaTiresAndRecovers drives the pure functions over simulated
// time the way the persona loop does: observe, decide, work or rest, wait a
// cadence (resting only when it did not work, as the loop does). A persona
// fed 0.6 items without pause gets tired and slows down, still answers
// urgent ones, and recovers fully once the stream stops.
func TestBusyPersonaTiresAndRecovers(t *testing.T) {
	const work = 2 * time.Second // per item, complexity 1: 0.2 energy
	s := New(Config{})
	now := t0
	s.Observe(0.01, 1)
	first := s.Cadence(1)
	if first != 3*time.Second {
		t.Fatalf("a fresh persona scans every %v, want 3s", first)
	}

	var handled, declined, scans int
	var tiredAt time.Duration = -1
	var busyWaits, busyRest time.Duration
	for elapsed := time.Duration(0); elapsed < 10*time.Minute; {
		scans++
		s.Observe(0.01, 1)
		c := s.Cadence(1)
		if s.ShouldEngage(0.6, 0) {
			before := s.Energy
			now = now.Add(work)
			s.RecordActivity(now, work, 1)
			handled++
			if s.Energy >= before && before > 0 {
				t.Fatalf("energy did not fall with work: %v -> %v", before, s.Energy)
			}
		} else {
			declined++
			if s.Mood != Tired {
				t.Fatalf("declined a 0.6 item while %v", s.Mood)
			}
			if !s.ShouldEngage(0.8, 0) {
				t.Fatal("a tired persona neglected an urgent item")
			}
			s.Rest(c)
			busyRest += c
		}
		if s.Mood == Tired && tiredAt < 0 {
			tiredAt = elapsed
		}
		if s.Energy < 0 || s.Energy > 1 || s.Attention < 0 || s.Attention > 1 {
			t.Fatalf("out of range: energy %v attention %v", s.Energy, s.Attention)
		}
		busyWaits += c
		now = now.Add(c)
		elapsed += c
	}
	if tiredAt < 0 || tiredAt > 30*time.Second {
		t.Errorf("got tired at %v, want within the first 30 s", tiredAt)
	}
	if declined == 0 {
		t.Error("a busy persona never rested from non-urgent work")
	}
	if mean := busyWaits / time.Duration(scans); mean <= first {
		t.Errorf("mean cadence while busy %v, want slower than the fresh %v", mean, first)
	}
	// Energy balance: each item costs 0.2 and a second of rest gives 0.05
	// back, so at most one item per 4 s of rest can be sustained.
	if maxItems := int(busyRest/(4*time.Second)) + 5; handled > maxItems {
		t.Errorf("handled %d items after %v of rest, more than energy allows (%d)", handled, busyRest, maxItems)
	}
	t.Logf("busy: %d scans, %d handled, %d declined, tired after %v, mean cadence %v, energy %.2f",
		scans, handled, declined, tiredAt, busyWaits/time.Duration(scans), s.Energy)

	// The stream stops: the persona rests a cadence at a time.
	var rested time.Duration
	for s.Mood != Idle || s.Energy < 1 || s.Attention < 1 {
		s.Observe(0, 1)
		c := s.Cadence(1)
		s.Rest(c)
		rested += c
		if rested > 2*time.Minute {
			t.Fatalf("still %v with energy %v after %v of rest", s.Mood, s.Energy, rested)
		}
	}
	// Energy needs at most 20 s; the response count clears once the rest
	// since the last work fills the 60 s window.
	if rested < 16*time.Second || rested > time.Minute+10*time.Second {
		t.Errorf("recovered after %v of rest, want between 16 s and the 60 s window plus a cadence", rested)
	}
	if c := s.Cadence(1); c != first {
		t.Errorf("recovered persona scans every %v, want %v again", c, first)
	}
}
