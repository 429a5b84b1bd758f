package game

import (
	"errors"
	"fmt"
	"time"
)

// TickRate is the game's clock: the issue asks for game state at 20 ticks a second. The engine itself
// only counts ticks; a driver that wants real time steps it every TickDuration.
const TickRate = 20

// TickDuration is the game time one Step stands for (50 ms at 20 Hz).
const TickDuration = time.Second / TickRate

// AdjacentDist is how close, in moves (Manhattan distance), a predator must be for the player to be in
// danger: the "predator adjacent" urgent event. Two moves, not one, because players move before
// predators within a tick: a predator two moves away can catch a player that stands still for two
// ticks, so a player that reacts on the tick of the event (or the next) gets away from a lone
// predator in the open.
const AdjacentDist = 2

// UrgentLine is the priority at or above which a GameState is urgent. It is the seed's "priority > 0.8
// is never neglected" and the runtime's default urgent line; Priority puts danger at 0.9 or more and
// everything else below 0.8.
const UrgentLine = 0.8

// Sentinel errors. Engine methods wrap them with %w.
var (
	// ErrUnknownPlayer: the name is not one of Config.Players.
	ErrUnknownPlayer = errors.New("game: unknown player")
	// ErrInvalidAction: the Action is not one of Stay, North, South, East, West.
	ErrInvalidAction = errors.New("game: invalid action")
	// ErrInvalidConfig: NewEngine cannot build a board from the Config.
	ErrInvalidConfig = errors.New("game: invalid config")
)

// Pos is a cell of the board: X grows east, Y grows south; the zero value is the top-left cell.
type Pos struct {
	X int `json:"x"`
	Y int `json:"y"`
}

// Add returns the cell one move away in direction a (p itself for Stay). It does not check the board.
func (p Pos) Add(a Action) Pos {
	switch a {
	case North:
		p.Y--
	case South:
		p.Y++
	case East:
		p.X++
	case West:
		p.X--
	}
	return p
}

func (p Pos) String() string { return fmt.Sprintf("(%d,%d)", p.X, p.Y) }

// Dist is the number of moves between a and b on an open board (Manhattan distance): everybody moves
// one cell north, south, east or west per tick, never diagonally.
func Dist(a, b Pos) int { return abs(a.X-b.X) + abs(a.Y-b.Y) }

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// Action is what a player does in one tick. The zero value is Stay.
type Action uint8

// The five actions. Moves into a wall or off the board leave the player where it is.
const (
	Stay Action = iota
	North
	South
	East
	West
	numActions
)

// moves are the four real moves in the fixed order every tie is broken by.
var moves = [4]Action{North, South, East, West}

// Valid reports whether a is one of the five actions.
func (a Action) Valid() bool { return a < numActions }

func (a Action) String() string {
	switch a {
	case Stay:
		return "stay"
	case North:
		return "N"
	case South:
		return "S"
	case East:
		return "E"
	case West:
		return "W"
	}
	return fmt.Sprintf("Action(%d)", uint8(a))
}

// Config describes a game. The zero value is a valid game: a 32x20 open field, four players (ada, bo,
// cy, dee), three predators, twelve food items, seed 0. For every count below, zero means the default
// and a negative value means none; the defaults are filled in one place (Config.withDefaults).
type Config struct {
	W, H      int      // board size in cells; default 32x20, each at least 4
	Players   []string // player names, unique and non-empty; default ada, bo, cy, dee
	Predators int      // predators roaming the board; default 3
	Food      int      // food items on the board at once (eaten food respawns); default 12
	Seed      int64    // every random choice derives from it: same Config, same game

	Walls        int // wall cells, laid as short straight segments; default none (open field)
	View         int // how far (in moves) a player sees food, predators and walls; default 8
	ChaseRadius  int // a predator chases the nearest player within this many moves; default 6
	FoodRespawn  int // ticks before eaten food reappears elsewhere; default 20 (one second)
	CatchPenalty int // points a caught player loses; default 5 (five food items)
	StunTicks    int // ticks a caught player sits out after it respawns; default 20 (one second)
}

var defaultPlayers = []string{"ada", "bo", "cy", "dee"}

// withDefaults returns c with zero fields set to their defaults and negative counts set to zero.
func (c Config) withDefaults() Config {
	if c.W == 0 {
		c.W = 32
	}
	if c.H == 0 {
		c.H = 20
	}
	if len(c.Players) == 0 {
		c.Players = defaultPlayers
	}
	c.Players = append([]string(nil), c.Players...) // the caller keeps its slice
	def := func(v *int, d int) {
		switch {
		case *v == 0:
			*v = d
		case *v < 0:
			*v = 0
		}
	}
	def(&c.Predators, 3)
	def(&c.Food, 12)
	def(&c.Walls, 0)
	def(&c.View, 8)
	def(&c.ChaseRadius, 6)
	def(&c.FoodRespawn, 20)
	def(&c.CatchPenalty, 5)
	def(&c.StunTicks, 20)
	return c
}

// validate checks a Config that already has its defaults.
func (c Config) validate() error {
	if c.W < 4 || c.H < 4 || c.W > 1024 || c.H > 1024 {
		return fmt.Errorf("%w: board %dx%d, want 4..1024 on each side", ErrInvalidConfig, c.W, c.H)
	}
	seen := make(map[string]bool, len(c.Players))
	for _, n := range c.Players {
		if n == "" {
			return fmt.Errorf("%w: empty player name", ErrInvalidConfig)
		}
		if seen[n] {
			return fmt.Errorf("%w: duplicate player %q", ErrInvalidConfig, n)
		}
		seen[n] = true
	}
	// Keep at least half the board free so random placement always finds room quickly.
	if used := c.Walls + c.Food + c.Predators + len(c.Players); 2*used > c.W*c.H {
		return fmt.Errorf("%w: %d walls, food, predators and players on %d cells, want at most half",
			ErrInvalidConfig, used, c.W*c.H)
	}
	return nil
}

// World is a snapshot of the whole board, for rendering and for comparing runs. It shares nothing with
// the Engine it came from. The zero value is an empty 0x0 board.
type World struct {
	Tick      int          `json:"tick"`
	W         int          `json:"w"`
	H         int          `json:"h"`
	Walls     []Pos        `json:"walls"` // row-major order
	Food      []Pos        `json:"food"`  // row-major order
	Players   []PlayerView `json:"players"`
	Predators []Pos        `json:"predators"` // by predator number
}

// PlayerView is one player as the board shows it.
type PlayerView struct {
	Name    string `json:"name"`
	Glyph   byte   `json:"glyph"` // its letter on the ASCII board
	Pos     Pos    `json:"pos"`
	Score   int    `json:"score"`
	Stunned int    `json:"stunned"` // ticks left sitting out after a catch; 0 when playing
}

// glyphs gives each player a distinct letter: its initial when free, otherwise a digit.
func glyphs(names []string) []byte {
	out := make([]byte, len(names))
	used := map[byte]bool{'#': true, '.': true, '*': true, 'X': true}
	for i, n := range names {
		c := n[0]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c < 'a' || c > 'z' || used[c] {
			c = '@'
			for d := byte('1'); d <= '9'; d++ {
				if !used[d] {
					c = d
					break
				}
			}
		}
		used[c] = true
		out[i] = c
	}
	return out
}
