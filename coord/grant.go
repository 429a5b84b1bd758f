package coord

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"time"
)

// ReasonAddressee is the reason of a persona granted because the item
// addresses it (Decision.Reasons).
const ReasonAddressee = "addressee"

// Intent is what a persona means to do with an item it has thought about.
type Intent string

const (
	// IntentRespond asks for a grant: the persona wants to act on the item.
	IntentRespond Intent = "respond"
	// IntentObserve says the persona read the item and will not act unless addressed.
	IntentObserve Intent = "observe"
	// IntentDefer says the persona leaves the item to others unless addressed.
	IntentDefer Intent = "defer"
)

// Valid reports whether i is one of the three known intents.
func (i Intent) Valid() bool {
	switch i {
	case IntentRespond, IntentObserve, IntentDefer:
		return true
	}
	return false
}

// Thought is one persona's broadcast about one item, sent after it decided to
// engage with the item. The zero value is not a valid thought: Persona, Item and
// a valid Intent are required and Confidence must lie in [0, 1].
type Thought struct {
	Persona string `json:"persona"`
	Item    string `json:"item"`
	// Key groups items (a room, a camera, a game session); it selects K through
	// Options.KFor. It is only read when the thought opens the item.
	Key        string  `json:"key"`
	Confidence float64 `json:"confidence"`
	Intent     Intent  `json:"intent"`
	// Addressed says the thinker is named by the item (an @mention that
	// reached it another way, e.g. through a merged older message), so it
	// is granted like an addressee of the item.
	Addressed bool `json:"addressed,omitempty"`
	// At is when the persona formed the thought; Stream.Think fills it with the
	// current time when zero. It is for inspection only: the adaptive window
	// measures time-to-thought on the stream's own clock, so skew between hosts
	// cannot distort it.
	At time.Time `json:"at"`
}

// Grant is the coordination policy, pure and deterministic so the simulator
// runs exactly what production runs. Given the thoughts on one item, the item's
// addressees, the number k of responders wanted and when each persona was last
// granted, it returns who is granted, in grant order, and a reason for every
// persona it saw (thinkers and addressees).
//
// The rules:
//   - When a persona appears in several thoughts, its last one counts.
//   - An addressee that thought is granted whatever its intent (respond, observe
//     or defer): being named by the item beats modesty. An addressee that did not
//     think is not granted, because a silent persona would leave the item
//     unanswered; its reason is "addressee, did not think".
//   - Addressees are granted first and count against k; when there are more
//     addressees than k, all of them are still granted and nobody else is.
//   - The remaining k - addressees slots go to non-addressees with intent
//     respond, ranked by confidence (descending), then least recently granted
//     first (absent from lastGranted = never = oldest), then by name so the
//     result never depends on input order. Observe and defer are never granted
//     to non-addressees.
//   - A NaN confidence ranks as 0; confidences outside [0, 1] are clamped for
//     ranking. k < 0 is treated as 0 (only addressees are granted).
//
// granted is nil when nobody is granted. Grant does not modify its arguments.
func Grant(thoughts []Thought, addressees []string, k int, lastGranted map[string]time.Time) (granted []string, reasons map[string]string) {
	k = max(k, 0)
	idx := make(map[string]int, len(thoughts))
	uniq := make([]Thought, 0, len(thoughts))
	for _, t := range thoughts {
		if i, ok := idx[t.Persona]; ok {
			uniq[i] = t
			continue
		}
		idx[t.Persona] = len(uniq)
		uniq = append(uniq, t)
	}
	isAddr := make(map[string]bool, len(addressees))
	for _, a := range addressees {
		isAddr[a] = true
	}

	reasons = make(map[string]string, len(uniq)+len(addressees))
	var addr, cands []Thought
	for _, t := range uniq {
		switch {
		case isAddr[t.Persona]:
			addr = append(addr, t)
		case t.Intent == IntentRespond:
			cands = append(cands, t)
		case t.Intent == "":
			reasons[t.Persona] = "intent (none)"
		default:
			reasons[t.Persona] = "intent " + string(t.Intent)
		}
	}
	for _, a := range addressees {
		if _, ok := idx[a]; !ok {
			reasons[a] = "addressee, did not think"
		}
	}

	rank := func(a, b Thought) int {
		if c := cmp.Compare(rankConf(b.Confidence), rankConf(a.Confidence)); c != 0 {
			return c
		}
		if c := lastGranted[a.Persona].Compare(lastGranted[b.Persona]); c != 0 {
			return c
		}
		return cmp.Compare(a.Persona, b.Persona)
	}
	slices.SortFunc(addr, rank)
	slices.SortFunc(cands, rank)

	for _, t := range addr {
		granted = append(granted, t.Persona)
		reasons[t.Persona] = ReasonAddressee
	}
	slots := min(max(k-len(addr), 0), len(cands))
	winners, losers := cands[:slots], cands[slots:]
	for _, w := range winners {
		granted = append(granted, w.Persona)
		c := rankConf(w.Confidence)
		switch {
		case len(losers) == 0 || tieLevel(w, losers[0], lastGranted) == "confidence":
			reasons[w.Persona] = fmt.Sprintf("top confidence %.2f", c)
		default:
			reasons[w.Persona] = fmt.Sprintf("won tie on %s at confidence %.2f", tieLevel(w, losers[0], lastGranted), c)
		}
	}
	for _, l := range losers {
		if slots == 0 || tieLevel(winners[slots-1], l, lastGranted) == "confidence" {
			reasons[l.Persona] = fmt.Sprintf("k=%d reached", k)
			continue
		}
		reasons[l.Persona] = "lost tie on " + tieLevel(winners[slots-1], l, lastGranted)
	}
	return granted, reasons
}

// tieLevel names the first ranking criterion that separates a from b.
func tieLevel(a, b Thought, lastGranted map[string]time.Time) string {
	switch {
	case rankConf(a.Confidence) != rankConf(b.Confidence):
		return "confidence"
	case !lastGranted[a.Persona].Equal(lastGranted[b.Persona]):
		return "recency"
	default:
		return "name"
	}
}

// rankConf maps a confidence onto [0, 1] so a bad value cannot break sorting.
func rankConf(c float64) float64 {
	if math.IsNaN(c) {
		return 0
	}
	return min(max(c, 0), 1)
}
