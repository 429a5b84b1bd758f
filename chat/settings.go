package chat

import (
	"time"

	"github.com/personaos/persona/coord"
)

// Defaults of Settings. The budget's six a minute comes from the issue that
// introduced it; the others are ours and doc.go says why.
const (
	DefaultQuietAfter   = 10 * time.Minute
	DefaultReplyBudget  = 6
	DefaultReplyWindow  = time.Minute
	DefaultMaxDepth     = 2
	DefaultRespondAbove = 0.4
	// DefaultMaxWindow bounds the adaptive coordination window. A thinker
	// holds its time slice while it awaits the decision, so the longest
	// window is what every engaged item may cost its persona while urgent
	// work waits: coord's own 10 s made the overload scenario miss the
	// urgent SLA in the simulator, 3 s does not.
	DefaultMaxWindow = 3 * time.Second
)

// Settings are the numbers of the chat rules (rules.go) and the options of
// the coordination stream that decides who answers. One value configures
// the chat daemon and a simulated scenario alike: DefaultSettings is both
// the daemon's default and a scenario's.
//
// The zero value is valid: WithDefaults, which the rules' users call once,
// fills every zero field (Stream as a whole when none of its numbers is
// set). A Settings is a plain value, safe to copy and share.
type Settings struct {
	// QuietAfter: a persona's message in a room where no human has spoken
	// for this long before it is not answered (default 10 minutes).
	QuietAfter time.Duration
	// ReplyBudget is how many persona messages the runtime posts per room
	// per ReplyWindow (defaults 6 and one minute), other runtimes' persona
	// messages included. A reply owed to a person (Owed) is counted but
	// never refused.
	ReplyBudget int
	ReplyWindow time.Duration
	// MaxDepth: a persona's message that is the MaxDepth-th persona reply
	// of a chain is not answered (default 2: a persona may answer another's
	// reply to a human, and nobody answers that).
	MaxDepth int
	// RespondAbove is the score from which a persona that is not addressed
	// takes a message in and intends to respond (default 0.4: any fresh
	// human message; another persona's reply only with expertise and
	// recent activity in the room, under DefaultWeights).
	RespondAbove float64
	// NoMerge turns off merging a persona's pending messages of one room
	// into one reply (the runtime's Options.Coalesce), on by default.
	NoMerge bool
	// OwedOverBudget writes a reply owed to a person at once, counted over
	// the budget, instead of waiting until it is due (Budget.Due) while the
	// room's mentions merge into it. Off by default: the budget is kept by
	// merging, as far as one pacing interval allows (Budget.OwedBy).
	OwedOverBudget bool
	// Stream configures the coordination stream: window, bounds, K,
	// window from the first thought, patience. Its callbacks and logger
	// are the runtime's to set.
	Stream coord.Options
}

// DefaultSettings are the chat rules' defaults: the daemon runs them
// unless its flags say otherwise, and a scenario's coordination section
// starts from their Stream. The stream adapts its window between coord's
// default bounds and DefaultMaxWindow, counted from the first thought: a
// decision opens when the first persona evaluates the message (doc.go),
// so its window starts when someone is looking.
func DefaultSettings() Settings {
	return Settings{
		QuietAfter:   DefaultQuietAfter,
		ReplyBudget:  DefaultReplyBudget,
		ReplyWindow:  DefaultReplyWindow,
		MaxDepth:     DefaultMaxDepth,
		RespondAbove: DefaultRespondAbove,
		Stream: coord.Options{
			Window:                 coord.DefaultWindow,
			MinWindow:              coord.DefaultMinWindow,
			MaxWindow:              DefaultMaxWindow,
			K:                      coord.DefaultK,
			WindowFromFirstThought: true,
			Patience:               time.Minute,
		},
	}
}

// WithDefaults returns s with every zero field taken from DefaultSettings.
// When none of Stream's numbers is set, Stream is DefaultSettings' whole
// (its WindowFromFirstThought included, a boolean whose zero cannot say
// "default"); otherwise only its zero numbers are filled.
func (s Settings) WithDefaults() Settings {
	d := DefaultSettings()
	if s.QuietAfter <= 0 {
		s.QuietAfter = d.QuietAfter
	}
	if s.ReplyBudget <= 0 {
		s.ReplyBudget = d.ReplyBudget
	}
	if s.ReplyWindow <= 0 {
		s.ReplyWindow = d.ReplyWindow
	}
	if s.MaxDepth <= 0 {
		s.MaxDepth = d.MaxDepth
	}
	if s.RespondAbove <= 0 {
		s.RespondAbove = d.RespondAbove
	}
	st := &s.Stream
	if st.Window <= 0 && st.MinWindow <= 0 && st.MaxWindow <= 0 && st.K <= 0 && st.Patience <= 0 && !st.FixedWindow && !st.WindowFromFirstThought {
		st.Window, st.MinWindow, st.MaxWindow = d.Stream.Window, d.Stream.MinWindow, d.Stream.MaxWindow
		st.K, st.Patience, st.WindowFromFirstThought = d.Stream.K, d.Stream.Patience, d.Stream.WindowFromFirstThought
		return s
	}
	if st.Window <= 0 {
		st.Window = d.Stream.Window
	}
	if st.MinWindow <= 0 {
		st.MinWindow = d.Stream.MinWindow
	}
	if st.MaxWindow <= 0 {
		st.MaxWindow = d.Stream.MaxWindow
	}
	if st.K <= 0 {
		st.K = d.Stream.K
	}
	if st.Patience <= 0 {
		st.Patience = d.Stream.Patience
	}
	return s
}
