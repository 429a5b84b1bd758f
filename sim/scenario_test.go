package sim

import (
	"context"
	"errors"
	"io/fs"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/personaos/persona/chat"
	"github.com/personaos/persona/coord"
	"github.com/personaos/persona/scenarios"
)

// schemaExample is the schema from the issue, verbatim.
const schemaExample = `name: overload-burst
seed: 7                       # all randomness reproducible
duration: 2h                  # virtual time
cores: 2                      # for duty cycle and the governor
sla: {urgent: 10s}
personas:
  - name: helper
    count: 3                  # expands to helper-1..helper-3
    expertise: [go, code]
    handle: {median: 4s, p95: 20s}   # lognormal time of one evaluation (a model call)
    capacity: 1000
    waits_for: []             # names of personas or groups
traffic:
  rate: 0.5/s                 # Poisson arrivals of chat messages (/s, /m or /h)
  rooms: 4
  mention: 0.1                # chance a message @mentions one persona
  topics: {go: 0.3, code: 0.2, weather: 0.5}   # chance of each topic word
  human: 0.6                  # share of arrivals written by humans
  replies_feed_back: true     # persona replies are messages too, which others may answer
  bursts:
    - {at: 30m, for: 5m, rate: 10/s}
`

func TestParseScenarioAcceptsTheSchemaExample(t *testing.T) {
	sc, err := ParseScenario("example.yaml", []byte(schemaExample))
	if err != nil {
		t.Fatal(err)
	}
	want := Scenario{
		Name: "overload-burst", Seed: 7, Duration: 2 * time.Hour, Cores: 2, SLA: SLA{Urgent: 10 * time.Second},
		// Unsaid, the window counts from the first thought: the daemon's
		// default (chat.DefaultSettings).
		Coordination: Coordination{FromFirstThought: true},
		Personas: []PersonaSpec{{Name: "helper", Count: 3, Expertise: []string{"go", "code"},
			Handle: Handle{Median: 4 * time.Second, P95: 20 * time.Second}, Capacity: 1000, WaitsFor: []string{}}},
		Traffic: Traffic{Rate: 0.5, Rooms: 4, Mention: 0.1, Human: 0.6, RepliesFeedBack: true,
			Topics: []Topic{{"go", 0.3}, {"code", 0.2}, {"weather", 0.5}},
			Bursts: []Burst{{At: 30 * time.Minute, For: 5 * time.Minute, Rate: 10}}},
	}
	if !reflect.DeepEqual(*sc, want) {
		t.Errorf("parsed\n%+v\nwant\n%+v", *sc, want)
	}
	if got := sc.Personas[0].instances(); strings.Join(got, ",") != "helper-1,helper-2,helper-3" {
		t.Errorf("instances = %v", got)
	}
}

func TestPersonaFileFieldsParseAndChangeBehaviour(t *testing.T) {
	const src = `name: t
duration: 20m
seed: 2
personas:
  - name: a
    display_name: Alpha
    system_prompt: You are Alpha.
    model: small
    expertise: [go]
    handle: {median: 1s, p95: 2s}
    cadence: {idle: 30s, active: 30s}
    thresholds: {idle: 0.95, active: 0.95, tired: 0.95, overwhelmed: 0.95}
traffic:
  rate: 0.2/s
  topics: {go: 0.5}
`
	sc, err := ParseScenario("s.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	ps := sc.Personas[0]
	if ps.Cadence != (chat.Cadences{Idle: 30 * time.Second, Active: 30 * time.Second}) ||
		ps.Thresholds != (chat.Thresholds{Idle: 0.95, Active: 0.95, Tired: 0.95, Overwhelmed: 0.95}) ||
		ps.Display != "Alpha" || ps.System != "You are Alpha." || ps.Model != "small" {
		t.Fatalf("persona = %+v", ps)
	}
	strict, err := Run(context.Background(), sc, Persona, Options{})
	if err != nil {
		t.Fatal(err)
	}
	sc.Personas[0].Cadence, sc.Personas[0].Thresholds = chat.Cadences{}, chat.Thresholds{}
	plain, err := Run(context.Background(), sc, Persona, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Thresholds of 0.95 leave only what reaches them (nothing here: no
	// mentions) to engage, and a 30s cadence makes every wait longer.
	if strict.Replies >= plain.Replies || strict.WaitSeconds.Normal.P50 <= plain.WaitSeconds.Normal.P50 {
		t.Errorf("overrides: %d replies, normal wait p50 %.1fs; defaults: %d replies, %.1fs; want fewer replies and longer waits",
			strict.Replies, strict.WaitSeconds.Normal.P50, plain.Replies, plain.WaitSeconds.Normal.P50)
	}
}

func TestParseScenarioReadsTheBudget(t *testing.T) {
	for _, tc := range []struct {
		yaml string
		want Budget
	}{
		{"", Budget{PerSec: DefaultBudgetPerSec, Burst: DefaultBudgetBurst}},
		{"budget: {per_sec: 0.5}\n", Budget{PerSec: 0.5, Burst: DefaultBudgetBurst}},
		{"budget: {per_sec: -1, burst: 3}\n", Budget{PerSec: -1, Burst: 3}},
	} {
		sc, err := ParseScenario("b.yaml", []byte(tc.yaml+schemaExample))
		if err != nil {
			t.Fatalf("%q: %v", tc.yaml, err)
		}
		if got := sc.withDefaults().Budget; got != tc.want {
			t.Errorf("%q: budget %+v, want %+v", tc.yaml, got, tc.want)
		}
	}
}

func TestParseScenarioRejects(t *testing.T) {
	// base is a valid scenario; each case replaces one line (or appends).
	const base = `name: t
duration: 1h
personas:
  - name: a
    handle: {median: 1s, p95: 2s}
  - name: b
    count: 2
    waits_for: [a]
traffic:
  rate: 1/s
  topics: {go: 0.5}
  bursts:
    - {at: 10m, for: 1m, rate: 5/s}
`
	tests := []struct {
		name      string
		old, new  string // replace old with new in base
		line      int
		field     string
		msgSubstr string
	}{
		{"unknown top-level field", "duration: 1h", "duration: 1h\ncolour: blue", 3, "colour", "unknown field"},
		{"unknown nested field", "rate: 1/s", "rate: 1/s\n  ratee: 2/s", 11, "traffic.ratee", "unknown field"},
		{"unknown persona field", "  - name: a\n", "  - name: a\n    mood: happy\n", 5, "personas[0].mood", "unknown field"},
		{"duplicate field", "duration: 1h", "duration: 1h\nduration: 2h", 3, "duration", "duplicate"},
		{"missing name", "name: t\n", "", 0, "name", "required"},
		{"missing rate", "  rate: 1/s\n", "", 0, "traffic.rate", "required"},
		{"empty name", "name: t", "name: ''", 1, "name", "non-empty"},
		{"duration without unit", "duration: 1h", "duration: 3600", 2, "duration", "unit"},
		{"negative duration", "duration: 1h", "duration: -1h", 2, "duration", "positive"},
		{"zero duration", "duration: 1h", "duration: 0s", 2, "duration", "positive"},
		{"duration nonsense", "duration: 1h", "duration: soon", 2, "duration", "unit"},
		{"seed negative", "duration: 1h", "duration: 1h\nseed: -3", 3, "seed", "non-negative integer"},
		{"seed float", "duration: 1h", "duration: 1h\nseed: 1.5", 3, "seed", "non-negative integer"},
		{"cores zero", "duration: 1h", "duration: 1h\ncores: 0", 3, "cores", ">= 1"},
		{"cores text", "duration: 1h", "duration: 1h\ncores: two", 3, "cores", ">= 1"},
		{"sla bad", "duration: 1h", "duration: 1h\nsla: {urgent: fast}", 3, "sla.urgent", "duration"},
		{"sla unknown", "duration: 1h", "duration: 1h\nsla: {normal: 1m}", 3, "sla.normal", "unknown field"},
		{"ceiling above one", "duration: 1h", "duration: 1h\nceiling: 1.5", 3, "ceiling", "(0, 1]"},
		{"personas not a list", "personas:\n  - name: a\n    handle: {median: 1s, p95: 2s}\n  - name: b\n    count: 2\n    waits_for: [a]\n", "personas: lots\n", 3, "personas", "list"},
		{"count zero", "    count: 2", "    count: 0", 7, "personas[1].count", ">= 1"},
		{"capacity negative", "    count: 2", "    count: 2\n    capacity: -5", 8, "personas[1].capacity", ">= 1"},
		{"handle median bad", "{median: 1s, p95: 2s}", "{median: 1x, p95: 2s}", 5, "personas[0].handle.median", "duration"},
		{"handle p95 below median", "{median: 1s, p95: 2s}", "{median: 3s, p95: 2s}", 5, "personas[0].handle.p95", "below the median"},
		{"handle missing p95", "{median: 1s, p95: 2s}", "{median: 1s}", 5, "personas[0].handle.p95", "required"},
		{"persona name with space", "  - name: a\n", "  - name: a b\n", 4, "personas[0].name", "letters"},
		{"duplicate persona", "  - name: b\n", "  - name: a\n", 6, "personas[1].name", "duplicate persona"},
		{"expertise not a list", "  - name: a\n", "  - name: a\n    expertise: go\n", 5, "personas[0].expertise", "list"},
		{"waits for unknown", "waits_for: [a]", "waits_for: [zed]", 8, "personas[1].waits_for", "unknown persona"},
		{"waits for itself", "waits_for: [a]", "waits_for: [b]", 8, "personas[1].waits_for", "itself"},
		{"cycle", "  - name: a\n", "  - name: a\n    waits_for: [b]\n", 5, "personas[0].waits_for", "dependency cycle a -> b-1 -> a"},
		{"rate without unit", "rate: 1/s", "rate: 1", 10, "traffic.rate", "rate like"},
		{"rate bad unit", "rate: 1/s", "rate: 1/d", 10, "traffic.rate", "per s, m or h"},
		{"rate negative", "rate: 1/s", "rate: -1/s", 10, "traffic.rate", ">= 0"},
		{"rooms zero", "rate: 1/s", "rate: 1/s\n  rooms: 0", 11, "traffic.rooms", ">= 1"},
		{"mention above one", "rate: 1/s", "rate: 1/s\n  mention: 1.2", 11, "traffic.mention", "[0, 1]"},
		{"human negative", "rate: 1/s", "rate: 1/s\n  human: -0.1", 11, "traffic.human", "[0, 1]"},
		{"topic probability", "{go: 0.5}", "{go: 2}", 11, "traffic.topics.go", "[0, 1]"},
		{"topics not a map", "{go: 0.5}", "[go]", 11, "traffic.topics", "mapping"},
		{"replies_feed_back not bool", "rate: 1/s", "rate: 1/s\n  replies_feed_back: sometimes", 11, "traffic.replies_feed_back", "true or false"},
		{"burst missing rate", "{at: 10m, for: 1m, rate: 5/s}", "{at: 10m, for: 1m}", 13, "traffic.bursts[0].rate", "required"},
		{"burst zero length", "{at: 10m, for: 1m, rate: 5/s}", "{at: 10m, for: 0s, rate: 5/s}", 13, "traffic.bursts[0].for", "positive"},
		{"bursts overlap", "    - {at: 10m, for: 1m, rate: 5/s}\n", "    - {at: 10m, for: 1m, rate: 5/s}\n    - {at: 10m30s, for: 1m, rate: 5/s}\n", 14, "traffic.bursts[1]", "overlaps"},
		{"budget rate zero", "duration: 1h", "duration: 1h\nbudget: {per_sec: 0}", 3, "budget.per_sec", "negative: unlimited"},
		{"budget burst zero", "duration: 1h", "duration: 1h\nbudget: {per_sec: 1, burst: 0}", 3, "budget.burst", ">= 1"},
		{"budget unknown", "duration: 1h", "duration: 1h\nbudget: {rate: 1}", 3, "budget.rate", "unknown field"},
		{"coordination k zero", "duration: 1h", "duration: 1h\ncoordination: {k: 0}", 3, "coordination.k", ">= 1"},
		{"coordination min above max", "duration: 1h", "duration: 1h\ncoordination: {min_window: 5s, max_window: 1s}", 3, "coordination.min_window", "above"},
		{"coordination patience zero", "duration: 1h", "duration: 1h\ncoordination: {patience: 0s}", 3, "coordination.patience", "positive"},
		{"cadence not a duration", "    count: 2", "    count: 2\n    cadence: {idle: soon}", 8, "personas[1].cadence.idle", "duration"},
		{"cadence above an hour", "    count: 2", "    count: 2\n    cadence: {active: 2h}", 8, "personas[1].cadence.active", "at most 1h"},
		{"cadence unknown mood", "    count: 2", "    count: 2\n    cadence: {sleepy: 1s}", 8, "personas[1].cadence.sleepy", "unknown field"},
		{"threshold above one", "    count: 2", "    count: 2\n    thresholds: {tired: 1.5}", 8, "personas[1].thresholds.tired", "[0, 1]"},
		{"thresholds not a mapping", "    count: 2", "    count: 2\n    thresholds: 0.5", 8, "personas[1].thresholds", "mapping"},
		{"display_name empty", "  - name: a\n", "  - name: a\n    display_name: ''\n", 5, "personas[0].display_name", "non-empty"},
		{"rules unknown", "duration: 1h", "duration: 1h\nrules: {budget: 3}", 3, "rules.budget", "unknown field"},
		{"rules reply_budget zero", "duration: 1h", "duration: 1h\nrules: {reply_budget: 0}", 3, "rules.reply_budget", ">= 1"},
		{"rules respond_above above one", "duration: 1h", "duration: 1h\nrules: {respond_above: 2}", 3, "rules.respond_above", "(0, 1]"},
		{"coordination from_first_thought not bool", "duration: 1h", "duration: 1h\ncoordination: {from_first_thought: maybe}", 3, "coordination.from_first_thought", "true or false"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(base, tc.old) {
				t.Fatalf("test case: %q not in base", tc.old)
			}
			src := strings.Replace(base, tc.old, tc.new, 1)
			expectFieldError(t, src, tc.line, tc.field, tc.msgSubstr)
		})
	}
}

func expectFieldError(t *testing.T, src string, line int, field, msg string) {
	t.Helper()
	_, err := ParseScenario("s.yaml", []byte(src))
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("err = %v, want a *FieldError\n%s", err, src)
	}
	if fe.File != "s.yaml" || fe.Field != field || !strings.Contains(fe.Msg, msg) || (line > 0 && fe.Line != line) {
		t.Errorf("err = %q (line %d, field %q), want line %d field %q containing %q", err, fe.Line, fe.Field, line, field, msg)
	}
	if want := "s.yaml:"; !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "field "+field+": ") {
		t.Errorf("err = %q, want file:line: field %s: ...", err, field)
	}
}

func TestParseScenarioRejectsEmptyAndMalformed(t *testing.T) {
	for name, src := range map[string]string{
		"empty":       "",
		"not a map":   "- a\n- b\n",
		"bad yaml":    "name: [unclosed\n",
		"only a name": "name: x\n",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseScenario("s.yaml", []byte(src)); err == nil || !strings.Contains(err.Error(), "s.yaml") {
				t.Errorf("err = %v, want an error naming the file", err)
			}
		})
	}
}

func TestParseRate(t *testing.T) {
	tests := []struct {
		in   string
		want Rate
		ok   bool
	}{
		{"0.5/s", 0.5, true},
		{"10/m", 10.0 / 60, true},
		{"3/h", 3.0 / 3600, true},
		{" 2 / s ", 2, true},
		{"0/s", 0, true},
		{"1", 0, false},
		{"1/d", 0, false},
		{"x/s", 0, false},
		{"-1/s", 0, false},
		{"NaN/s", 0, false},
		{"Inf/s", 0, false},
	}
	for _, tc := range tests {
		got, err := ParseRate(tc.in)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("ParseRate(%q) = %v, %v; want %v, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestShippedScenariosParse(t *testing.T) {
	names := shipped(t)
	for _, n := range []string{"steady.yaml", "overload-burst.yaml", "mention-storm.yaml", "pipeline.yaml"} {
		if !contains(names, n) {
			t.Errorf("scenario %s is not shipped (have %v)", n, names)
		}
	}
	for _, n := range names {
		sc, err := loadShipped(t, n)
		if err != nil {
			t.Errorf("%s: %v", n, err)
			continue
		}
		// The chat daemon's stream: adaptive, at most 3 s, from the first
		// thought.
		if c := sc.withDefaults().Coordination; c.Fixed || !c.FromFirstThought || c.MaxWindow != 3*time.Second ||
			c.Window != coord.DefaultWindow || c.MinWindow != coord.DefaultMinWindow || c.Patience != time.Minute {
			t.Errorf("%s: coordination %+v, want the chat daemon's", n, c)
		}
	}
}

func TestValidateRejectsGoBuiltScenarios(t *testing.T) {
	good := func() *Scenario {
		return &Scenario{Name: "x", Duration: time.Minute, Personas: []PersonaSpec{{Name: "a"}}, Traffic: Traffic{Rate: 1}}
	}
	if err := good().Validate(); err != nil {
		t.Fatalf("valid scenario rejected: %v", err)
	}
	tests := map[string]func(*Scenario){
		"no name":           func(s *Scenario) { s.Name = "" },
		"no duration":       func(s *Scenario) { s.Duration = 0 },
		"no personas":       func(s *Scenario) { s.Personas = nil },
		"bad mention":       func(s *Scenario) { s.Traffic.Mention = 2 },
		"bad handle":        func(s *Scenario) { s.Personas[0].Handle = Handle{Median: time.Second} },
		"unknown waits":     func(s *Scenario) { s.Personas[0].WaitsFor = []string{"b"} },
		"negative rate":     func(s *Scenario) { s.Traffic.Rate = -1 },
		"ceiling over 1":    func(s *Scenario) { s.Ceiling = 2 },
		"budget NaN":        func(s *Scenario) { s.Budget.PerSec = math.NaN() },
		"negative burst":    func(s *Scenario) { s.Budget.Burst = -1 },
		"negative patience": func(s *Scenario) { s.Coordination.Patience = -time.Second },
	}
	for name, mutate := range tests {
		t.Run(name, func(t *testing.T) {
			s := good()
			mutate(s)
			if err := s.Validate(); !errors.Is(err, ErrInvalid) {
				t.Errorf("Validate = %v, want ErrInvalid", err)
			}
		})
	}
}

func shipped(t testing.TB) []string {
	t.Helper()
	ents, err := fs.ReadDir(scenarios.FS, ".")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func loadShipped(t testing.TB, name string) (*Scenario, error) {
	t.Helper()
	data, err := scenarios.FS.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return ParseScenario(name, data)
}

func contains(s []string, x string) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}
