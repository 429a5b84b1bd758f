// Package sim is a discrete-event simulator of personas in virtual time.
// It runs a chat scenario (see Scenario and the files in scenarios/) under
// three policies and reports, for each, what happened to every delivery,
// how long work waited, how many model calls it cost and how hard the
// machine ran. The persona policy drives the same policy code as the real
// runtime (DESIGN.md, principle 1): package inbox, state, coord (Grant,
// AdaptWindow), govern (Feed, Meter, Governor.Observe, Thermal.Adjust),
// x/time/rate (the daemon's compute budget, at virtual times) and
// chat (Weights.Score, MatchesExpertise, and the chat rules with the
// daemon's Settings), in the order the root package's life cycle calls
// them.
//
// A daemon's own persona file simulates as it would run: FromPersonas
// turns chat.LoadPersonas' specs and a traffic file (ParseTraffic: a
// scenario without personas; DefaultTraffic when there is none) into a
// scenario with the daemon's defaults (`persona sim --config FILE
// [--traffic FILE]`, with persona serve's policy flags). A scenario's
// personas accept the persona file's fields too.
//
// # Engine
//
// Time is an int64 of virtual nanoseconds. Events sit in a hand-written
// binary heap ordered by (time, sequence), so equal times run first in,
// first out and a run is deterministic: the same scenario and options give
// the same report, except wall_seconds. All randomness comes from
// math/rand/v2 PCG generators seeded from the scenario's seed, one stream
// per purpose: arrival times, message content, and one per persona for its
// model-call times. Adding a persona therefore changes neither when
// messages arrive nor what they say. Each policy's run starts its streams
// afresh, so the three policies see the same arrivals.
//
// # World
//
// Messages arrive as a Poisson process at traffic.rate, replaced by a
// burst's rate during it. Each picks a room uniformly, a human author with
// chance traffic.human (else a persona of the scenario), an @mention of one
// persona (never the author) with chance traffic.mention, and each topic
// word independently with its chance. A message is delivered to every
// persona but its author: one delivery per (message, persona). With
// replies_feed_back, a persona's reply is a new message in the room, one
// level deeper in the reply chain, on the same topics, with no mention.
//
// A script (traffic.script: at, room, author, text; Traffic.Script)
// replaces the random arrivals: its messages arrive at their times,
// decoded as the daemon decodes a room message (an @mention of a persona
// addresses it; an expertise word of the text is a topic), by a human or,
// when the author is a persona of the scenario, by that persona as another
// runtime's. Options.OnReply reports every reply (who answered which
// message, covering which, when): a conversation replayed. The chat
// parity test of package server feeds one script to the daemon and to the
// simulator and requires the same replies at the same times.
//
// A model call costs lognormal time (the persona's handle median and p95)
// and occupies one of cores model slots; calls wait first in, first out
// for a slot, without bound. Under the persona policy a call first takes a
// token of the compute budget (the scenario's budget: per_sec, burst;
// default persona serve's 2 a second, bursts of 20), waiting for one when
// the bucket is empty, as the daemon's model wrapper waits on its
// rate.Limiter: the same Limiter, reserved at virtual times. The other
// policies have no budget. The duty cycle is busy slots over cores: per
// second, its mean over the run, and its maximum over one-minute windows.
// Which steps make a model call:
//
//   - direct: every evaluation (one per delivery) and every reply;
//   - seed: every evaluation of a processed message and every reply;
//   - persona: replies only. Its evaluation is local (score, state,
//     confidence from expertise) and costs 50 ms of the
//     persona's time, which counts for its energy but uses no model slot.
//
// # Priority and classes
//
// Each policy scores a delivery when it arrives with chat.Weights.Score:
// SeedWeights for seed (and direct, which only reports classes),
// DefaultWeights for persona. "Recent room" means the persona replied in
// the room within RecentFor. Classes are the same for all policies, from
// a reference score: DefaultWeights on the facts that do not depend on the
// policy (mention, expertise, author kind, reply depth, fresh): urgent at
// or above 0.8 (in effect, the recipient is @mentioned), normal at or
// above 0.3 (an active persona's threshold), low below (mostly persona
// chatter a few replies deep).
//
// # Coordination
//
// Decisions are made by coord.Core, the decision logic of coord.Stream,
// driven in virtual time: one core per run, one event at its earliest
// deadline (equal deadlines close in the order they were set), and the
// decisions it returns handed to the thinkers. So its rules are coord's:
// coord.Grant picks K (default 1) responders: addressees always if they
// thought, then by confidence, least recently granted (strictly increasing
// grant stamps), name. The addressees are the item's plus every thinker
// whose thought says it is addressed (Thought.Addressed). A thought after
// the decision closed is late: a late addressee or addressed thinker is
// granted at once (the decision is amended; the amendment stamps no grant
// time), any other late thought does not count. Windows: AdaptWindow over
// the last 256 time-to-thought samples (first thoughts and late ones), or
// a fixed window; with Coordination.FromFirstThought
// (coord.Options.WindowFromFirstThought) a window starts at the item's
// first thought, the samples are measured from it (the first thinker's is
// 0), and an item nobody thinks about closes after Coordination.Patience
// (1 minute). The stream remembers the last 4096 decisions
// (coord.DefaultMaxClosed): a thought on an older one opens it anew, as in
// the runtime. What opens a decision differs by policy, as each producer
// does:
//
//   - persona: as the daemon's responder, the first evaluation of a
//     message opens its decision, with the coordinated personas to which
//     the message is relevant now as expected thinkers (chat.Settings.
//     Expected) and those it (or a message merged with it) mentions as
//     addressees; each later evaluation merges its own. It closes when all
//     have thought or left, or when the window ends.
//   - seed: the seed only enqueues; its first thought opens the item (as
//     coord.Stream.Think does for an unknown item), with no expected
//     thinkers and no addressees, so it closes when the window ends; its
//     thoughts never say they are addressed.
//   - direct: the old flow invokes every persona at once and coordinates
//     on all their evaluations: the decision closes when every recipient
//     has evaluated, without a window (coord.Opening.Unbounded).
//
// A persona waits for a decision at most the stream's longest window plus
// a second (persona.Options.CoordinationTimeout's default); past that it
// goes on as not granted (await_timeouts). Since a thinker's item closes
// within its own window, that only happens when the stream misbehaves.
//
// A scenario's coordination section starts from chat.DefaultSettings()'s
// stream options, which are also the chat daemon's defaults (server.Config):
// adaptive, Window and MinWindow at coord's defaults (1.5 s, 250 ms),
// MaxWindow 3 s, from the first thought. The shipped scenarios leave it
// unsaid, so they run the stream as the daemon does. A thinker holds its
// time slice while it awaits the decision (coordinate.go), so a longer
// MaxWindow (coord's 10 s) makes every engaged item cost its persona up to
// that long while urgent work waits, and the overload scenario then
// violates the urgent SLA.
//
// # Chat rules
//
// The persona policy applies package chat's rules with the daemon's
// numbers (chat.Settings: a scenario's rules section over
// chat.DefaultSettings; chat's doc.go gives each rule's meaning). The
// evaluation is chat.Settings.Think on the batch's best priority. The
// intake guard (chat.Settings.Guard) judges every delivery when its
// message is posted, as the daemon's intake does: a message that is not
// relevant enough to the persona, or a persona's message at depth
// MaxDepth or written QuietAfter after the room's last human message,
// never enters the inbox and costs no evaluation (skipped;
// suppressed_depth, suppressed_quiet count the loop guards' share). A
// granted persona's reply passes the reply budget (chat.Budget: this
// runtime's replies, counted from the model call's start, and the
// persona-written arrivals, which stand for other runtimes' personas; a
// reply owed to a person, chat.Owed, is counted but never refused:
// suppressed_budget).
// The baselines keep their own evaluation (a model call's judgement in
// the designs they stand for, which have no chat rules).
//
// # Policies
//
// persona runs the runtime's own life cycle: each persona is a
// persona.Cycle (the pure core that persona.Persona drives in real time)
// with the runtime's Options defaults, driven in virtual time by a Driver
// (driver.go) whose host is the chat world (ours.go). The simulator decides
// nothing about a persona's rhythm: the cycle decides when it wakes (an
// urgent item at once, a dependent on every release, other items at the
// next scan), what each step takes (the top items while ShouldEngage holds,
// merged with their room's pending items), how long it rests, and every
// final account; the driver turns its wakes into events and carries out
// its actions and notes. Decisions are the run's coord.Core (the stream's
// pure core) and barriers its deps.Barriers (the tracker's), so the
// simulator has no stream or barrier of its own. The parity tests
// (parity_test.go) hold the Driver and persona.Persona to the same trace
// on the same script. The chat world supplies what an action costs: if the
// trigger's decision is already made without this persona and the batch
// does not mention it, it is handled without evaluation (a late observe
// thought, for the window's samples);
// otherwise the persona evaluates (50 ms), thinks (addressed if the batch
// mentions it), holds its slice until the decision or the wait's bound,
// and, if granted, writes one reply (a model call). A mentioned persona
// that reaches a closed decision therefore still thinks and is granted
// late, in the runtime and here alike (the parity tests check it). The time an
// item took drains energy (state.RecordActivity). After the slice, urgent
// work left means step again at once; otherwise the cadence is the state's
// times the governor's multiplier. The evaluation and the responder's
// guards are package chat's rules (see "Chat rules" above); a reply a
// guard stops is counted in suppressed_replies and its items stay handled.
// The governor (govern.Governor, default policy with the
// scenario's ceiling) observes every virtual second what the daemon's
// Sampler observes, through the same govern.Feed (rates over its default
// 10-second window, levels as read): a govern.Meter begun when a model call
// is issued and ended when it is done (so, as in the daemon, a call
// waiting for a budget token or a slot counts as busy and in flight),
// Load as total depth over total capacity, BudgetSpent as one minus the
// bucket's level, and the model slots as Cores. The simulator reads no
// process CPU. (The persona policy's state still observes a full budget:
// sim/ours.go passes 1 to state.Observe where the runtime passes its
// Budget; budgetLevel is there for it.)
//
// seed is autonomous-persona-architecture.md as written: a sorted array of
// capacity 1000 re-sorted on every enqueue (binary insertion, same order),
// dropping the lowest when full (lost); the loop updates the inbox load,
// peeks the top 10, filters with the seed's shouldEngage (exclusive
// thresholds, overwhelmed above an absolute 50 items, the mood as last
// calculated), and processMessages pops the inbox's top for each chosen
// message while handling the chosen one (the seed's bug: chosen messages
// stay and are processed again, popped ones are gone unprocessed). Each
// handled message is a model call to evaluate, a thought, a wait for the
// decision, and a model call to reply if granted, with no guards. Energy
// falls by the whole slice's duration/10s times the number of messages;
// rest is credited only when nothing was engaged (the cadence, or twice it
// with an empty inbox); cadence 3/5/7/10 s by mood. Its 100 ms polling
// counts as 10 wake-ups per second per persona.
//
// direct is the old flow: on arrival every recipient asks its model
// (first in, first out, unbounded), then coordination, then one more model
// call per granted persona to reply. No inbox, no state, no guard.
//
// Dependencies (waits_for) are honoured by persona only; seed and direct
// have no barrier and deliver to everyone at once. The barriers are the
// runtime's: deps.Barriers, the core of deps.Tracker, driven in virtual time,
// one per connected pipeline (as the runtime has one tracker per connected
// part), keyed by the message. A dependent is handed a message when each
// prerequisite has finished it (handled: done; declined: skipped; expired:
// incomplete) or passed its per-stage deadline (deps_timeout, default 1
// minute, from the message's arrival for sources and from the release for
// dependents); a prerequisite that finishes late still counts while the
// barrier is open. The status is carried down the chain: a stage released
// incomplete or skipped passes that on even if it then finishes normally.
// A message's author has finished it (it is never delivered to its author),
// so a stage that waits only for the author is released at once. The
// message is handed over whatever the status, which travels with the
// delivery, as the runtime's pipeline does, and the dependent's wait starts
// at the release. Dependents are not
// expected thinkers of the decision (the runtime hands them the item
// later), so they answer only decisions still open when they reach them,
// except a mentioned dependent: its thought says it is addressed, so it
// is granted at the decision's close or late.
//
// # Accounts and measures
//
// Every delivery ends in exactly one account: handled (the persona started
// on it: took it, merged it, or, in direct and seed, finished evaluating
// it), declined (retired unengaged after the time-to-live), deferred (in
// the deferred store at the end), expired (deferred past its time-to-live,
// or pushed out of a full deferred store), lost (seed: dropped when full,
// or popped without being processed), pending_at_end (queued, held at a
// barrier, or in flight). They add up to delivered, and for persona they
// are checked against every inbox's own counts; a mismatch is an error.
//
// Wait is from delivery into the persona's queue (or its release by a
// barrier) to the moment the persona starts on it. Deliveries still
// waiting at the end count with the time waited so far (a lower bound);
// closed ones that never started (declined, expired, lost) have no wait.
// urgent_sla_violations counts urgent deliveries that waited longer than
// the SLA or were closed without starting. A scenario is feasible for the
// urgent SLA when a persona's longest turn (the window plus one reply call,
// queueing included) stays under the SLA with margin; model-call times are
// lognormal, so this is a matter of the tail, and the shipped scenarios
// are chosen so that it holds for their seeds (overload-burst.yaml says
// how often it holds over other seeds).
//
// Other measures: evaluations and replies per message (messages include
// fed-back replies); fairness is Jain's index of the time each persona
// spent working; energy is sampled per second (not for direct, which has
// no state); response latency runs from a message to a reply to it; human
// answer time from a human's message to the first reply that answers it
// (a reply answers its trigger and, for persona, the merged items);
// persona messages per room-minute count replies, over every room and
// minute. mentions_missed says why a human's @mention went unanswered
// (see Report.MentionsMissed). Wake-ups count loop starts by trigger (direct: one per
// delivery; seed: loop turns plus polling).
//
// # Speed and concurrency
//
// A run holds no goroutines and no locks of its own; RunAll runs the
// policies on one goroutine each. A million deliveries take 0.4 to 2.5 s
// of wall time per policy on a shared 2-core machine (BenchmarkMillion;
// persona, the slowest, about 1.4 s): the issue asks for under 30 s.
//
// # Testing code that uses it
//
// Run is a pure function of the scenario and options apart from
// wall_seconds: compare reports field by field, shorten scenarios with
// Options.Duration, and leave Options.Progress unset.
package sim
