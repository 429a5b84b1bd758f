package game

import (
	"container/heap"
	"fmt"
	"time"

	"github.com/personaos/persona"
	"github.com/personaos/persona/sim"
)

// RunVirtual plays Run's game in virtual time: each player's life cycle
// (persona.Cycle, the core persona.Persona runs in real time) is driven by
// sim.Driver on the caller's goroutine, the engine steps every TickDuration
// of virtual time, and a thought takes Options.Think of it. Nothing waits
// for a clock and nothing races, so the same Options (the same Game.Seed)
// give the same Report on every run and every machine; it is what
// `persona game` prints by default. The CPU a decision costs is not
// modelled: Compute and ComputeDuty are zero, and Wall is the game time.
// Options.OnTick and Options.Observer are not called.
func RunVirtual(opts Options) (Report, error) {
	opts = opts.withDefaults()
	eng, err := NewEngine(opts.Game)
	if err != nil {
		return Report{}, fmt.Errorf("game: run: %w", err)
	}
	b := newBoard(eng, opts)
	v := &virtual{b: b, epoch: time.Unix(0, 0).UTC()}
	po := persona.Options{State: opts.State, Coalesce: true}
	for i, m := range b.minds {
		c := persona.NewCycle(m.name, po, persona.NewInbox[GameState](po), nil)
		p := &vplayer{v: v, i: i}
		p.d = sim.NewDriver(c, sim.Host[GameState](p), v.epoch)
		v.players = append(v.players, p)
	}
	for _, p := range v.players {
		p.d.Start(0)
	}
	res := v.play()
	wall := time.Duration(res.ticks) * TickDuration
	rep := Report{Game: opts.Game, Ticks: res.ticks, GameTime: wall, Wall: wall, Virtual: true, Think: opts.Think, Board: eng.World()}
	rep.Persona = b.side(v.snapshots(), res, wall)
	base, err := Baseline(opts.Game, res.ticks, opts)
	if err != nil {
		return rep, fmt.Errorf("game: run: %w", err)
	}
	base.ComputeDuty = 0 // measured on the clock: not part of a virtual run
	for i := range base.Players {
		base.Players[i].Compute = 0
	}
	rep.Baseline = base
	return rep, nil
}

// virtual is the virtual-time game: its clock, its event queue and the
// players' drivers.
type virtual struct {
	b       *board
	epoch   time.Time
	now     int64
	seq     uint64
	events  vevents
	players []*vplayer
}

// vplayer is one player's sim.Host: its driver, its thought in progress
// and its wake-ups.
type vplayer struct {
	v     *virtual
	i     int
	d     *sim.Driver[GameState]
	gen   int32 // the newest thought's number: a preempted one's end is stale
	wakes persona.WakeCounts
	work  *thought
}

// thought is a DoHandle in progress: the plan made at its start, applied
// when its think time ends.
type thought struct {
	it    persona.Item[GameState]
	plan  []Action
	start int64
	gen   int32
}

type vkind uint8

const (
	vTick vkind = iota
	vStep
	vTimer
	vDone
)

type vevent struct {
	at   int64
	seq  uint64
	kind vkind
	p    int
	gen  int32
}

type vevents []vevent

func (h vevents) Len() int { return len(h) }
func (h vevents) Less(i, j int) bool {
	return h[i].at < h[j].at || h[i].at == h[j].at && h[i].seq < h[j].seq
}
func (h vevents) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *vevents) Push(x any)   { *h = append(*h, x.(vevent)) }
func (h *vevents) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

func (v *virtual) at(at int64, kind vkind, p int, gen int32) {
	v.seq++
	heap.Push(&v.events, vevent{at: at, seq: v.seq, kind: kind, p: p, gen: gen})
}

// play runs the game's ticks and the players' events in time order, and
// reports what the driver of Run reports.
func (v *virtual) play() driven {
	b := v.b
	ticks := max(1, int(b.opts.Duration/TickDuration))
	every := max(1, int(b.opts.Sample/TickDuration))
	last := make([]GameState, len(b.names))
	sent := make([]bool, len(b.names))
	idle := newIdleTracker(len(b.names))
	d := driven{ticks: ticks, series: []Sample{b.sample(v.snapshots(), 0)}}
	for tick := 1; tick <= ticks; tick++ {
		v.at(int64(tick)*int64(TickDuration), vTick, tick, 0)
	}
	for v.events.Len() > 0 {
		e := heap.Pop(&v.events).(vevent)
		v.now = e.at
		switch e.kind {
		case vTick:
			v.tick(last, sent)
			idle.observe(b.eng.Stats())
			if e.p%every == 0 {
				d.series = append(d.series, b.sample(v.snapshots(), e.p))
			}
			if e.p == ticks {
				d.maxIdle = idle.max
				return d
			}
		case vStep:
			v.players[e.p].d.Step(v.now)
		case vTimer:
			v.players[e.p].d.Timer(v.now, e.gen)
		case vDone:
			v.players[e.p].done(e.gen)
		}
	}
	d.maxIdle = idle.max
	return d
}

// tick is one step of the engine and the news it brings, as Run's driver
// does it.
func (v *virtual) tick(last []GameState, sent []bool) {
	b := v.b
	deadline := time.Duration(b.opts.DeadlineTicks) * TickDuration
	for i, it := range b.news(b.step(), last, sent, v.epoch.Add(time.Duration(v.now)), deadline) {
		if it.ID != "" {
			_ = v.players[i].d.Deliver(v.now, it) // a full inbox defers; it never refuses
		}
	}
}

// snapshots are the players' persona snapshots, as persona.Persona
// reports them.
func (v *virtual) snapshots() []persona.Snapshot {
	out := make([]persona.Snapshot, len(v.players))
	for i, p := range v.players {
		c := p.d.Cycle()
		st, stats := c.State(), c.Stats()
		out[i] = persona.Snapshot{Name: v.b.names[i], Energy: st.Energy, Attention: st.Attention, Mood: st.Mood,
			Load: st.Load, Budget: st.Budget, Cadence: c.Cadence(), Awake: c.Phase() == persona.PhaseRunning,
			Counts: c.Inbox().Counts(), Errors: stats.Errors, Panics: stats.Panics, Slices: stats.Slices,
			Busy: stats.Busy, LastWork: st.LastActivity, Wakes: p.wakes}
	}
	return out
}

// StepAt is sim.Host's: a scheduler step at at.
func (p *vplayer) StepAt(at int64) { p.v.at(at, vStep, p.i, 0) }

// TimerAt is sim.Host's: the scan timer of generation gen at at.
func (p *vplayer) TimerAt(at int64, gen int32) { p.v.at(at, vTimer, p.i, gen) }

// Work begins a thought: the plan is made now, and lands after the think
// time, as mind.Handle's does.
func (p *vplayer) Work(a persona.Action[GameState]) {
	p.gen++
	gs := a.Item.Payload
	p.work = &thought{it: *a.Item, plan: Plan(gs, p.v.b.opts.PlanTicks), start: p.v.now, gen: p.gen}
	p.v.at(p.v.now+int64(p.v.b.opts.Think), vDone, p.i, p.gen)
}

// Preempt is sim.Host's; players do not preempt (persona.Options.Preempt
// is off), so a thought always runs to its end.
func (p *vplayer) Preempt() {}

// Note is sim.Host's: a player has no peers and no pipeline.
func (p *vplayer) Note(persona.Note[GameState]) {}

// Woke counts a wake-up by its trigger.
func (p *vplayer) Woke(t persona.Trigger) {
	switch t {
	case persona.TriggerDemand:
		p.wakes.Demand++
	case persona.TriggerDependency:
		p.wakes.Dependency++
	case persona.TriggerScan:
		p.wakes.Scan++
	}
}

// Adjust is what a runtime without a governor or a compute budget gives.
func (p *vplayer) Adjust(int64) (persona.Adjustment, float64) {
	return persona.Adjustment{CadenceMultiplier: 1, CatchUp: true}, 1
}

// done ends thought gen: what mind.Handle does after its think time.
func (p *vplayer) done(gen int32) {
	w := p.work
	if w == nil || w.gen != gen {
		return
	}
	p.work = nil
	b, m := p.v.b, p.v.b.minds[p.i]
	gs, urgent := w.it.Payload, w.it.Priority >= UrgentLine
	m.thoughts++
	if urgent {
		m.urgent++
		m.urgentWaitMax = max(m.urgentWaitMax, time.Duration(w.start)-w.it.Delivered.Sub(p.v.epoch))
	}
	in := &b.intents[p.i]
	switch {
	case !urgent && in.alarm > gs.Tick:
		m.superseded++ // the urgent state is queued and will be thought about next
		p.d.Done(p.v.now, persona.Result{})
	default:
		err := b.eng.Submit(m.name, w.plan[0])
		if err == nil {
			in.plan, in.fresh = w.plan[1:], true
		}
		p.d.Done(p.v.now, persona.Result{Err: err})
	}
}
