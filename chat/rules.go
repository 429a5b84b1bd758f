package chat

import (
	"hash/fnv"
	"slices"
	"strings"
	"time"

	"github.com/personaos/persona/coord"
)

// The chat rules: which message a persona takes in, what it thinks of it,
// which reply the room's budget lets through, who a decision waits for and
// whom a merged reply answers. Each is a pure function of facts gathered
// once (Inbound, GuardFacts, Candidate), in the style of Weights.Score, so
// the daemon and the simulator apply the same rule to their own state.
// doc.go states each rule's meaning and why.

// Reason says why a guard kept a persona from answering a message; the
// empty Reason lets it through. The strings are what the daemon's ledger
// and metrics record.
type Reason string

// Reasons a guard gives.
const (
	Pass          Reason = ""
	ReasonOwn     Reason = "own message"
	ReasonTooDeep Reason = "reply chain too deep"
	ReasonQuiet   Reason = "quiet room"
	// ReasonNotRelevant: a persona not addressed by the message scores it
	// below Settings.RespondAbove.
	ReasonNotRelevant Reason = "not relevant enough"
	// ReasonBudget is the reply budget's refusal (Budget.Reserve); a
	// reply owed to a person (Owed) never gets it.
	ReasonBudget Reason = "reply budget"
	// ReasonSystem: the runtime's own note (a model failure shown in the
	// room) is for people to read, never for a persona to answer.
	ReasonSystem Reason = "system note"
)

// Inbound is a message decoded once, at intake: the message and the names
// its content @mentions. Every later step reads it instead of parsing the
// content again.
type Inbound struct {
	Message
	Mentions []string // lower-case, in order, without duplicates (Mentions)
}

// Decode decodes m once.
func Decode(m Message) Inbound { return Inbound{Message: m, Mentions: Mentions(m.Content)} }

// Names reports whether the message @mentions name (case-insensitive).
func (in Inbound) Names(name string) bool { return slices.Contains(in.Mentions, strings.ToLower(name)) }

// GuardFacts are what the intake guard of one persona depends on.
type GuardFacts struct {
	Kind      Kind      // who wrote the message
	Own       bool      // the persona itself wrote it
	Addressed bool      // it addresses the persona (an @mention)
	Depth     int       // persona replies leading up to it
	At        time.Time // when it was written
	// LastHuman is when a human last spoke in the room, as known when the
	// message is taken in (zero: never).
	LastHuman time.Time
	Score     float64 // the message's priority for the persona (Weights.Score)
}

// Guard is the intake guard: whether a persona takes a message in, and if
// not why. In order: a persona never takes in its own message; a persona's
// message is not answered past MaxDepth or in a quiet room, addressed or
// not (these stop persona-to-persona loops, and a loop of personas naming
// each other is exactly what they must stop); a message that neither
// addresses the persona nor scores RespondAbove for it is not taken in (it
// could only be declined). A human's message is never stopped by a loop
// guard, and an addressed one never by relevance.
func (s Settings) Guard(f GuardFacts) Reason {
	if f.Kind == System {
		return ReasonSystem
	}
	if f.Kind == Persona {
		switch {
		case f.Own:
			return ReasonOwn
		case TooDeep(f.Depth, s.MaxDepth):
			return ReasonTooDeep
		case Quiet(f.LastHuman, f.At, s.QuietAfter):
			return ReasonQuiet
		}
	}
	if !s.Relevant(f.Score, f.Addressed) {
		return ReasonNotRelevant
	}
	return Pass
}

// Quiet is the quiet-room rule for a persona's message written at at: no
// human spoke in the room within after before it, or ever. Persona-to-
// persona exchanges stop when nobody is there to read them and start again
// when a human speaks. A lastHuman after at (a human spoke since) is not
// quiet.
func Quiet(lastHuman, at time.Time, after time.Duration) bool {
	return lastHuman.IsZero() || at.Sub(lastHuman) > after
}

// TooDeep reports whether a persona's message at depth (persona replies
// leading up to it) is past the chain's limit: a reply to it would be
// reply number depth+1, and maxDepth replies are the most a chain gets.
func TooDeep(depth, maxDepth int) bool { return depth >= maxDepth }

// Relevant reports whether a persona may want to answer a message it
// scores at score: it is addressed, or the score reaches RespondAbove.
func (s Settings) Relevant(score float64, addressed bool) bool {
	return addressed || score >= s.RespondAbove
}

// Confidence is a persona's confidence in answering, for coordination: 1
// when it is addressed, else its score for the message clamped to [0, 1].
// It costs no model call, and it ranks peers the way the inbox does.
func Confidence(score float64, addressed bool) float64 {
	if addressed {
		return 1
	}
	return min(1, max(0, score))
}

// Think is a persona's evaluation of a message (or a merged batch: its best
// score, addressed if any item addresses it): the confidence, and the
// intent to respond when the message is relevant, else to observe (which
// is never granted).
func (s Settings) Think(score float64, addressed bool) (float64, coord.Intent) {
	conf := Confidence(score, addressed)
	if !s.Relevant(score, addressed) {
		return conf, coord.IntentObserve
	}
	return conf, coord.IntentRespond
}

// Candidate is a coordinated persona as a decision's opener sees it.
type Candidate struct {
	Name      string
	Addressed bool    // the message (or one merged into it) addresses it
	Score     float64 // its score for the message
}

// Expected is who a message's decision waits for, and which of them are
// addressees (always granted): every candidate but the message's author
// to which the message is relevant. The others never take the message in
// (Guard), so waiting for them would only run the window out. A decision
// opens when the first persona evaluates the message, with these.
func (s Settings) Expected(author string, kind Kind, cands []Candidate) (expected, addressees []string) {
	expected = make([]string, 0, len(cands))
	for _, c := range cands {
		if kind == Persona && strings.EqualFold(c.Name, author) {
			continue
		}
		if !s.Relevant(c.Score, c.Addressed) {
			continue
		}
		expected = append(expected, c.Name)
		if c.Addressed {
			addressees = append(addressees, c.Name)
		}
	}
	return expected, addressees
}

// Cover is what a reply to a merged item answers: the trigger (the newest
// message, which the reply answers), the older messages merged into it, and
// the askers the reply must address besides the trigger's author: the
// humans who wrote a merged message, each once, in order.
type Cover struct {
	Trigger string
	Merged  []string // message ids, oldest first
	Askers  []string
}

// Covers is the merge rule's second half (the runtime's Coalesce is the
// first: the newest pending message of a room is the trigger, the older
// ride along as context, oldest first). A merged reply answers everyone
// it covers: it addresses each human whose message it merged.
func Covers(trigger Message, merged []Message) Cover {
	c := Cover{Trigger: trigger.ID}
	for _, m := range merged {
		c.Merged = append(c.Merged, m.ID)
		if m.Kind == Human && !strings.EqualFold(m.Author, trigger.Author) &&
			!slices.ContainsFunc(c.Askers, func(a string) bool { return strings.EqualFold(a, m.Author) }) {
			c.Askers = append(c.Askers, m.Author)
		}
	}
	return c
}

// Address prefixes content with an @mention of every asker it does not
// mention yet, so that a merged reply reaches each person it answers.
func Address(content string, askers []string) string {
	var missing []string
	for _, a := range askers {
		if !Mentioned(content, a) && isName(a) {
			missing = append(missing, "@"+a)
		}
	}
	if len(missing) == 0 {
		return content
	}
	return strings.Join(missing, " ") + " " + content
}

// isName reports whether s can be @mentioned (Mentions' name runes).
func isName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !isNameRune(r) {
			return false
		}
	}
	return true
}

// Budget is the reply budget: it counts the persona messages posted in
// each room within a sliding window ending now: this runtime's replies
// from the moment one is reserved (before its model call, so replies
// being written count), and other runtimes' persona messages when they are
// seen (Saw), so that a room shared by several daemons is budgeted as one.
// Reserve refuses a reply once the window holds Max messages, except a
// reply owed to a person (Owed), which is counted and never refused; a
// caller that keeps the budget for owed replies too waits for Due first.
//
// The zero value allows nothing (Max 0) for a window of 0; use NewBudget.
// A Budget is not safe for concurrent use: its owner locks.
type Budget[K comparable] struct {
	Max    int
	Window time.Duration
	rooms  map[K][]stamp // oldest first
	over   int
}

// stamp is one persona message a budget counts: when, and whose ("" for
// another runtime's).
type stamp struct {
	at  time.Time
	who string
}

// Owed reports whether a reply is owed to a person: a human's message
// addressed the persona (an @mention). The reply budget never refuses an
// owed reply. A persona's @mention of another is chatter the budget and
// the loop guards may stop: personas naming one another is how loops run.
func Owed(kind Kind, addressed bool) bool { return kind == Human && addressed }

// Waits reports whether a reply to a message of kind that the room's
// budget cannot take now waits for it (Budget.Next) instead of being
// refused: a person's question is answered late, merged with what follows
// it, rather than never; only persona chatter is refused. An owed reply
// (Owed) waits too, at most until Budget.OwedBy.
func Waits(kind Kind) bool { return kind == Human }

// NewBudget returns a budget of max persona messages per room per window.
func NewBudget[K comparable](max int, window time.Duration) *Budget[K] {
	return &Budget[K]{Max: max, Window: window}
}

// Reserve takes one reply of room's budget for persona who at now and
// reports whether the reply may be written. An owed reply (Owed) is always
// reserved: it counts against later replies but is never refused.
func (b *Budget[K]) Reserve(room K, who string, now time.Time, owed bool) bool {
	if len(b.prune(room, now)) >= b.Max {
		if !owed {
			return false
		}
		b.over++
	}
	b.add(room, stamp{now, who})
	return true
}

// Over is how many owed replies were reserved over the budget, in all
// rooms: a window already full when they were written (Reserve).
func (b *Budget[K]) Over() int { return b.over }

// Next is when a reply of room that is not owed next fits the budget, as
// seen at now: now itself if it fits, else when the oldest reply that
// keeps the window full leaves it. The zero time means never (a Max of 0).
func (b *Budget[K]) Next(room K, now time.Time) time.Time {
	if b.Max <= 0 {
		return time.Time{}
	}
	ts := b.prune(room, now)
	if len(ts) < b.Max {
		return now
	}
	return ts[len(ts)-b.Max].at.Add(b.Window)
}

// Due is when persona who's reply owed to a person should be written in
// room, as seen at now: when it fits the budget (Next), and paced at least
// the interval Window/Max after who's latest reply in the room. A mention
// of a persona that has not just spoken there is answered at once; under
// a sustained stream of mentions of one persona its owed replies are
// spread over the window (one every 10 s with the defaults) instead of
// spent at once and followed by a whole window of silence, and so paced
// they never exceed the budget. The mentions that arrive meanwhile merge
// into the reply: the budget is kept by merging, not by silence. The zero
// time means never (a Max of 0); a caller waits for Due at most one
// interval after the message (OwedBy) and then reserves
// regardless, since an owed reply is never refused: only several personas
// owing answers in one room faster than its budget go over it (Over).
func (b *Budget[K]) Due(room K, who string, now time.Time) time.Time {
	next := b.Next(room, now)
	if next.IsZero() {
		return next
	}
	if last, ok := b.latest(room, who); ok {
		if paced := last.Add(b.Pace()); paced.After(next) {
			return paced
		}
	}
	return next
}

// OwedBy is when persona who's reply owed to a person, for a message
// written at written, is reserved in room whatever the budget: one pacing
// interval (Pace) after the message, or after
// who's own latest reply there if that came later (a message that was on
// its way when that reply was reserved waits for the next paced one).
// Until then the caller waits for Due. The zero time with a Max of 0.
func (b *Budget[K]) OwedBy(room K, who string, written time.Time) time.Time {
	if b.Max <= 0 {
		return time.Time{}
	}
	from := written
	if last, ok := b.latest(room, who); ok && last.After(from) {
		from = last
	}
	return from.Add(b.Pace())
}

// Pace is the budget's pacing interval, Window/Max (10 s with the
// defaults): how far apart one persona's owed replies in a room are
// written, and the longest one waits for the budget. Zero with a Max of 0.
func (b *Budget[K]) Pace() time.Duration {
	if b.Max <= 0 {
		return 0
	}
	return b.Window / time.Duration(b.Max)
}

// latest is when persona who's latest reply in room was reserved, if one
// is within the window.
func (b *Budget[K]) latest(room K, who string) (time.Time, bool) {
	ts := b.rooms[room]
	for i := len(ts) - 1; i >= 0; i-- {
		if ts[i].who == who {
			return ts[i].at, true
		}
	}
	return time.Time{}, false
}

// Saw counts a persona message another runtime posted in room at at: it is
// never refused (it is already in the room), and it counts against this
// runtime's later replies.
func (b *Budget[K]) Saw(room K, at time.Time) {
	b.prune(room, at)
	b.add(room, stamp{at: at})
}

// add records a message, in time order (a message seen late may be older
// than a reservation).
func (b *Budget[K]) add(room K, s stamp) {
	if b.rooms == nil {
		b.rooms = map[K][]stamp{}
	}
	ts := b.rooms[room]
	i := len(ts)
	for i > 0 && ts[i-1].at.After(s.at) {
		i--
	}
	b.rooms[room] = slices.Insert(ts, i, s)
}

// Release gives back persona who's reservation made at at (the reply was
// not sent).
func (b *Budget[K]) Release(room K, who string, at time.Time) {
	ts := b.rooms[room]
	if i := slices.IndexFunc(ts, func(s stamp) bool { return s.at.Equal(at) && s.who == who }); i >= 0 {
		b.rooms[room] = slices.Delete(ts, i, i+1)
	}
}

// Count is how many replies of room fall within the window ending at now.
func (b *Budget[K]) Count(room K, now time.Time) int { return len(b.prune(room, now)) }

// prune forgets room's reservations that have left the window ending at
// now: one made exactly a Window ago has left it.
func (b *Budget[K]) prune(room K, now time.Time) []stamp {
	ts := b.rooms[room]
	cut := 0
	for cut < len(ts) && !ts[cut].at.After(now.Add(-b.Window)) {
		cut++
	}
	if cut > 0 {
		ts = slices.Delete(ts, 0, cut)
		if len(ts) == 0 {
			delete(b.rooms, room)
			return nil
		}
		b.rooms[room] = ts
	}
	return ts
}

// Stagger is persona name's fixed offset, under a microsecond, for a time
// several personas may pick at once (a room's reply budget frees one slot
// for all of them at the same instant): their attempts then come in an
// order fixed by their names, not by a race.
func Stagger(name string) time.Duration {
	h := fnv.New32a()
	h.Write([]byte(name))
	return time.Duration(h.Sum32() % 1000)
}
