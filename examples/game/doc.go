// Package game is a small real-time grid game for AI players: foragers collect food while predators
// roam. It is the engine behind `persona game` (issue 6), where each player is a persona that receives
// its view of the game, GameState, as the payload of Item[GameState] at 20 ticks a second.
//
// # Rules
//
// The board is W x H cells (default 32x20), optionally with walls. Food lies on the board; food that is
// eaten reappears on a random empty cell FoodRespawn ticks later. Players move one cell (north, south,
// east, west) or stay per tick, only when they Submit an action. Predators move on three ticks out of
// four, chasing the nearest player within ChaseRadius and wandering otherwise. Food is worth one
// point; a player that is caught loses CatchPenalty points, respawns far from the predators and sits
// out StunTicks ticks, invisible to predators. A predator within AdjacentDist (two) moves of a player
// is the urgent event: a player that flees on the next tick escapes a lone predator in the open, one
// that reacts ten ticks late is usually caught. So reacting fast scores, and thinking every tick costs.
//
// # Guarantees
//
//   - Deterministic: every random choice comes from Config.Seed (PCG), so the same Config and the same
//     Submit calls between the same Steps give the same game, event for event, on any platform.
//   - Pure: no goroutines, no timers, no clock. Step advances one tick of game time (TickDuration);
//     a driver decides when to call it.
//   - Actions are consumed once: Step applies each player's latest submitted action and forgets it. A
//     player that submits nothing stays where it is, so thinking is what makes a player move.
//   - Ordering within a Step: players act (in Config order), then predators move (by number), then food
//     respawns, then stuns count down and urgent events fire; Step returns the events in that order.
//   - Warning before harm: nobody is caught without an EventPredatorAdjacent at an earlier tick.
//     The engine records, per urgent event, the ticks until the player's next action
//     (PlayerStats.Reactions; 1 is the best possible) and the urgent events it never answered.
//   - Priority(gs) >= UrgentLine exactly when gs.Adjacent(); Decide is a cheap, deterministic brain.
//
// # Concurrency
//
// An Engine is safe for concurrent use: personas may Submit and read State from their own goroutines
// while one driver goroutine calls Step. GameState, World, Event and the stats it returns share nothing
// with the Engine. Priority, Decide, ASCII and Image are pure functions.
//
// # Testing code that uses it
//
// Drive the Engine by hand: call State, Submit and Step in a loop, with no clock at all; a fixed Seed
// gives a reproducible game, and PlayerStats (actions, food, caught, reactions) are the results to
// assert on. Code that steps the engine from a ticker should run inside testing/synctest so that 20 Hz
// of game time passes instantly.
package game
