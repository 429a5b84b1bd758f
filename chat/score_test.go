package chat_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/personaos/persona"
	"github.com/personaos/persona/chat"
)

func TestMentions(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"hi @Helper and @code-review!", []string{"helper", "code-review"}},
		{"mail me at a@b.com", nil},
		{"@helper @HELPER twice", []string{"helper"}},
		{"a lone @ sign", nil},
	} {
		if got := chat.Mentions(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("Mentions(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestMentionAlwaysReachesUrgentLine(t *testing.T) {
	for _, w := range []chat.Weights{chat.DefaultWeights(), chat.SeedWeights()} {
		for depth := range 6 {
			for _, kind := range []chat.Kind{chat.Human, chat.Persona} {
				f := chat.Facts{Mentioned: true, Kind: kind, Depth: depth, Age: time.Hour}
				if p := w.Score(f); p < w.Urgent {
					t.Fatalf("mention scored %.2f < urgent %.2f (%+v)", p, w.Urgent, f)
				}
			}
		}
	}
}

func TestDefaultWeightsKeepUrgentRare(t *testing.T) {
	w := chat.DefaultWeights()
	seed := chat.SeedWeights()
	urgentDefault, urgentSeed := 0, 0
	// Every combination of the facts without a mention.
	for _, recent := range []bool{false, true} {
		for _, exp := range []bool{false, true} {
			for _, age := range []time.Duration{time.Second, time.Hour} {
				for _, kind := range []chat.Kind{chat.Human, chat.Persona} {
					f := chat.Facts{RecentRoom: recent, Expertise: exp, Age: age, Kind: kind}
					if w.Score(f) >= w.Urgent {
						urgentDefault++
					}
					if seed.Score(f) >= seed.Urgent {
						urgentSeed++
					}
				}
			}
		}
	}
	if urgentDefault != 0 {
		t.Fatalf("default weights made %d unmentioned cases urgent", urgentDefault)
	}
	if urgentSeed == 0 {
		t.Fatal("the seed's weights should make fresh messages in an active room urgent (that is the flaw)")
	}
}

func TestHumanOutranksPersonaAndDepthDamps(t *testing.T) {
	w := chat.DefaultWeights()
	h := w.Score(chat.Facts{Kind: chat.Human, Age: time.Second})
	p := w.Score(chat.Facts{Kind: chat.Persona, Age: time.Second})
	if h <= p {
		t.Fatalf("human %.2f should outrank persona %.2f", h, p)
	}
	prev := 2.0
	for d := range 4 {
		s := w.Score(chat.Facts{Kind: chat.Persona, Depth: d, Age: time.Second})
		if s >= prev && s > 0 {
			t.Fatalf("depth %d scored %.2f, not below %.2f", d, s, prev)
		}
		prev = s
	}
}

func TestScorerUsesProfileAndRecentRooms(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	s := chat.NewScorer(chat.DefaultWeights(), chat.Profile{Name: "CodeReview", Expertise: []string{"Go", "code"}})
	msg := func(content string) persona.Item[chat.Message] {
		return persona.Item[chat.Message]{ID: "m", Payload: chat.Message{Room: "general", Content: content, At: now, Kind: chat.Human}}
	}
	plain := s.Score("CodeReview", msg("nice weather"), now)
	expert := s.Score("CodeReview", msg("my go build fails"), now)
	if expert-plain < 0.149 {
		t.Fatalf("expertise should add 0.15: plain %.2f expert %.2f", plain, expert)
	}
	s.Touch("codereview", "general", now.Add(-time.Minute))
	recent := s.Score("CodeReview", msg("nice weather"), now)
	if recent-plain < 0.099 {
		t.Fatalf("recent room should add 0.1: %.2f vs %.2f", recent, plain)
	}
	if m := s.Score("CodeReview", msg("@codereview look"), now); m < 0.8 {
		t.Fatalf("mention scored %.2f", m)
	}
	later := now.Add(time.Hour)
	if got := s.Score("CodeReview", persona.Item[chat.Message]{Payload: chat.Message{Room: "general", Content: "nice weather", At: later, Kind: chat.Human}}, later); got != plain {
		t.Fatalf("activity an hour old still counts as recent: %.2f vs %.2f", got, plain)
	}
}

func ExampleWeights_Score() {
	w := chat.DefaultWeights()
	fmt.Printf("%.2f\n", w.Score(chat.Facts{Kind: chat.Human, Age: time.Second}))
	fmt.Printf("%.2f\n", w.Score(chat.Facts{Kind: chat.Persona, Depth: 2, Age: time.Second}))
	fmt.Printf("%.2f\n", w.Score(chat.Facts{Mentioned: true, Kind: chat.Persona, Depth: 3}))
	// Output:
	// 0.50
	// 0.10
	// 0.80
}

func TestKindRoundTripsAsText(t *testing.T) {
	for _, k := range []chat.Kind{chat.Human, chat.Persona, chat.System} {
		b, _ := k.MarshalText()
		var got chat.Kind
		if err := got.UnmarshalText(b); err != nil || got != k {
			t.Fatalf("%v -> %s -> %v, %v", k, b, got, err)
		}
	}
	var k chat.Kind
	if err := k.UnmarshalText([]byte("robot")); err == nil {
		t.Fatal("unknown kind accepted")
	}
}
