package chat

import (
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/personaos/persona"
)

// Kind is who wrote a message.
type Kind int

const (
	Human   Kind = iota // a person
	Persona             // an AI persona
	System              // the runtime itself
)

var kindNames = [...]string{"human", "persona", "system"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// MarshalText renders the kind by name.
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText parses a kind by name.
func (k *Kind) UnmarshalText(b []byte) error {
	for i, n := range kindNames {
		if string(b) == n {
			*k = Kind(i)
			return nil
		}
	}
	return fmt.Errorf("chat: unknown kind %q", b)
}

// Message is a chat message: the payload of a chat persona's items.
type Message struct {
	ID      string    `json:"id"`
	Room    string    `json:"room"`
	Author  string    `json:"author"`
	Kind    Kind      `json:"kind"`
	Content string    `json:"content"`
	At      time.Time `json:"at"`
	// ReplyTo is the message this one answers; Depth counts how many
	// persona replies lead up to it (0 for a human's message), so that
	// persona-to-persona exchanges can damp out.
	ReplyTo string `json:"reply_to,omitempty"`
	Depth   int    `json:"depth,omitempty"`
}

// Mentions returns the names @mentioned in content, lower-cased, in order,
// without duplicates. A name is letters, digits, '-' and '_'.
func Mentions(content string) []string {
	var out []string
	seen := map[string]bool{}
	for i := 0; i < len(content); i++ {
		if content[i] != '@' || (i > 0 && isNameRune(rune(content[i-1]))) {
			continue
		}
		j := i + 1
		for j < len(content) && isNameRune(rune(content[j])) {
			j++
		}
		if j > i+1 {
			n := strings.ToLower(content[i+1 : j])
			if !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
		i = j - 1
	}
	return out
}

func isNameRune(r rune) bool {
	return r == '-' || r == '_' || r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r))
}

// Mentioned reports whether content @mentions name (case-insensitive).
func Mentioned(content, name string) bool {
	name = strings.ToLower(name)
	for _, m := range Mentions(content) {
		if m == name {
			return true
		}
	}
	return false
}

// Weights are the terms of a message's priority for one persona. The zero
// value is not useful: start from DefaultWeights or SeedWeights.
type Weights struct {
	Base       float64       // every message
	Mention    float64       // the persona is @mentioned; the result is also lifted to the urgent line
	RecentRoom float64       // the persona was active in the room within RecentWindow
	Expertise  float64       // the content names one of the persona's expertise words
	Fresh      float64       // the message is younger than FreshWithin
	Human      float64       // written by a human
	FromPeer   float64       // written by another persona (usually negative)
	PerDepth   float64       // per level of persona reply chain (usually negative)
	Urgent     float64       // the inclusive urgent line a mention always reaches
	MaxNormal  float64       // cap for a message without a mention (keeps urgent rare)
	RecentFor  time.Duration // how long activity in a room counts as recent
	FreshFor   time.Duration // how young a message must be to count as fresh
}

// SeedWeights are the seed's calculatePriority: base 0.5, mention +0.4,
// active room +0.2, expertise +0.2, under a minute old +0.1, capped at 1.
// With them most fresh messages in an active room reach 0.8 and would all
// be urgent; the simulator compares them with DefaultWeights.
func SeedWeights() Weights {
	return Weights{Base: 0.5, Mention: 0.4, RecentRoom: 0.2, Expertise: 0.2, Fresh: 0.1,
		Urgent: 0.8, MaxNormal: 1, RecentFor: 10 * time.Minute, FreshFor: time.Minute}
}

// DefaultWeights keep "urgent" for what must not wait: a message that
// @mentions the persona always reaches the urgent line, and nothing else
// can (MaxNormal 0.75). A human's message outranks a persona's by 0.2 at
// equal relevance, and each level of persona-to-persona reply costs 0.1, so
// chatter sinks below the idle threshold after a few rounds. The other
// terms keep the seed's order of importance at a lower base.
func DefaultWeights() Weights {
	return Weights{Base: 0.3, Mention: 0.4, RecentRoom: 0.1, Expertise: 0.15, Fresh: 0.1,
		Human: 0.1, FromPeer: -0.1, PerDepth: -0.1,
		Urgent: 0.8, MaxNormal: 0.75, RecentFor: 10 * time.Minute, FreshFor: time.Minute}
}

// Profile is what the scorer knows of a persona.
type Profile struct {
	Name      string
	Expertise []string // lower-case words
}

// Scorer computes chat priorities. It implements persona.Scorer[Message]
// and remembers in which rooms each persona was recently active (Touch).
// It is safe for concurrent use. The zero value is not usable; use
// NewScorer.
type Scorer struct {
	w Weights

	mu       sync.Mutex
	profiles map[string]Profile
	active   map[string]map[string]time.Time // persona -> room -> last activity
}

var _ persona.Scorer[Message] = (*Scorer)(nil)

// NewScorer returns a scorer with the given weights and profiles.
func NewScorer(w Weights, profiles ...Profile) *Scorer {
	s := &Scorer{w: w, profiles: map[string]Profile{}, active: map[string]map[string]time.Time{}}
	for _, p := range profiles {
		s.AddProfile(p)
	}
	return s
}

// Weights returns the weights in force.
func (s *Scorer) Weights() Weights { return s.w }

// AddProfile registers or replaces a persona's profile.
func (s *Scorer) AddProfile(p Profile) {
	for i, e := range p.Expertise {
		p.Expertise[i] = strings.ToLower(e)
	}
	s.mu.Lock()
	s.profiles[strings.ToLower(p.Name)] = p
	s.mu.Unlock()
}

// Touch records that a persona was active in a room at now.
func (s *Scorer) Touch(persona, room string, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := strings.ToLower(persona)
	m := s.active[key]
	if m == nil {
		m = map[string]time.Time{}
		s.active[key] = m
	}
	m[room] = now
}

// Score returns the priority of it for the named persona at now. It is
// the runtime's path (persona.Scorer) and parses the content for
// mentions; a caller that decoded the message already (Decode) uses Facts
// and Weights.Score.
func (s *Scorer) Score(name string, it persona.Item[Message], now time.Time) float64 {
	return s.w.Score(s.Facts(name, it.Payload, Mentioned(it.Payload.Content, name), now))
}

// Facts gathers what the score of m for the named persona depends on at
// now. mentioned says whether m @mentions the persona, as the caller
// decoded it once (Inbound.Names, or an item's addressees).
func (s *Scorer) Facts(name string, m Message, mentioned bool, now time.Time) Facts {
	key := strings.ToLower(name)
	s.mu.Lock()
	prof := s.profiles[key]
	last, recent := s.active[key][m.Room]
	s.mu.Unlock()
	return Facts{
		Mentioned:  mentioned,
		RecentRoom: recent && now.Sub(last) <= s.w.RecentFor,
		Expertise:  MatchesExpertise(m.Content, prof.Expertise),
		Age:        now.Sub(m.At),
		Kind:       m.Kind,
		Depth:      m.Depth,
	}
}

// Facts are what a score depends on, so that the simulator can score
// without holding chat messages.
type Facts struct {
	Mentioned  bool
	RecentRoom bool
	Expertise  bool
	Age        time.Duration
	Kind       Kind
	Depth      int
}

// Score is the pure scoring function.
func (w Weights) Score(f Facts) float64 {
	p := w.Base
	if f.RecentRoom {
		p += w.RecentRoom
	}
	if f.Expertise {
		p += w.Expertise
	}
	if f.Age < w.FreshFor {
		p += w.Fresh
	}
	switch f.Kind {
	case Human:
		p += w.Human
	case Persona:
		p += w.FromPeer
	}
	p += w.PerDepth * float64(f.Depth)
	p = min(p, w.MaxNormal)
	if f.Mentioned {
		p = max(p+w.Mention, w.Urgent)
	}
	return min(1, max(0, p))
}

// MatchesExpertise reports whether content contains one of the words as a
// whole word (case-insensitive).
func MatchesExpertise(content string, words []string) bool {
	if len(words) == 0 {
		return false
	}
	for _, tok := range strings.FieldsFunc(strings.ToLower(content), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '+' && r != '#'
	}) {
		for _, w := range words {
			if tok == w {
				return true
			}
		}
	}
	return false
}
