package game

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/personaos/persona"
	"github.com/personaos/persona/metrics"
	"github.com/personaos/persona/state"
)

// GameTimeScale divides the seed's durations for game play: its chat personas scan every 3 to 10
// seconds and tire over tens of seconds; a player in a 20 Hz game lives ten times faster, scanning
// every 300 ms to 1 s (6 to 20 ticks) and tiring over seconds of hard play.
const GameTimeScale = 10

// PlayerState returns the persona policy of a player: the seed's numbers (package state's defaults)
// with every duration divided by GameTimeScale. Energy falls by think time / 1 s and recovers by
// rest / 2 s; cadences are 300 ms idle, 500 ms active, 700 ms tired, 1 s overwhelmed; a player that
// has not thought for 6 s is idle again. Thresholds and the urgent line (0.8) are the seed's.
func PlayerState() state.Config {
	c := state.Config{}.Defaults()
	for _, d := range []*time.Duration{&c.DrainPer, &c.RecoverPer, &c.ActiveWindow,
		&c.CadenceIdle, &c.CadenceActive, &c.CadenceTired, &c.CadenceOverwhelmed} {
		*d /= GameTimeScale
	}
	return c
}

// Options configures Run. The zero value is valid: the default game (Config{}) for 30 s of game time,
// players thinking for 24 ms and planning 10 ticks ahead with PlayerState's policy.
type Options struct {
	// Game is the board, players, predators, food and seed (default: the zero Config's game).
	Game Config
	// Duration is the game time to play, rounded down to whole ticks (default 30s, at least one
	// tick). In real time the run takes about as long; under testing/synctest no time at all.
	Duration time.Duration
	// Think is the modelled deliberation time of one thought (default 24 ms): the handler sleeps it
	// after computing its plan, standing in for a planner or a model call, so it costs wall time and
	// energy but no CPU. Just under half a tick, so that a player busy with a scan when danger
	// strikes still answers on the next tick. A negative value means no think time.
	Think time.Duration
	// PlanTicks is how many ticks one thought plans ahead (default 10, the active cadence in ticks):
	// between thoughts the driver replays the plan, one action a tick, until it runs out or danger
	// clears it. One means every thought moves the player once.
	PlanTicks int
	// DeadlineTicks is how many ticks a delivered state stays worth acting on (default 10): older
	// states expire unhandled, so an inbox never fills with history.
	DeadlineTicks int
	// State is the persona policy of every player (default, when it is the zero Config,
	// PlayerState(); otherwise package state fills its zero fields with the seed's unscaled numbers).
	State state.Config
	// Sample is the game time between samples of the time series (default 1s).
	Sample time.Duration
	// Logger receives the runtime's notes (default slog.Default()).
	Logger *slog.Logger
	// Observer, if set, receives every event of every player's persona (see persona.Event): wake-ups
	// by trigger, rests with their cadence and mood, items handled with their wait.
	Observer persona.Observer
	// OnTick, if set, is called by the driver after every Step with the board and the players'
	// persona snapshots, e.g. to render the game live. It delays the game while it runs.
	OnTick func(Frame)
}

// Frame is one tick of a running game, for live rendering.
type Frame struct {
	World   World
	Players []persona.Snapshot // in Config order
}

func (o Options) withDefaults() Options {
	if o.Duration <= 0 {
		o.Duration = 30 * time.Second
	}
	switch {
	case o.Think == 0:
		o.Think = 24 * time.Millisecond
	case o.Think < 0:
		o.Think = 0
	}
	if o.PlanTicks <= 0 {
		o.PlanTicks = 10
	}
	if o.DeadlineTicks <= 0 {
		o.DeadlineTicks = 10
	}
	if o.State == (state.Config{}) {
		o.State = PlayerState()
	}
	if o.Sample <= 0 {
		o.Sample = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Report is what Run measured: the persona game and the baseline game side by side, on the same
// board, seed and number of ticks.
type Report struct {
	// Game is Options.Game as given (zero fields are defaults, negative counts none): NewEngine(Game)
	// replays the board; Board has the final one.
	Game     Config        `json:"game"`
	Ticks    int           `json:"ticks"`
	GameTime time.Duration `json:"game_time_ns"` // Ticks * TickDuration
	Wall     time.Duration `json:"wall_ns"`      // real (or, under synctest, virtual) time of the persona game
	Virtual  bool          `json:"virtual"`      // played by RunVirtual: Wall is the game time, no CPU is measured
	Think    time.Duration `json:"think_ns"`
	Persona  Side          `json:"persona"`
	Baseline Side          `json:"baseline"`
	Board    World         `json:"board"` // the persona game's final board
}

// Side is one way of playing the game: "persona" (each player a persona with its own rhythm) or
// "baseline" (every player thinks on every tick).
type Side struct {
	Mode    string         `json:"mode"`
	Total   int            `json:"total"` // sum of scores
	Players []PlayerReport `json:"players"`
	// ReactP50 and ReactP95 are nearest-rank percentiles, over every player, of the ticks from an
	// urgent event to the player's next action (1 is the best possible); -1 without urgent events.
	ReactP50 int `json:"react_p50_ticks"`
	ReactP95 int `json:"react_p95_ticks"`
	Threats  int `json:"threats"` // urgent events
	Missed   int `json:"missed"`  // urgent events not answered before a catch
	Caught   int `json:"caught"`
	Actions  int `json:"actions"`  // actions applied, all players
	Thoughts int `json:"thoughts"` // decisions made (handler calls or Decide calls), all players
	// Per player and second of wall time (game time for the baseline, whose wake-ups are its ticks).
	ThoughtsPerSec float64 `json:"thoughts_per_sec"`
	WakesPerSec    float64 `json:"wakes_per_sec"`
	// ThinkDuty is the mean share of a player's time spent thinking (handler busy time / wall,
	// modelled think time included): the baseline's is Think / TickDuration.
	ThinkDuty float64 `json:"think_duty"`
	// ComputeDuty is the mean share of a player's time spent computing its decisions, measured on
	// the CPU (zero under synctest, where the clock does not move while code runs).
	ComputeDuty float64 `json:"compute_duty"`
	// Jain is Jain's fairness index of actions across players: 1 when all acted equally often.
	Jain   float64  `json:"jain_actions"`
	Series []Sample `json:"series"`
}

// PlayerReport is one player's results: the engine's stats and what its persona did.
type PlayerReport struct {
	PlayerStats
	ReactP50 int `json:"react_p50_ticks"` // -1 without urgent events
	ReactP95 int `json:"react_p95_ticks"`
	Thoughts int `json:"thoughts"`
	// UrgentThoughts are thoughts on urgent states (a predator within AdjacentDist).
	UrgentThoughts int `json:"urgent_thoughts"`
	// UrgentWaitMax is the longest wait from the delivery of an urgent state to the start of the
	// thought on it: zero for a player woken by it, at most one think time for a busy one.
	UrgentWaitMax time.Duration `json:"urgent_wait_max_ns"`
	// Superseded counts thoughts whose board became urgent while the player was thinking: their
	// action is dropped, so a player never acts on a stale board.
	Superseded int                `json:"superseded"`
	Wakes      persona.WakeCounts `json:"wakes"`
	Busy       time.Duration      `json:"busy_ns"`    // handler time, think time included
	Compute    time.Duration      `json:"compute_ns"` // CPU time of its decisions, measured
	Duty       float64            `json:"duty"`       // Busy / wall
	// MaxIdleTicks is the longest run of ticks in which the player applied no action.
	MaxIdleTicks int `json:"max_idle_ticks"`
	// The persona's state at the end of the game, and its lowest energy seen at a sample. These and
	// UrgentThoughts, UrgentWaitMax, Superseded and Counts are zero on the baseline side, which has
	// no persona.
	Energy    float64        `json:"energy"`
	MinEnergy float64        `json:"min_energy"`
	Mood      state.Mood     `json:"mood"`
	Cadence   time.Duration  `json:"cadence_ns"`
	Counts    persona.Counts `json:"counts"` // the persona's inbox accounts
}

// Sample is the game at one moment of the time series.
type Sample struct {
	Tick       int             `json:"tick"`
	Total      int             `json:"total"`
	Scores     []int           `json:"scores"`            // by player, Config order
	Energy     []float64       `json:"energy,omitempty"`  // persona side only
	Cadence    []time.Duration `json:"cadence,omitempty"` // persona side only
	Thoughts   []int           `json:"thoughts"`          // by player, so far
	MeanEnergy float64         `json:"mean_energy"`       // persona side only
}

// Run plays the game twice on the same Config: first with each player a persona driven in real
// time, then the baseline (see Baseline) for as many ticks as the first game took.
//
// The persona game: a driver goroutine steps the engine every TickDuration on a time.Ticker and
// after each Step delivers to each player's persona an Item[GameState] (ID "tick/player", Key the
// player, Priority Priority(state), Deadline DeadlineTicks later) whenever the state is news:
// anything but the tick changed, or it is urgent. Personas coalesce, so a thought is on the newest
// state, with the older ones as context. A thought (the handler) plans PlanTicks ahead, thinks for
// Think, submits the plan's first action and leaves the rest to the driver, which replays it one
// action a tick until the player thinks again, is stunned, or is in danger (then only a fresh
// thought moves it, which the urgent state demands at once).
//
// Run returns when the game is over; when ctx ends first it stops early and returns what was played
// with ctx's error. The personas' runtime is shut down before Run returns.
func Run(ctx context.Context, opts Options) (Report, error) {
	opts = opts.withDefaults()
	eng, err := NewEngine(opts.Game)
	if err != nil {
		return Report{}, fmt.Errorf("game: run: %w", err)
	}
	b := newBoard(eng, opts)
	rt := persona.NewRuntime(persona.RuntimeOptions{Logger: opts.Logger, Observer: opts.Observer})
	ps := make([]*persona.Persona[GameState], len(b.minds))
	for i, m := range b.minds {
		p, err := persona.Spawn[GameState](rt, m.name, m, persona.Options{State: opts.State, Coalesce: true})
		if err != nil {
			_, _ = rt.Shutdown(context.Background())
			return Report{}, fmt.Errorf("game: run: %w", err)
		}
		ps[i] = p
	}
	if err := rt.Start(); err != nil {
		_, _ = rt.Shutdown(context.Background())
		return Report{}, fmt.Errorf("game: run: %w", err)
	}

	start := time.Now()
	var (
		wg  sync.WaitGroup
		res driven
	)
	// The driver is a goroutine of its own, like any game loop, owned and awaited here.
	wg.Go(func() { res = b.drive(ctx, rt, ps) })
	wg.Wait()
	played := res.ticks
	wall := time.Since(start)

	// The handlers are sleeping at most one think time; give them ample room, then cut them short.
	sctx, cancel := context.WithTimeout(context.Background(), time.Second+2*opts.Think)
	_, shutErr := rt.Shutdown(sctx)
	cancel()
	if shutErr != nil {
		opts.Logger.Warn("game: runtime shutdown", "err", shutErr)
	}

	rep := Report{Game: opts.Game, Ticks: played, GameTime: time.Duration(played) * TickDuration, Wall: wall,
		Think: opts.Think, Board: eng.World()}
	rep.Persona = b.side(rt.Snapshots(), res, wall)
	base, err := Baseline(opts.Game, played, opts)
	if err != nil {
		return rep, fmt.Errorf("game: run: %w", err)
	}
	rep.Baseline = base
	if res.err != nil {
		return rep, fmt.Errorf("game: run: %w", res.err)
	}
	return rep, nil
}

// board is what the driver and the players' handlers share: the engine and each player's intent.
type board struct {
	eng   *Engine
	opts  Options
	names []string
	minds []*mind

	// mu orders the handlers' submissions against the driver's replay and Step: a thought either
	// lands before a Step (and that Step applies it) or after it (and sees what the Step changed).
	mu      sync.Mutex
	intents []intent
}

// intent is a player's plan between thoughts. Guarded by board.mu.
type intent struct {
	plan  []Action // actions still to replay, one a tick
	fresh bool     // a thought submitted since the last Step: the replay waits a tick
	alarm int      // the last tick whose state was urgent
}

func newBoard(eng *Engine, opts Options) *board {
	b := &board{eng: eng, opts: opts, names: eng.Players()}
	b.intents = make([]intent, len(b.names))
	for i, n := range b.names {
		b.minds = append(b.minds, &mind{b: b, i: i, name: n})
	}
	return b
}

// driven is what the driver observed.
type driven struct {
	ticks   int      // ticks played
	series  []Sample // every Options.Sample of game time, from tick 0
	maxIdle []int    // by player: the longest run of ticks without an applied action
	err     error    // ctx's, when it ended the game early
}

// drive is the game's clock: it steps the engine every tick and delivers the news, until the game is
// over or ctx ends.
func (b *board) drive(ctx context.Context, rt *persona.Runtime, ps []*persona.Persona[GameState]) driven {
	ticks := max(1, int(b.opts.Duration/TickDuration))
	every := max(1, int(b.opts.Sample/TickDuration))
	deadline := time.Duration(b.opts.DeadlineTicks) * TickDuration
	last := make([]GameState, len(b.names))
	sent := make([]bool, len(b.names))
	idle := newIdleTracker(len(b.names))
	d := driven{ticks: ticks, series: []Sample{b.sample(rt.Snapshots(), 0)}}
	tk := time.NewTicker(TickDuration)
	defer tk.Stop()
	for tick := 1; tick <= ticks; tick++ {
		select {
		case <-ctx.Done():
			d.ticks, d.err, d.maxIdle = tick-1, ctx.Err(), idle.max
			return d
		case <-tk.C:
		}
		b.mu.Lock()
		states := b.step()
		b.mu.Unlock()
		for i, it := range b.news(states, last, sent, time.Now(), deadline) {
			if it.ID == "" {
				continue
			}
			if err := ps[i].Deliver(it); err != nil && !errors.Is(err, persona.ErrClosed) {
				b.opts.Logger.Warn("game: deliver", "player", it.Key, "err", err)
			}
		}
		idle.observe(b.eng.Stats())
		if b.opts.OnTick != nil {
			b.opts.OnTick(Frame{World: b.eng.World(), Players: rt.Snapshots()})
		}
		if tick%every == 0 {
			d.series = append(d.series, b.sample(rt.Snapshots(), tick))
		}
	}
	d.maxIdle = idle.max
	return d
}

// step plays one tick: each player's next planned action (unless it just
// thought), the engine's Step, and the plans the new board voids. b.mu is
// held.
func (b *board) step() []GameState {
	for i := range b.intents {
		in := &b.intents[i]
		switch {
		case in.fresh:
			in.fresh = false
		case len(in.plan) > 0:
			_ = b.eng.Submit(b.names[i], in.plan[0]) // names and plans are valid by construction
			in.plan = in.plan[1:]
		}
	}
	b.eng.Step()
	states := b.eng.States()
	for i, gs := range states {
		in := &b.intents[i]
		if gs.Stunned > 0 || gs.Adjacent() {
			in.plan = nil // made for a board without this danger, or a cell left behind
		}
		if gs.Adjacent() {
			in.alarm = gs.Tick
		}
	}
	return states
}

// news is, per player, the item to deliver for its new state at now, or
// the zero item when there is no news: nothing changed but the tick, and it
// is not urgent (an idle player is not woken, nor even handed a state).
// last and sent remember what each was handed.
func (b *board) news(states []GameState, last []GameState, sent []bool, now time.Time, deadline time.Duration) []persona.Item[GameState] {
	out := make([]persona.Item[GameState], len(states))
	for i, gs := range states {
		pr := Priority(gs)
		if sent[i] && pr < UrgentLine && sameView(last[i], gs) {
			continue
		}
		last[i], sent[i] = gs, true
		out[i] = persona.Item[GameState]{ID: fmt.Sprintf("%d/%s", gs.Tick, gs.Player), Key: gs.Player,
			Priority: pr, Complexity: Complexity(gs), Created: now, Deadline: now.Add(deadline), Payload: gs}
	}
	return out
}

// idleTracker measures, per player, the longest run of ticks without an applied action.
type idleTracker struct {
	prev, run, max []int
}

func newIdleTracker(n int) *idleTracker {
	return &idleTracker{prev: make([]int, n), run: make([]int, n), max: make([]int, n)}
}

// observe is called after every Step with the players' stats.
func (t *idleTracker) observe(stats []PlayerStats) {
	for i, s := range stats {
		if s.Actions > t.prev[i] {
			t.run[i] = 0
		} else {
			t.run[i]++
		}
		t.prev[i] = s.Actions
		t.max[i] = max(t.max[i], t.run[i])
	}
}

// sample records scores and the personas' energy and cadence now.
func (b *board) sample(snaps []persona.Snapshot, tick int) Sample {
	s := Sample{Tick: tick}
	for _, st := range b.eng.Stats() {
		s.Scores = append(s.Scores, st.Score)
		s.Total += st.Score
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, snap := range snaps {
		m := b.minds[i]
		s.Energy = append(s.Energy, snap.Energy)
		s.Cadence = append(s.Cadence, snap.Cadence)
		s.Thoughts = append(s.Thoughts, m.thoughts)
		s.MeanEnergy += snap.Energy / float64(len(b.names))
		if !m.sampled || snap.Energy < m.minEnergy {
			m.minEnergy, m.sampled = snap.Energy, true
		}
	}
	return s
}

// Complexity is how hard a state is to think about, the weight by which a thought on it drains the
// player's energy (the seed's complexity): 2 in danger, where every move counts, 1 otherwise. Think
// time stays the same, so a chased player still answers on the next tick, but a long chase wears it
// out.
func Complexity(gs GameState) float64 {
	if gs.Adjacent() {
		return 2
	}
	return 1
}

// sameView reports whether two states of a player differ in nothing but the tick.
func sameView(a, b GameState) bool {
	return a.Player == b.Player && a.Pos == b.Pos && a.Score == b.Score && a.Stunned == b.Stunned &&
		slices.Equal(a.Food, b.Food) && slices.Equal(a.Predators, b.Predators) && slices.Equal(a.Walls, b.Walls)
}

// mind is a player's handler: one thought per item.
type mind struct {
	b    *board
	i    int
	name string

	// Guarded by b.mu: written by the handler and, for minEnergy, by the driver.
	thoughts, urgent, superseded int
	urgentWaitMax                time.Duration
	compute                      time.Duration
	minEnergy                    float64
	sampled                      bool
}

var _ persona.Handler[GameState] = (*mind)(nil)

// Handle thinks about the newest state: it plans, deliberates for the think time, and submits the
// plan's first action unless the board turned urgent meanwhile and this thought was not about it.
func (m *mind) Handle(ctx context.Context, it persona.Item[GameState]) (any, error) {
	start := time.Now()
	gs := it.Payload
	urgent := it.Priority >= UrgentLine
	plan := Plan(gs, m.b.opts.PlanTicks)
	compute := time.Since(start)
	if d := m.b.opts.Think; d > 0 {
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
	b := m.b
	b.mu.Lock()
	defer b.mu.Unlock()
	m.thoughts++
	m.compute += compute
	if urgent {
		m.urgent++
		m.urgentWaitMax = max(m.urgentWaitMax, start.Sub(it.Delivered))
	}
	in := &b.intents[m.i]
	if !urgent && in.alarm > gs.Tick {
		m.superseded++ // the urgent state is queued and will be thought about next
		return nil, nil
	}
	if err := b.eng.Submit(m.name, plan[0]); err != nil {
		return nil, fmt.Errorf("player %s: %w", m.name, err)
	}
	in.plan, in.fresh = plan[1:], true
	return nil, nil
}

// side assembles the persona game's results.
func (b *board) side(snaps []persona.Snapshot, d driven, wall time.Duration) Side {
	s := Side{Mode: "persona", Series: d.series}
	stats := b.eng.Stats()
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, snap := range snaps {
		m := b.minds[i]
		pr := PlayerReport{PlayerStats: stats[i], Thoughts: m.thoughts, UrgentThoughts: m.urgent,
			UrgentWaitMax: m.urgentWaitMax, Superseded: m.superseded, Wakes: snap.Wakes, Busy: snap.Busy,
			Compute: m.compute, MaxIdleTicks: d.maxIdle[i], Energy: snap.Energy, MinEnergy: min(m.minEnergy, snap.Energy),
			Mood: snap.Mood, Cadence: snap.Cadence, Counts: snap.Counts}
		if wall > 0 {
			pr.Duty = snap.Busy.Seconds() / wall.Seconds()
		}
		s.Players = append(s.Players, pr)
	}
	s.finish(wall)
	return s
}

// finish fills the totals, percentiles and per-second figures from the players.
func (s *Side) finish(wall time.Duration) {
	var reactions []int
	var wakes uint64
	var busy, compute time.Duration
	for i := range s.Players {
		p := &s.Players[i]
		p.ReactP50, p.ReactP95 = nearestRank(p.Reactions, 0.50), nearestRank(p.Reactions, 0.95)
		reactions = append(reactions, p.Reactions...)
		s.Total += p.Score
		s.Threats += p.Threats
		s.Missed += p.Missed
		s.Caught += p.Caught
		s.Actions += p.Actions
		s.Thoughts += p.Thoughts
		wakes += p.Wakes.Demand + p.Wakes.Dependency + p.Wakes.Scan
		busy += p.Busy
		compute += p.Compute
	}
	s.ReactP50, s.ReactP95 = nearestRank(reactions, 0.50), nearestRank(reactions, 0.95)
	if n := float64(len(s.Players)); n > 0 && wall > 0 {
		sec := wall.Seconds()
		s.ThoughtsPerSec = float64(s.Thoughts) / n / sec
		s.WakesPerSec = float64(wakes) / n / sec
		s.ThinkDuty = busy.Seconds() / n / sec
		s.ComputeDuty = compute.Seconds() / n / sec
	}
	acts := make([]float64, len(s.Players))
	for i, p := range s.Players {
		acts[i] = float64(p.Actions)
	}
	s.Jain = metrics.Jain(acts)
}

// nearestRank is the nearest-rank q-percentile of xs, -1 when there are none.
func nearestRank(xs []int, q float64) int {
	if len(xs) == 0 {
		return -1
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// Baseline plays cfg for ticks ticks with every player thinking on every tick: each tick, every
// player Decides on its current state and submits, then the engine steps. It runs as fast as the CPU
// allows (no clock), measuring the CPU time of the decisions, and charges each decision opts.Think
// (default 24 ms) of modelled think time, so its ThinkDuty compares with the persona game's: a
// player that thinks every tick spends Think / TickDuration of its time thinking. Its wake-ups are
// one per tick. Only opts.Think and opts.Sample are used.
func Baseline(cfg Config, ticks int, opts Options) (Side, error) {
	opts = opts.withDefaults()
	eng, err := NewEngine(cfg)
	if err != nil {
		return Side{}, fmt.Errorf("baseline: %w", err)
	}
	names := eng.Players()
	every := max(1, int(opts.Sample/TickDuration))
	compute := make([]time.Duration, len(names))
	idle := newIdleTracker(len(names))
	sample := func(tick int) Sample {
		s := Sample{Tick: tick}
		for _, st := range eng.Stats() {
			s.Scores = append(s.Scores, st.Score)
			s.Total += st.Score
			s.Thoughts = append(s.Thoughts, tick)
		}
		return s
	}
	series := []Sample{sample(0)}
	for tick := 1; tick <= ticks; tick++ {
		for i, gs := range eng.States() {
			t0 := time.Now()
			a := Decide(gs)
			compute[i] += time.Since(t0)
			if err := eng.Submit(gs.Player, a); err != nil {
				return Side{}, fmt.Errorf("baseline: %w", err)
			}
		}
		eng.Step()
		idle.observe(eng.Stats())
		if tick%every == 0 {
			series = append(series, sample(tick))
		}
	}
	gameTime := time.Duration(ticks) * TickDuration
	s := Side{Mode: "baseline", Series: series}
	for i, st := range eng.Stats() {
		busy := time.Duration(ticks) * opts.Think
		pr := PlayerReport{PlayerStats: st, Thoughts: ticks, Wakes: persona.WakeCounts{Scan: uint64(ticks)},
			Busy: busy, Compute: compute[i], MaxIdleTicks: idle.max[i]}
		if gameTime > 0 {
			pr.Duty = busy.Seconds() / gameTime.Seconds()
		}
		s.Players = append(s.Players, pr)
	}
	s.finish(gameTime)
	return s, nil
}
