package game

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
)

// predatorRest is how many ticks a predator sits still after a catch, so it does not camp on the
// respawned player's trail and other players get a breather.
const predatorRest = 10

// predatorPace: a predator skips one move in predatorPace, so it is slower than a player (3/4 of its
// speed) and a player that flees in time outruns it; one that does not is caught.
const predatorPace = 4

// respawnTries bounds the random search for a respawn cell far from every predator.
const respawnTries = 32

// EventKind says what happened in an Event.
type EventKind uint8

// The events Step reports.
const (
	// EventFoodEaten: Player stepped on food at Pos and scored a point.
	EventFoodEaten EventKind = iota + 1
	// EventCaught: Predator caught Player at Pos; the player lost CatchPenalty points and respawned
	// at To, where it sits out StunTicks ticks.
	EventCaught
	// EventPredatorAdjacent is the urgent event: Predator came within AdjacentDist moves (Dist) of
	// Player, who was not in danger the tick before. It fires once per danger spell, on the tick it
	// begins. Nobody is caught without one at an earlier tick, and a player that flees on the next
	// Step gets away from a lone predator in the open.
	EventPredatorAdjacent
	// EventFoodSpawned: food reappeared at Pos.
	EventFoodSpawned
)

func (k EventKind) String() string {
	switch k {
	case EventFoodEaten:
		return "food-eaten"
	case EventCaught:
		return "caught"
	case EventPredatorAdjacent:
		return "predator-adjacent"
	case EventFoodSpawned:
		return "food-spawned"
	}
	return fmt.Sprintf("EventKind(%d)", uint8(k))
}

// Event is something that happened during one Step. Fields that do not apply to the Kind are zero
// (Predator is -1 when no predator is involved).
type Event struct {
	Tick     int       `json:"tick"`
	Kind     EventKind `json:"kind"`
	Player   string    `json:"player,omitempty"`
	Pos      Pos       `json:"pos"`
	Predator int       `json:"predator"`
	Dist     int       `json:"dist,omitempty"` // EventPredatorAdjacent: moves between them
	To       Pos       `json:"to"`             // EventCaught: where the player respawned
}

// Sighting is something a player sees: where, and how many moves away.
type Sighting struct {
	Pos  Pos `json:"pos"`
	Dist int `json:"dist"`
}

// GameState is one player's view of the game at a tick: the payload of Item[GameState]. It shares
// nothing with the Engine, so it may be handed to another goroutine. Food, Predators and Walls list
// what lies within View moves: Food and Predators nearest first (ties in row-major order), Walls in
// row-major order. The zero value is a player at (0,0) of an empty 0x0 board.
type GameState struct {
	Tick      int        `json:"tick"`
	Player    string     `json:"player"`
	Pos       Pos        `json:"pos"`
	Score     int        `json:"score"`
	Stunned   int        `json:"stunned"` // ticks left sitting out; actions submitted meanwhile are dropped
	W         int        `json:"w"`
	H         int        `json:"h"`
	View      int        `json:"view"`
	Food      []Sighting `json:"food"`
	Predators []Sighting `json:"predators"`
	Walls     []Pos      `json:"walls"`
}

// NearestPredator returns the closest predator in view.
func (gs GameState) NearestPredator() (Sighting, bool) {
	if len(gs.Predators) == 0 {
		return Sighting{}, false
	}
	return gs.Predators[0], true
}

// NearestFood returns the closest food in view.
func (gs GameState) NearestFood() (Sighting, bool) {
	if len(gs.Food) == 0 {
		return Sighting{}, false
	}
	return gs.Food[0], true
}

// Adjacent reports whether the player is in danger: playing (not stunned) with a predator within
// AdjacentDist moves. It is exactly when Priority is urgent.
func (gs GameState) Adjacent() bool {
	p, ok := gs.NearestPredator()
	return ok && gs.Stunned == 0 && p.Dist <= AdjacentDist
}

// PlayerStats are one player's counts since the game began.
type PlayerStats struct {
	Name    string `json:"name"`
	Score   int    `json:"score"`
	Food    int    `json:"food"`    // food eaten
	Caught  int    `json:"caught"`  // times caught
	Actions int    `json:"actions"` // actions consumed and applied (Stay included)
	Moves   int    `json:"moves"`   // actions that changed the player's cell
	Dropped int    `json:"dropped"` // actions consumed while stunned, not applied
	Threats int    `json:"threats"` // urgent events (EventPredatorAdjacent)
	// Reactions holds, per urgent event the player answered, the ticks from the event to the Step that
	// applied the player's next action: 1 means it acted on the very next tick, the best possible.
	Reactions []int `json:"reactions"`
	Missed    int   `json:"missed"` // urgent events not answered before the player was caught
}

// Scoreboard is every player's stats, best score first (ties by name).
type Scoreboard []PlayerStats

// Total is the sum of the players' scores.
func (s Scoreboard) Total() int {
	t := 0
	for _, p := range s {
		t += p.Score
	}
	return t
}

// String renders the scoreboard as a small table; reaction times are in ticks.
func (s Scoreboard) String() string {
	out := fmt.Sprintf("%-8s %6s %5s %6s %7s %7s %8s %8s\n",
		"player", "score", "food", "caught", "actions", "threats", "react50", "react95")
	for _, p := range s {
		out += fmt.Sprintf("%-8s %6d %5d %6d %7d %7d %8s %8s\n", p.Name, p.Score, p.Food, p.Caught,
			p.Actions, p.Threats, percentile(p.Reactions, 0.50), percentile(p.Reactions, 0.95))
	}
	return out
}

// percentile is the nearest-rank percentile of xs, "-" when there are none.
func percentile(xs []int, q float64) string {
	if len(xs) == 0 {
		return "-"
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.999999) - 1
	return fmt.Sprint(s[min(max(i, 0), len(s)-1)])
}

type player struct {
	name     string
	glyph    byte
	pos      Pos
	pending  Action
	has      bool // pending holds an action not yet consumed
	stunned  int
	caughtAt int  // tick of the last catch, so its stun is not shortened in the same Step
	adjacent bool // in danger at the end of the last Step
	awaiting bool // an urgent event has not been answered yet
	onset    int  // tick of the urgent event being awaited
	stats    PlayerStats
}

type predator struct {
	pos     Pos
	heading Action
	rest    int
}

// Engine is the game: a board, players that act only through Submit, predators and food that the
// engine moves itself. It is pure: it holds no goroutines or timers and only counts ticks; the same
// Config and the same Submit calls between the same Steps give the same game.
//
// An Engine is safe for concurrent use: players may Submit and read State from their own goroutines
// while one driver calls Step (which actions a Step sees then depends on timing, of course). Create one
// with NewEngine; the zero value is not usable.
type Engine struct {
	mu       sync.Mutex
	cfg      Config
	rng      *rand.Rand
	tick     int
	wall     []bool // by cell index y*W+x
	food     []bool
	respawns []int // ticks at which eaten food reappears, ascending
	players  []player
	index    map[string]int
	preds    []predator
}

// NewEngine builds the board of cfg at tick 0: walls, then predators, then players as far from the
// predators as it can find room (beyond ChaseRadius when possible), then food, all placed at random
// from cfg.Seed. It fails (ErrInvalidConfig) on a bad size, empty or duplicate names, or a board more
// than half full.
func NewEngine(cfg Config) (*Engine, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("new engine: %w", err)
	}
	n := cfg.W * cfg.H
	e := &Engine{
		cfg: cfg,
		// PCG is fully specified, so a seed gives the same game on every platform and Go release.
		rng:   rand.New(rand.NewPCG(uint64(cfg.Seed), 0x9e3779b97f4a7c15)),
		wall:  make([]bool, n),
		food:  make([]bool, n),
		index: make(map[string]int, len(cfg.Players)),
		preds: make([]predator, cfg.Predators),
	}
	e.layWalls()
	for k := range e.preds {
		e.preds[k] = predator{pos: e.randomFree(), heading: moves[e.rng.IntN(4)]}
	}
	gl := glyphs(cfg.Players)
	e.players = make([]player, len(cfg.Players))
	for i, name := range cfg.Players {
		e.index[name] = i
		e.players[i] = player{name: name, glyph: gl[i], pos: e.safeCell(), caughtAt: -1}
		e.players[i].stats.Name = name
	}
	for range cfg.Food {
		e.food[e.idx(e.randomFree())] = true
	}
	for i := range e.players {
		d, _ := e.nearestPredator(e.players[i].pos)
		e.players[i].adjacent = d <= AdjacentDist
	}
	return e, nil
}

// layWalls places cfg.Walls wall cells as straight segments of up to four cells.
func (e *Engine) layWalls() {
	left := e.cfg.Walls
	for left > 0 {
		p := e.randomFree()
		dir := moves[e.rng.IntN(4)]
		for l := 0; l < 4 && left > 0; l++ {
			if !e.inBounds(p) || !e.isFree(p) {
				break
			}
			e.wall[e.idx(p)] = true
			left--
			p = p.Add(dir)
		}
	}
}

func (e *Engine) idx(p Pos) int { return p.Y*e.cfg.W + p.X }

func (e *Engine) inBounds(p Pos) bool {
	return p.X >= 0 && p.Y >= 0 && p.X < e.cfg.W && p.Y < e.cfg.H
}

// open reports whether a mover may enter p: on the board and not a wall.
func (e *Engine) open(p Pos) bool { return e.inBounds(p) && !e.wall[e.idx(p)] }

func (e *Engine) predatorAt(p Pos) int {
	for k := range e.preds {
		if e.preds[k].pos == p {
			return k
		}
	}
	return -1
}

// isFree reports whether p (on the board) holds nothing at all: for placing things.
func (e *Engine) isFree(p Pos) bool {
	i := e.idx(p)
	if e.wall[i] || e.food[i] || e.predatorAt(p) >= 0 {
		return false
	}
	for j := range e.players {
		if e.players[j].pos == p {
			return false
		}
	}
	return true
}

// randomFree returns a random empty cell. validate keeps half the board free, so a few draws suffice;
// the scan afterwards only guards against bad luck.
func (e *Engine) randomFree() Pos {
	n := e.cfg.W * e.cfg.H
	for range 64 {
		i := e.rng.IntN(n)
		if p := (Pos{i % e.cfg.W, i / e.cfg.W}); e.isFree(p) {
			return p
		}
	}
	start := e.rng.IntN(n)
	for j := range n {
		i := (start + j) % n
		if p := (Pos{i % e.cfg.W, i / e.cfg.W}); e.isFree(p) {
			return p
		}
	}
	panic("game: board full") // unreachable: validate keeps half the board free
}

// safeCell returns an empty cell beyond every predator's chase radius, or the farthest of
// respawnTries random ones when the board is too crowded for that.
func (e *Engine) safeCell() Pos {
	best, bestD := Pos{}, -1
	for range respawnTries {
		p := e.randomFree()
		d, _ := e.nearestPredator(p)
		if d > e.cfg.ChaseRadius {
			return p
		}
		if d > bestD {
			best, bestD = p, d
		}
	}
	return best
}

// nearestPredator returns the distance to and number of the closest predator (lowest number on ties),
// or a huge distance and -1 without predators.
func (e *Engine) nearestPredator(p Pos) (int, int) {
	d, k := int(^uint(0)>>1), -1
	for j := range e.preds {
		if dj := Dist(p, e.preds[j].pos); dj < d {
			d, k = dj, j
		}
	}
	return d, k
}

// Submit records a as player's next action, replacing any action submitted since the last Step. The
// next Step consumes it: an action is applied once, and a player that submits nothing stays put.
func (e *Engine) Submit(player string, a Action) error {
	if !a.Valid() {
		return fmt.Errorf("submit %s for %q: %w", a, player, ErrInvalidAction)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	i, ok := e.index[player]
	if !ok {
		return fmt.Errorf("submit for %q: %w", player, ErrUnknownPlayer)
	}
	e.players[i].pending, e.players[i].has = a, true
	return nil
}

// Step advances the game one tick and returns what happened, in this order:
//
//  1. each player, in Config order, applies its pending action (stunned players drop it);
//     a player that walks onto a predator is caught, one that walks onto food eats it;
//  2. each predator, in number order, rests, skips (one move in four), chases the nearest playing
//     player within ChaseRadius, or wanders; landing on a player catches it;
//  3. eaten food due back reappears on a random empty cell;
//  4. stuns count down, and a player newly within AdjacentDist of a predator gets the urgent
//     EventPredatorAdjacent.
//
// Stunned players are invisible to predators. Step returns nil when nothing happened.
func (e *Engine) Step() []Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.tick++
	t := e.tick
	var evs []Event

	for i := range e.players {
		p := &e.players[i]
		a, has := p.pending, p.has
		p.has = false
		if !has {
			continue
		}
		if p.stunned > 0 {
			p.stats.Dropped++
			continue
		}
		p.stats.Actions++
		if p.awaiting {
			p.stats.Reactions = append(p.stats.Reactions, t-p.onset)
			p.awaiting = false
		}
		if np := p.pos.Add(a); a != Stay && e.open(np) {
			p.pos = np
			p.stats.Moves++
		}
	}
	for i := range e.players {
		p := &e.players[i]
		if p.stunned > 0 {
			continue
		}
		if k := e.predatorAt(p.pos); k >= 0 {
			evs = e.catch(evs, i, k)
			continue
		}
		if c := e.idx(p.pos); e.food[c] {
			e.food[c] = false
			e.respawns = append(e.respawns, t+e.cfg.FoodRespawn)
			p.stats.Food++
			p.stats.Score++
			evs = append(evs, Event{Tick: t, Kind: EventFoodEaten, Player: p.name, Pos: p.pos, Predator: -1})
		}
	}

	for k := range e.preds {
		if !e.movePredator(k) {
			continue
		}
		for i := range e.players {
			if e.players[i].stunned == 0 && e.players[i].pos == e.preds[k].pos {
				evs = e.catch(evs, i, k)
				break // one catch per predator per tick: it then rests
			}
		}
	}

	for len(e.respawns) > 0 && e.respawns[0] <= t {
		e.respawns = e.respawns[1:]
		p := e.randomFree()
		e.food[e.idx(p)] = true
		evs = append(evs, Event{Tick: t, Kind: EventFoodSpawned, Pos: p, Predator: -1})
	}

	for i := range e.players {
		p := &e.players[i]
		if p.stunned > 0 && p.caughtAt != t {
			p.stunned--
		}
		if p.stunned > 0 {
			p.adjacent = false
			continue
		}
		d, k := e.nearestPredator(p.pos)
		adj := d <= AdjacentDist
		if adj && !p.adjacent {
			p.stats.Threats++
			if !p.awaiting {
				p.awaiting, p.onset = true, t
			}
			evs = append(evs, Event{Tick: t, Kind: EventPredatorAdjacent, Player: p.name, Pos: p.pos,
				Predator: k, Dist: d})
		}
		p.adjacent = adj
	}
	return evs
}

// catch handles predator k catching player i.
func (e *Engine) catch(evs []Event, i, k int) []Event {
	p := &e.players[i]
	at := p.pos
	p.stats.Score -= e.cfg.CatchPenalty
	p.stats.Caught++
	if p.awaiting {
		p.stats.Missed++
		p.awaiting = false
	}
	p.adjacent = false
	p.pos = Pos{-1, -1} // off the board while a new cell is chosen, so it does not block itself
	p.pos = e.safeCell()
	p.stunned = e.cfg.StunTicks
	p.caughtAt = e.tick
	e.preds[k].rest = predatorRest
	return append(evs, Event{Tick: e.tick, Kind: EventCaught, Player: p.name, Pos: at, Predator: k, To: p.pos})
}

// movePredator moves predator k one cell, if it moves this tick, and reports whether it moved.
func (e *Engine) movePredator(k int) bool {
	pr := &e.preds[k]
	if pr.rest > 0 {
		pr.rest--
		return false
	}
	if (e.tick+k)%predatorPace == 0 {
		return false
	}
	enterable := func(q Pos) bool { return e.open(q) && e.predatorAt(q) < 0 }

	// Chase the nearest playing player in range, greedily along the axis with the longer gap.
	target, best := -1, e.cfg.ChaseRadius+1
	for i := range e.players {
		if e.players[i].stunned > 0 {
			continue
		}
		if d := Dist(pr.pos, e.players[i].pos); d < best {
			target, best = i, d
		}
	}
	if target >= 0 {
		to := e.players[target].pos
		dx, dy := to.X-pr.pos.X, to.Y-pr.pos.Y
		var hx, vy Action
		if dx > 0 {
			hx = East
		} else if dx < 0 {
			hx = West
		}
		if dy > 0 {
			vy = South
		} else if dy < 0 {
			vy = North
		}
		first, second := hx, vy
		if abs(dy) > abs(dx) || (abs(dy) == abs(dx) && e.rng.IntN(2) == 0) {
			first, second = vy, hx
		}
		for _, a := range [2]Action{first, second} {
			if a != Stay && enterable(pr.pos.Add(a)) {
				pr.pos, pr.heading = pr.pos.Add(a), a
				return true
			}
		}
	} else if e.rng.IntN(5) == 0 {
		// Wander: keep the heading most of the time, so predators sweep rather than jitter.
		pr.heading = moves[e.rng.IntN(4)]
	}
	if q := pr.pos.Add(pr.heading); enterable(q) {
		pr.pos = q
		return true
	}
	// Blocked: try the other directions from a random start.
	s := e.rng.IntN(4)
	for j := range 4 {
		a := moves[(s+j)%4]
		if q := pr.pos.Add(a); enterable(q) {
			pr.pos, pr.heading = q, a
			return true
		}
	}
	return false
}

// Tick returns the number of Steps taken so far.
func (e *Engine) Tick() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.tick
}

// Config returns the engine's Config with its defaults filled in.
func (e *Engine) Config() Config {
	c := e.cfg
	c.Players = slices.Clone(c.Players)
	return c
}

// Players returns the player names in Config order.
func (e *Engine) Players() []string { return slices.Clone(e.cfg.Players) }

// State returns player's view of the game now.
func (e *Engine) State(player string) (GameState, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	i, ok := e.index[player]
	if !ok {
		return GameState{}, fmt.Errorf("state of %q: %w", player, ErrUnknownPlayer)
	}
	return e.state(i), nil
}

// States returns every player's view, in Config order, all taken at the same tick.
func (e *Engine) States() []GameState {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]GameState, len(e.players))
	for i := range e.players {
		out[i] = e.state(i)
	}
	return out
}

func (e *Engine) state(i int) GameState {
	p := &e.players[i]
	v := e.cfg.View
	gs := GameState{Tick: e.tick, Player: p.name, Pos: p.pos, Score: p.stats.Score, Stunned: p.stunned,
		W: e.cfg.W, H: e.cfg.H, View: v}
	// Scan the diamond of cells within View moves in row-major order; the stable sort by distance
	// then keeps row-major order among equals.
	for y := max(p.pos.Y-v, 0); y <= min(p.pos.Y+v, e.cfg.H-1); y++ {
		r := v - abs(y-p.pos.Y)
		for x := max(p.pos.X-r, 0); x <= min(p.pos.X+r, e.cfg.W-1); x++ {
			q := Pos{x, y}
			switch c := e.idx(q); {
			case e.wall[c]:
				gs.Walls = append(gs.Walls, q)
			case e.food[c]:
				gs.Food = append(gs.Food, Sighting{q, Dist(p.pos, q)})
			}
		}
	}
	for k := range e.preds {
		if d := Dist(p.pos, e.preds[k].pos); d <= v {
			gs.Predators = append(gs.Predators, Sighting{e.preds[k].pos, d})
		}
	}
	byDist := func(a, b Sighting) int {
		return cmp.Or(cmp.Compare(a.Dist, b.Dist), cmp.Compare(a.Pos.Y, b.Pos.Y), cmp.Compare(a.Pos.X, b.Pos.X))
	}
	slices.SortStableFunc(gs.Food, byDist)
	slices.SortStableFunc(gs.Predators, byDist)
	return gs
}

// Stats returns every player's stats in Config order.
func (e *Engine) Stats() []PlayerStats {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]PlayerStats, len(e.players))
	for i := range e.players {
		out[i] = e.players[i].stats
		out[i].Reactions = slices.Clone(out[i].Reactions)
	}
	return out
}

// Scoreboard returns every player's stats, best score first.
func (e *Engine) Scoreboard() Scoreboard {
	s := Scoreboard(e.Stats())
	slices.SortStableFunc(s, func(a, b PlayerStats) int {
		return cmp.Or(cmp.Compare(b.Score, a.Score), cmp.Compare(a.Name, b.Name))
	})
	return s
}

// World returns a snapshot of the whole board.
func (e *Engine) World() World {
	e.mu.Lock()
	defer e.mu.Unlock()
	w := World{Tick: e.tick, W: e.cfg.W, H: e.cfg.H}
	for c := range e.wall {
		p := Pos{c % e.cfg.W, c / e.cfg.W}
		if e.wall[c] {
			w.Walls = append(w.Walls, p)
		}
		if e.food[c] {
			w.Food = append(w.Food, p)
		}
	}
	for _, p := range e.players {
		w.Players = append(w.Players, PlayerView{Name: p.name, Glyph: p.glyph, Pos: p.pos,
			Score: p.stats.Score, Stunned: p.stunned})
	}
	for _, pr := range e.preds {
		w.Predators = append(w.Predators, pr.pos)
	}
	return w
}
