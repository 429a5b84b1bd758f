package server

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/personaos/persona/chat"
)

func TestDefaultPersonasMatchTheExampleFile(t *testing.T) {
	root, err := os.ReadFile(filepath.Join("..", "personas.yaml"))
	if err != nil {
		t.Fatalf("the example config at the repository root: %v", err)
	}
	if !bytes.Equal(root, defaultPersonasYAML) {
		t.Fatal("personas.yaml at the repository root and server/personas.yaml (embedded) differ: copy one over the other")
	}
	specs := DefaultPersonas()
	var names []string
	for _, s := range specs {
		names = append(names, s.Name)
		if s.System == "" || len(s.Expertise) == 0 {
			t.Errorf("%s: built-in persona without system prompt or expertise", s.Name)
		}
	}
	if got := strings.Join(names, ","); got != "Helper,CodeReview,Teacher,Planner" {
		t.Errorf("built-in personas = %s", got)
	}
}

func TestParsePersonasAcceptsEveryField(t *testing.T) {
	specs, err := ParsePersonas("p.yaml", []byte(`
personas:
  - name: Alpha
    display_name: The Alpha
    system_prompt: "  You are Alpha.  "
    expertise: [Go, "c++", go]
    model: llama3
    capacity: 10
    cadence: {idle: 1s, active: 2s, tired: 3s, overwhelmed: 4s}
    thresholds: {idle: 0.05, active: 0.2, tired: 0.4, overwhelmed: 0.95}
  - name: beta
    waits_for: [alpha]
    may_mention: [ALPHA]
`))
	if err != nil {
		t.Fatal(err)
	}
	a, b := specs[0], specs[1]
	if a.Name != "Alpha" || a.Display != "The Alpha" || a.System != "You are Alpha." || a.Model != "llama3" || a.Capacity != 10 {
		t.Errorf("alpha = %+v", a)
	}
	if strings.Join(a.Expertise, ",") != "go,c++" {
		t.Errorf("expertise = %v, want lower-cased and deduplicated", a.Expertise)
	}
	if a.Cadence != (Cadences{Idle: time.Second, Active: 2 * time.Second, Tired: 3 * time.Second, Overwhelmed: 4 * time.Second}) {
		t.Errorf("cadence = %+v", a.Cadence)
	}
	if a.Thresholds != (Thresholds{Idle: 0.05, Active: 0.2, Tired: 0.4, Overwhelmed: 0.95}) {
		t.Errorf("thresholds = %+v", a.Thresholds)
	}
	if len(b.WaitsFor) != 1 || b.WaitsFor[0] != "Alpha" {
		t.Errorf("waits_for = %v, want the declared spelling [Alpha]", b.WaitsFor)
	}
	if len(b.MayMention) != 1 || b.MayMention[0] != "Alpha" {
		t.Errorf("may_mention = %v, want the declared spelling [Alpha]", b.MayMention)
	}
	if a.Line != 3 || b.Line != 11 {
		t.Errorf("lines = %d, %d; want 3, 11", a.Line, b.Line)
	}
}

func TestParsePersonasRejects(t *testing.T) {
	cases := []struct {
		name, yaml, want string
	}{
		{"not yaml", "personas: [", "p.yaml:1: not valid YAML"},
		{"empty file", "", "p.yaml: empty file"},
		{"not a mapping", "- a\n", "p.yaml:1: want a mapping"},
		{"unknown top-level field", "persona: []\n", "p.yaml:1: persona: unknown field (known: personas)"},
		{"missing personas", "{}\n", "p.yaml:1: personas: missing"},
		{"personas not a list", "personas: {a: 1}\n", "p.yaml:1: personas: must be a list"},
		{"no personas", "personas: []\n", "p.yaml:1: personas: empty"},
		{"persona not a mapping", "personas:\n  - Helper\n", "p.yaml:2: personas[0]: must be a mapping"},
		{"missing name", "personas:\n  - model: x\n", "p.yaml:2: personas[0].name: missing"},
		{"bad name", "personas:\n  - name: 2fast\n", "p.yaml:2: personas[0].name: \"2fast\": want a letter"},
		{"name with space", "personas:\n  - name: Code Review\n", "personas[0].name: \"Code Review\""},
		{"unknown field", "personas:\n  - name: A\n    capcity: 3\n", "p.yaml:3: personas[0].capcity: unknown field"},
		{"duplicate key", "personas:\n  - name: A\n    name: B\n", "p.yaml:3: personas[0].name: given twice"},
		{"capacity zero", "personas:\n  - name: A\n    capacity: 0\n", "p.yaml:3: personas[0].capacity: must be >= 1"},
		{"capacity not a number", "personas:\n  - name: A\n    capacity: lots\n", "personas[0].capacity: must be a whole number, not \"lots\""},
		{"capacity a list", "personas:\n  - name: A\n    capacity: [1]\n", "personas[0].capacity: must be a whole number"},
		{"cadence not a duration", "personas:\n  - name: A\n    cadence: {idle: soon}\n", "p.yaml:3: personas[0].cadence.idle: must be a duration"},
		{"cadence negative", "personas:\n  - name: A\n    cadence: {idle: -1s}\n", "personas[0].cadence.idle: must be above 0"},
		{"unknown mood", "personas:\n  - name: A\n    cadence: {sleepy: 1s}\n", "personas[0].cadence.sleepy: unknown mood"},
		{"threshold above one", "personas:\n  - name: A\n    thresholds: {tired: 1.5}\n", "personas[0].thresholds.tired: must be between 0 and 1"},
		{"expertise not a list", "personas:\n  - name: A\n    expertise: go\n", "personas[0].expertise: must be a list"},
		{"expertise phrase", "personas:\n  - name: A\n    expertise: [code review]\n", "p.yaml:3: personas[0].expertise[0]: \"code review\": one word"},
		{"null string", "personas:\n  - name: A\n    model: ~\n", "personas[0].model: must be a string"},
		{"duplicate name", "personas:\n  - name: A\n  - name: a\n", "p.yaml:3: personas[1].name: \"a\" is already the name of personas[0]"},
		{"unknown waits_for", "personas:\n  - name: A\n    waits_for: [Zed]\n", "p.yaml:2: personas[0].waits_for[0]: no persona is named \"Zed\""},
		{"waits for itself", "personas:\n  - name: A\n    waits_for: [a]\n", "personas[0].waits_for[0]: a persona cannot wait for itself"},
		{"unknown may_mention", "personas:\n  - name: A\n    may_mention: [Zed]\n", "p.yaml:2: personas[0].may_mention[0]: no persona is named \"Zed\""},
		{"may mention itself", "personas:\n  - name: A\n    may_mention: [a]\n", "personas[0].may_mention[0]: a persona does not mention itself"},
		{"cycle", "personas:\n  - name: A\n    waits_for: [C]\n  - name: B\n    waits_for: [A]\n  - name: C\n    waits_for: [B]\n",
			"p.yaml:2: personas[0].waits_for: dependency cycle A -> C -> B -> A"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			specs, err := ParsePersonas("p.yaml", []byte(c.yaml))
			if err == nil {
				t.Fatalf("accepted: %+v", specs)
			}
			if specs != nil {
				t.Errorf("returned personas along with the error: nothing may start half-configured")
			}
			if !errors.Is(err, ErrConfig) {
				t.Errorf("error does not wrap ErrConfig: %v", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error:\n  %v\nwant it to contain:\n  %s", err, c.want)
			}
		})
	}
}

func TestParsePersonasReportsEveryProblem(t *testing.T) {
	_, err := ParsePersonas("p.yaml", []byte("personas:\n  - name: A\n    capacity: 0\n  - name: B\n    cadence: {idle: x}\n"))
	var ces []*ConfigError
	for _, e := range unwrapAll(err) {
		var ce *ConfigError
		if errors.As(e, &ce) {
			ces = append(ces, ce)
		}
	}
	if len(ces) != 2 || ces[0].Line != 3 || ces[1].Line != 5 || ces[1].Field != "personas[1].cadence.idle" {
		t.Fatalf("got %v", err)
	}
}

func unwrapAll(err error) []error {
	if err == nil {
		return nil
	}
	var out []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			out = append(out, unwrapAll(e)...)
		}
		return out
	}
	if u := errors.Unwrap(err); u != nil {
		return append([]error{err}, unwrapAll(u)...)
	}
	return []error{err}
}

func TestLoadPersonasNamesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mine.yaml")
	if err := os.WriteFile(path, []byte("personas:\n  - name: A\n    capacity: -2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadPersonas(path)
	if err == nil || !strings.Contains(err.Error(), path+":3: personas[0].capacity: must be >= 1") {
		t.Fatalf("got %v", err)
	}
	if _, err := LoadPersonas(filepath.Join(t.TempDir(), "absent.yaml")); !errors.Is(err, ErrConfig) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

func TestSelectPersonas(t *testing.T) {
	specs := []PersonaSpec{{Name: "A"}, {Name: "B", WaitsFor: []string{"A"}}, {Name: "C"}}
	cases := []struct {
		name    string
		sel     []string
		want    string
		wantErr string
	}{
		{"all by default", nil, "A,B,C", ""},
		{"case-insensitive subset in file order", []string{"c", " a "}, "A,C", ""},
		{"unknown name", []string{"A", "Zed"}, "", "--personas names zed, not in the configuration (known: A, B, C)"},
		{"pipeline cut in two", []string{"B"}, "", "persona B waits for A, which --personas leaves out"},
		{"nothing selected", []string{" "}, "", "selects no persona"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := selectPersonas(specs, c.sel)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, s := range got {
				names = append(names, s.Name)
			}
			if strings.Join(names, ",") != c.want {
				t.Errorf("got %v, want %s", names, c.want)
			}
		})
	}
}

func TestDownstream(t *testing.T) {
	specs := []PersonaSpec{{Name: "A"}, {Name: "B", WaitsFor: []string{"A"}}, {Name: "C", WaitsFor: []string{"B"}}, {Name: "D"}}
	if got := strings.Join(downstream(specs, "A"), ","); got != "a,b,c" {
		t.Errorf("downstream(A) = %s", got)
	}
	if got := strings.Join(downstream(specs, "D"), ","); got != "d" {
		t.Errorf("downstream(D) = %s", got)
	}
}

// The daemon's defaults are chat.DefaultSettings, which are a scenario's
// too: what the simulator measures by default is what the daemon runs.
func TestDaemonDefaultsAreChatDefaultSettings(t *testing.T) {
	got, want := Config{}.withDefaults().settings(), chat.DefaultSettings()
	if got.QuietAfter != want.QuietAfter || got.ReplyBudget != want.ReplyBudget || got.ReplyWindow != want.ReplyWindow ||
		got.MaxDepth != want.MaxDepth || got.RespondAbove != want.RespondAbove || got.NoMerge != want.NoMerge {
		t.Errorf("rules = %+v, want %+v", got, want)
	}
	g, w := got.Stream, want.Stream
	if g.Window != w.Window || g.MinWindow != w.MinWindow || g.MaxWindow != w.MaxWindow || g.K != w.K ||
		g.FixedWindow != w.FixedWindow || g.WindowFromFirstThought != w.WindowFromFirstThought || g.Patience != w.Patience {
		t.Errorf("stream = %+v, want %+v", g, w)
	}
}
