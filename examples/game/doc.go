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
//   - The Engine is pure: no goroutines, no timers, no clock. Step advances one tick of game time
//     (TickDuration); a driver decides when to call it.
//   - Actions are consumed once: Step applies each player's latest submitted action and forgets it. A
//     player that submits nothing stays where it is, so thinking is what makes a player move.
//   - Ordering within a Step: players act (in Config order), then predators move (by number), then food
//     respawns, then stuns count down and urgent events fire; Step returns the events in that order.
//   - Warning before harm: nobody is caught without an EventPredatorAdjacent at an earlier tick.
//     The engine records, per urgent event, the ticks until the player's next action
//     (PlayerStats.Reactions; 1 is the best possible) and the urgent events it never answered.
//   - Priority(gs) >= UrgentLine exactly when gs.Adjacent(); Decide is a cheap, deterministic brain.
//
// # Players as personas
//
// Run plays the game with each player a persona of package persona, in real time, and then replays
// the same board with every player thinking on every tick (Baseline), reporting both: score,
// reaction ticks to urgent events (p50/p95), actions, thoughts and wake-ups per player, think duty.
//
//   - Delivery: a driver goroutine steps the engine every TickDuration (a time.Ticker) and hands each
//     player its GameState as an Item[GameState] (Key the player, Priority(state), Complexity(state),
//     a deadline DeadlineTicks ahead) whenever it is news: urgent, or different in anything but the
//     tick. Personas coalesce, so a thought is always on the newest state delivered.
//   - Rhythm: the persona policy is the seed's, with durations divided by GameTimeScale
//     (PlayerState): a player scans every 300 ms to 1 s by mood, a state at or above UrgentLine (a
//     predator within AdjacentDist) wakes a resting player at once, thoughts drain energy (twice as
//     fast in danger) and a tired player scans every 700 ms and ignores far food; below 0.2 energy,
//     everything but danger.
//   - A thought plans PlanTicks ahead (Plan), sleeps the modelled think time (Options.Think, 24 ms:
//     a planner or model call; it costs wall time and energy, not CPU, and is what ThinkDuty
//     measures), submits the first action and leaves the rest to the driver, which replays it one
//     action a tick. Danger or a stun clears the plan: only a fresh thought moves a player in danger,
//     so the engine's reaction ticks measure thinking, not replay. A thought whose board turned
//     urgent while it was being thought is dropped (PlayerReport.Superseded).
//   - Guarantees, asserted by the tests in virtual time: an urgent state delivered to a resting
//     player is thought about at the instant of its wake-up and answered by the next Step (reaction
//     one tick; Think must stay under half a tick for a busy player to make it too); no urgent event
//     goes unanswered; actions are shared fairly (Jain >= 0.9); an idle player with nothing in view
//     gets no news, holds no timer and is never woken; a player that thinks hard tires and its
//     cadence grows.
//
// The personas use only the public API of package persona; nothing in the core knows about games.
//
// # Concurrency
//
// An Engine is safe for concurrent use: personas may Submit and read State from their own goroutines
// while one driver goroutine calls Step. GameState, World, Event and the stats it returns share nothing
// with the Engine. Priority, Complexity, Decide, Plan, ASCII and Image are pure functions. Run owns
// every goroutine it starts (the driver, the personas' runtime) and returns only after all of them
// ended; it calls Options.OnTick from the driver and Options.Observer from the personas' loops.
//
// # Testing code that uses it
//
// Drive the Engine by hand: call State, Submit and Step in a loop, with no clock at all; a fixed Seed
// gives a reproducible game, and PlayerStats (actions, food, caught, reactions) are the results to
// assert on. Code that steps the engine from a ticker should run inside testing/synctest so that 20 Hz
// of game time passes instantly.
//
// Run inside a synctest bubble plays a minute of game time in well under a second, deterministically
// up to the order of goroutines woken at the same instant; Options.Observer receives every persona
// event (wake-ups, rests with cadence and mood, items handled with their wait) to assert on.
package game
