package game

import "slices"

// FleeDist is how close a predator must be for Decide to run from it: one move beyond AdjacentDist, so
// a player that happens to think then steps away before it is in danger at all.
const FleeDist = AdjacentDist + 1

// wanderSpan is how many ticks a wandering player keeps one heading: long enough to cross a good part
// of its view, short enough to turn before it has combed the same strip twice.
const wanderSpan = 12

// Priority scores a GameState for a player's inbox, in [0, 1]:
//
//   - 0.9 to 0.98 when the player is in danger (Adjacent: a predator within AdjacentDist moves), the
//     closer the higher: urgent, at or above UrgentLine, so it wakes a resting player at once;
//   - 0.6 to 0.75 when a predator is in view but farther: worth a look at the next scan, not a wake-up;
//   - 0.3 to 0.6 when food is in view, the closer the higher;
//   - 0.1 otherwise (nothing to do but wander), and 0.05 while stunned (nothing can be done).
//
// It is urgent exactly when gs.Adjacent() is true.
func Priority(gs GameState) float64 {
	if gs.Stunned > 0 {
		return 0.05
	}
	if gs.Adjacent() {
		pr, _ := gs.NearestPredator()
		return 0.9 + 0.04*float64(AdjacentDist-max(pr.Dist, 0))
	}
	p := 0.1
	if f, ok := gs.NearestFood(); ok {
		p = max(p, 0.3+0.3*closeness(f.Dist, gs.View))
	}
	if pr, ok := gs.NearestPredator(); ok {
		p = max(p, 0.6+0.15*closeness(pr.Dist-AdjacentDist, gs.View))
	}
	return p
}

// closeness maps a distance of 1 to 1 and a distance of view (or more) to 0.
func closeness(d, view int) float64 {
	if view <= 1 || d <= 1 {
		return 1
	}
	return max(0, 1-float64(d-1)/float64(view-1))
}

// Decide is a cheap deterministic brain: flee the nearest predator if it is within FleeDist moves;
// else walk the shortest safe path to the nearest food in view; else wander on a heading that depends
// only on the player's name and the tick. A stunned player stays. Decide never steps into a wall or off
// the board, and it steps next to a predator only when every other choice is worse.
func Decide(gs GameState) Action {
	if gs.Stunned > 0 {
		return Stay
	}
	m := newLocalMap(gs)
	if pr, ok := gs.NearestPredator(); ok && pr.Dist <= FleeDist {
		return m.flee()
	}
	if a, ok := m.seekFood(); ok {
		return a
	}
	return m.wander()
}

// localMap is the part of the board a player sees: the square of side 2*View+1 around it, with cells
// beyond the board, walls, and cells in danger (within AdjacentDist of a seen predator) marked.
type localMap struct {
	gs      *GameState
	origin  Pos // board position of the square's top-left cell
	side    int
	blocked []bool
	danger  []bool
	food    []bool
}

func newLocalMap(gs GameState) *localMap {
	v := max(gs.View, FleeDist+2) // enough room to judge a flight even with a tiny view
	m := &localMap{gs: &gs, origin: Pos{gs.Pos.X - v, gs.Pos.Y - v}, side: 2*v + 1}
	n := m.side * m.side
	m.blocked, m.danger, m.food = make([]bool, n), make([]bool, n), make([]bool, n)
	for i := range n {
		q := Pos{m.origin.X + i%m.side, m.origin.Y + i/m.side}
		m.blocked[i] = q.X < 0 || q.Y < 0 || q.X >= gs.W || q.Y >= gs.H
		for _, pr := range gs.Predators {
			if Dist(q, pr.Pos) <= AdjacentDist {
				m.danger[i] = true
				break
			}
		}
	}
	for _, w := range gs.Walls {
		if i, ok := m.at(w); ok {
			m.blocked[i] = true
		}
	}
	for _, f := range gs.Food {
		if i, ok := m.at(f.Pos); ok {
			m.food[i] = true
		}
	}
	return m
}

// at returns q's index in the square, false when q lies outside it.
func (m *localMap) at(q Pos) (int, bool) {
	x, y := q.X-m.origin.X, q.Y-m.origin.Y
	if x < 0 || y < 0 || x >= m.side || y >= m.side {
		return 0, false
	}
	return y*m.side + x, true
}

// open reports whether a player may step onto q. Cells outside the square are unknown: not open.
func (m *localMap) open(q Pos) bool {
	i, ok := m.at(q)
	return ok && !m.blocked[i]
}

func (m *localMap) safe(q Pos) bool {
	i, ok := m.at(q)
	return ok && !m.blocked[i] && !m.danger[i]
}

// seekFood returns the first move of a shortest path through safe cells to the nearest food in view
// (breadth-first; ties by the order North, South, East, West).
func (m *localMap) seekFood() (Action, bool) {
	if len(m.gs.Food) == 0 {
		return Stay, false
	}
	start, _ := m.at(m.gs.Pos)
	first := make([]Action, len(m.blocked)) // Stay marks "not reached yet"
	seen := make([]bool, len(m.blocked))
	seen[start] = true
	queue := []int{start}
	for len(queue) > 0 {
		c := queue[0]
		queue = queue[1:]
		cp := Pos{m.origin.X + c%m.side, m.origin.Y + c/m.side}
		for _, a := range moves {
			q := cp.Add(a)
			i, ok := m.at(q)
			if !ok || seen[i] || !m.safe(q) {
				continue
			}
			seen[i] = true
			first[i] = first[c]
			if c == start {
				first[i] = a
			}
			if m.food[i] {
				return first[i], true
			}
			queue = append(queue, i)
		}
	}
	return Stay, false
}

// wander walks on a heading drawn from the player's name and the tick, turning clockwise-ish past
// walls, the board's edge and danger; it stays when boxed in.
func (m *localMap) wander() Action {
	h := 0
	for _, c := range []byte(m.gs.Player) {
		h = h*31 + int(c)
	}
	h = (h&0x7fffffff + m.gs.Tick/wanderSpan) % 4
	for j := range 4 {
		a := moves[(h+j)%4]
		if m.safe(m.gs.Pos.Add(a)) {
			return a
		}
	}
	return Stay
}

// flee picks the move that leaves the player farthest from the nearest predator (counting up to one
// move past FleeDist: beyond that all are equally safe for now), then the one with the most safe room
// around it (so it does not run into a corner while it has a choice), then the one farthest from all
// predators together; remaining ties go to the order Stay, North, South, East, West.
func (m *localMap) flee() Action {
	best, bestKey := Stay, [3]int{-1, -1, -1}
	for _, a := range [5]Action{Stay, North, South, East, West} {
		q := m.gs.Pos.Add(a)
		if a != Stay && !m.open(q) {
			continue
		}
		near, sum := int(^uint(0)>>1), 0 // no predators in view: all moves equally safe
		for _, pr := range m.gs.Predators {
			d := Dist(q, pr.Pos)
			near = min(near, d)
			sum += d
		}
		key := [3]int{min(near, FleeDist+1), m.room(q), sum}
		if slices.Compare(key[:], bestKey[:]) > 0 {
			best, bestKey = a, key
		}
	}
	return best
}

// room counts the open, safe cells within two moves of q.
func (m *localMap) room(q Pos) int {
	n := 0
	for dy := -2; dy <= 2; dy++ {
		for dx := -2 + abs(dy); dx <= 2-abs(dy); dx++ {
			if m.safe(Pos{q.X + dx, q.Y + dy}) {
				n++
			}
		}
	}
	return n
}
