// Package chat is the chat domain on top of the persona runtime: messages,
// the priority scorer, and the chat rules that let many personas share
// rooms without flooding them. The chat daemon (package server) and the
// simulator (package sim) apply the same rules, with the same numbers
// (Settings; DefaultSettings is the default of both), each to its own
// state: what the simulator measures is what the daemon does.
//
// # The scorer
//
// The scorer starts from the seed's calculatePriority and adds the sender's
// kind and the reply-chain depth. Its defaults keep "urgent" rare: only an
// @mention reaches the inclusive urgent line (0.8), whatever else the score
// holds, so a mentioned persona is woken at once while ordinary chatter
// waits for each persona's own rhythm. SeedWeights reproduces the seed for
// comparison in the simulator. The scorer is safe for concurrent use.
//
// # The rules, one meaning each
//
// Every rule is a pure function of facts gathered once (Decode, GuardFacts,
// Candidate), as Weights.Score is of Facts: time is an argument, never read.
// The promise behind them all: a person who addresses a persona (an
// @mention in a human's message) is owed an answer (Owed), and no guard
// that exists to keep the room readable refuses it: relevance never stops
// an addressed message, the budget never refuses an owed reply. The guards
// that stop persona-to-persona loops (own message, depth, quiet room)
// apply to persona messages only, addressed or not, and the budget may
// refuse a reply to a persona's @mention: a persona is not a person
// waiting for an answer, and personas naming each other is the loop these
// rules stop.
//
//   - Quiet room (Quiet): a persona's message is not answered when no human
//     spoke in its room within QuietAfter (10 min) before it was written.
//     Judged once, at intake, against the room's last human message known
//     then, so a redelivery gets the same verdict and nobody spends an
//     evaluation on it.
//   - Reply budget (Budget): at most ReplyBudget (6) persona messages per room
//     per ReplyWindow (1 min): the replies this runtime reserves (before the
//     model call, so replies being written count; a failed one is released)
//     and the persona messages of other runtimes it sees in the room, so a
//     room shared by several daemons, or a simulated room with outside
//     persona traffic, is budgeted as one. A reply owed to a person is
//     never refused: it waits until the budget has room, paced to one per
//     Window/ReplyBudget once half the budget is spent (Due, at most one
//     window, after which it is taken regardless and counted), and the
//     messages that arrive meanwhile merge into the next reply, which
//     addresses each of their askers (Covers). The budget is kept by
//     refusing chatter and merging owed answers, not by leaving a person
//     unanswered.
//   - Depth limit (TooDeep): a persona's message at depth MaxDepth (2) or more
//     is not answered: a persona may answer another's reply to a human, and
//     nobody answers that.
//   - Relevance (Settings.Relevant): a persona takes a message in only if it
//     is addressed or scores at least RespondAbove (0.4) for it: any fresh
//     human message; another persona's reply only with expertise and recent
//     activity in the room. Below it the persona could only decline, and
//     chatter it cannot answer would fill its inbox and make it look
//     overwhelmed. One cut-off serves intake, the evaluation's intent and
//     who a decision waits for.
//   - Confidence (Confidence): 1 when addressed, else the message's score
//     clamped to [0, 1]: no model call, and peers rank the way their inboxes
//     do, so the persona already active in a room (its score's recency term)
//     is granted before one that is not: the conversation keeps its voice. A batch merged from a room is judged by its best score, addressed
//     if any of its messages addresses the persona (Settings.Think).
//   - Who is expected (Settings.Expected): a message's decision waits for the
//     coordinated personas, but its author, to which it is relevant; the
//     addressed ones among them are its addressees (always granted).
//   - When a decision opens: when the first persona evaluates the message,
//     not at delivery, and its window counts from that first thought
//     (Stream.WindowFromFirstThought). Opened at delivery, a window could
//     close on a message nobody has looked at yet (personas scan on their
//     own cadence, and under a backlog for longer than any window), and the
//     message would go unanswered.
//   - Merging a room's pending items (Covers): the runtime's Coalesce makes
//     the newest pending message of a room the trigger and the older ones
//     its context; the reply answers every message it covers and addresses
//     every human who wrote one (Address), not only the newest asker.
//
// The guards run in the order Settings.Guard gives; their Reasons are the
// notes the daemon records and counts.
//
// # Settings
//
// Settings holds the rules' numbers and the coordination stream's options
// (coord.Options). Its zero value is valid: WithDefaults fills it from
// DefaultSettings, which the daemon uses unless flags override a field and
// which a scenario's coordination section starts from.
package chat
