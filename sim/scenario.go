package sim

import (
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/personaos/persona/chat"
	"github.com/personaos/persona/deps"
	"github.com/personaos/persona/govern"
)

// Scenario is a simulated world: personas, the traffic that reaches them
// and the machine they share. Build one with ParseScenario or LoadScenario
// (which validate it); a Scenario built in Go is checked by Validate, which
// Run calls. The zero value is not a valid scenario.
type Scenario struct {
	Name     string
	Seed     uint64        // all randomness derives from it
	Duration time.Duration // virtual time simulated
	// Cores is the number of model slots: how many model calls run at
	// once (default 2). It is the denominator of the duty cycle and the
	// governor's Cores.
	Cores int
	SLA   SLA
	// Ceiling is the governor's duty-cycle ceiling for the persona policy
	// (default govern.DefaultCeiling, 0.7).
	Ceiling float64
	// Budget is the persona policy's compute budget for model calls, the
	// daemon's (default 2 a second, bursts of 20, as persona serve).
	Budget Budget
	// DepsTimeout is the per-stage time after which a dependency barrier
	// releases a dependent without a stalled prerequisite (default 1m;
	// deps.Options.Timeout, whose own default of 5s suits camera frames,
	// not chat personas that scan every 3 to 10 s).
	DepsTimeout  time.Duration
	Coordination Coordination
	// Rules are the chat rules' numbers besides the stream's (zero fields
	// take chat.DefaultSettings', the daemon's defaults).
	Rules    Rules
	Personas []PersonaSpec
	Traffic  Traffic
}

// SLA holds the service levels the report checks.
type SLA struct {
	// Urgent is the longest an urgent delivery may wait before a persona
	// starts on it (default 10s, DESIGN.md).
	Urgent time.Duration
}

// Coordination configures the coordination stream shared by all policies.
// Zero fields take chat.DefaultSettings().Stream's, the chat daemon's
// defaults: window 1.5s adapting within [250ms, 3s], K = 1, patience 1m,
// and, when no field is set at all (or the file does not say), the window
// from the first thought. The fields mirror coord.Options.
type Coordination struct {
	Window    time.Duration
	MinWindow time.Duration
	MaxWindow time.Duration
	Fixed     bool // no adaptation: every decision gets Window
	K         int  // responders granted per message besides addressees
	// FromFirstThought is coord.Options.WindowFromFirstThought: a
	// decision's window starts at its first thought, and an item nobody
	// thinks about closes after Patience.
	FromFirstThought bool
	// Patience is coord.Options.Patience (default 1m); only read with
	// FromFirstThought.
	Patience time.Duration
}

// Rules are the numbers of the chat rules (chat.Settings) other than the
// coordination stream's; chat's doc.go says what each rule means.
type Rules struct {
	QuietAfter   time.Duration // a persona's message this long after the room's last human one is not answered
	ReplyBudget  int           // persona replies per room per ReplyWindow; an addressed reply is counted, never refused
	ReplyWindow  time.Duration
	MaxDepth     int     // a persona's message at this reply depth is not answered
	RespondAbove float64 // the score from which a persona not addressed responds
}

// settings are the chat rules' settings of a defaulted scenario: Rules and
// Coordination over chat.DefaultSettings.
func (sc Scenario) settings() chat.Settings {
	s := chat.Settings{QuietAfter: sc.Rules.QuietAfter, ReplyBudget: sc.Rules.ReplyBudget, ReplyWindow: sc.Rules.ReplyWindow,
		MaxDepth: sc.Rules.MaxDepth, RespondAbove: sc.Rules.RespondAbove}.WithDefaults()
	c := sc.Coordination
	s.Stream.Window, s.Stream.MinWindow, s.Stream.MaxWindow = c.Window, c.MinWindow, c.MaxWindow
	s.Stream.FixedWindow, s.Stream.K = c.Fixed, c.K
	s.Stream.WindowFromFirstThought, s.Stream.Patience = c.FromFirstThought, c.Patience
	return s
}

// PersonaSpec is one group of identical personas. Besides the simulator's
// own fields (Count, Handle) it has the daemon's persona file's
// (chat.PersonaSpec): the cadence and threshold overrides change the
// persona policy's rhythm as they change the daemon's; Display, System and
// Model are accepted so that a persona file simulates as it is, and change
// nothing in virtual time.
type PersonaSpec struct {
	Name       string
	Count      int             // instances: name-1..name-Count (just name when 1)
	Expertise  []string        // lower-case topic words
	Handle     Handle          // duration of one model call
	Capacity   int             // inbox capacity (default 1000)
	WaitsFor   []string        // persona or group names
	Cadence    chat.Cadences   // per-mood scan cadence overrides (zero: the seed's)
	Thresholds chat.Thresholds // per-mood engagement threshold overrides (zero: the seed's)
	Display    string
	System     string
	Model      string
	// NoReply (reply: false) makes the persona a pipeline stage, not a
	// chat persona: every item it engages costs its Handle time of work on
	// one of the scenario's cores and releases its dependents; the chat
	// guards and coordination do not apply to it, and its accounts are
	// reported like any persona's.
	NoReply bool
	// Complexity is the energy cost weight of each item it handles (default
	// 1: the seed's drain of d/10s). A stage whose items are light for the
	// persona's energy (a camera frame) sets it below 1.
	Complexity float64
}

// Handle is a lognormal duration given by its median and 95th percentile.
type Handle struct {
	Median, P95 time.Duration
}

// Rate is an arrival rate in events per second.
type Rate float64

// Traffic describes the chat messages that arrive from outside.
type Traffic struct {
	Rate    Rate    // Poisson arrivals outside bursts
	Rooms   int     // rooms, chosen uniformly (default 1)
	Mention float64 // chance that a message @mentions one persona
	Topics  []Topic // independent chance of each topic word, in file order
	// Human is the share of arrivals written by humans (ParseScenario's
	// default is 1; in Go, zero means none); the rest are written by a
	// random persona of the scenario.
	Human           float64
	RepliesFeedBack bool // persona replies are delivered like any message
	Bursts          []Burst
	// Deadline, if positive, is how long after its arrival an item is
	// worth handling: a persona that reaches it later accounts it expired
	// (a camera frame).
	Deadline time.Duration
	// Script, when set, replaces the random arrivals: these messages, and
	// only these, arrive from outside (replay a conversation). Rate,
	// Bursts, Mention, Human and the topics' chances then draw nothing;
	// RepliesFeedBack still delivers the personas' replies.
	Script []ScriptMessage
}

// ScriptMessage is one message of a script (Traffic.Script). It is decoded
// as the daemon decodes a room message: an @mention of a persona addresses
// it, and the words of Text are matched against the personas' expertise
// (chat.MatchesExpertise), so one script can be posted to the daemon and
// simulated alike.
type ScriptMessage struct {
	At time.Duration // since the start of the run
	// Room names the room; rooms are numbered in order of first
	// appearance (Traffic.Rooms is raised to their number).
	Room string
	// Author is a persona of the scenario (its message, posted by another
	// runtime as a random persona message is: the reply budget counts it,
	// it is not delivered to its author, and its reply depth is 0) or
	// anyone else (a human).
	Author string
	// Text is the content. It may @mention one persona of the scenario
	// (the simulator's messages address at most one).
	Text string
}

// Topic is a topic word and the chance a message contains it.
type Topic struct {
	Word string
	P    float64
}

// Burst replaces the arrival rate during [At, At+For).
type Burst struct {
	At, For time.Duration
	Rate    Rate
}

// Scenario defaults.
const (
	DefaultCores       = 2
	DefaultSLA         = 10 * time.Second
	DefaultCapacity    = 1000 // the seed's maxSize
	DefaultDepsTimeout = time.Minute
	// DefaultPatience is coord's default Options.Patience.
	DefaultPatience = time.Minute
)

// defaultHandle is the schema example's model call: median 4s, p95 20s.
var defaultHandle = Handle{Median: 4 * time.Second, P95: 20 * time.Second}

// FieldError is a rejected scenario field, with where it was found.
type FieldError struct {
	File  string
	Line  int
	Field string // path like personas[1].handle.median
	Msg   string
}

func (e *FieldError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteString(":")
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, "%d:", e.Line)
	}
	if b.Len() > 0 {
		b.WriteString(" ")
	}
	if e.Field != "" {
		fmt.Fprintf(&b, "field %s: ", e.Field)
	}
	b.WriteString(e.Msg)
	return b.String()
}

// LoadScenario reads and parses a scenario file.
func LoadScenario(path string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("sim: load scenario: %w", err)
	}
	return ParseScenario(path, data)
}

// ParseScenario parses a scenario from YAML. file names the source in
// errors. Unknown fields, duplicate keys, missing required fields (name,
// duration, personas, traffic.rate) and bad values are rejected with a
// *FieldError giving file, line and field.
func ParseScenario(file string, data []byte) (*Scenario, error) {
	return parse(&parser{file: file}, file, data)
}

func parse(p *parser, file string, data []byte) (*Scenario, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("sim: %s: %w", file, err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, p.errf(&doc, "", "empty scenario")
	}
	root := deref(doc.Content[0])
	sc, err := p.scenario(root)
	if err != nil {
		return nil, err
	}
	if p.trafficOnly {
		return sc, nil // Validate runs once the personas are in (Run)
	}
	if err := sc.Validate(); err != nil {
		return nil, fmt.Errorf("sim: %s: %w", file, err)
	}
	return sc, nil
}

type parser struct {
	file string
	// traffic parses a traffic file (ParseTraffic): a scenario without
	// personas, which come from a persona file.
	trafficOnly bool
}

func (p *parser) errf(n *yaml.Node, field, format string, args ...any) error {
	return &FieldError{File: p.file, Line: n.Line, Field: field, Msg: fmt.Sprintf(format, args...)}
}

func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// fields walks a mapping, rejecting duplicate and unknown keys, and calls
// set for each known one. It returns the keys seen.
func (p *parser) fields(n *yaml.Node, path string, known []string, set func(key string, v *yaml.Node, field string) error) (map[string]bool, error) {
	if n.Kind != yaml.MappingNode {
		return nil, p.errf(n, path, "want a mapping, got %s", kindName(n))
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), deref(n.Content[i+1])
		field := k.Value
		if path != "" {
			field = path + "." + k.Value
		}
		if !slices.Contains(known, k.Value) {
			return nil, p.errf(k, field, "unknown field (known: %s)", strings.Join(known, ", "))
		}
		if seen[k.Value] {
			return nil, p.errf(k, field, "duplicate field")
		}
		seen[k.Value] = true
		if err := set(k.Value, v, field); err != nil {
			return nil, err
		}
	}
	return seen, nil
}

func (p *parser) require(n *yaml.Node, path string, seen map[string]bool, names ...string) error {
	for _, name := range names {
		if !seen[name] {
			field := name
			if path != "" {
				field = path + "." + name
			}
			return p.errf(n, field, "required")
		}
	}
	return nil
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

func (p *parser) scenario(n *yaml.Node) (*Scenario, error) {
	sc := &Scenario{}
	// Unsaid, the window counts from the first thought, as the daemon's
	// (chat.DefaultSettings); said, the coordination section decides.
	sc.Coordination.FromFirstThought = chat.DefaultSettings().Stream.WindowFromFirstThought
	known := []string{"name", "seed", "duration", "cores", "sla", "ceiling", "budget", "deps_timeout", "coordination", "rules", "personas", "traffic"}
	required := []string{"name", "duration", "personas", "traffic"}
	if p.trafficOnly {
		// The personas are the persona file's.
		known, required = slices.DeleteFunc(known, func(k string) bool { return k == "personas" }), []string{"duration", "traffic"}
	}
	seen, err := p.fields(n, "", known, func(key string, v *yaml.Node, field string) (err error) {
		switch key {
		case "name":
			sc.Name, err = p.str(v, field)
		case "seed":
			sc.Seed, err = p.uint(v, field)
		case "duration":
			sc.Duration, err = p.duration(v, field, false)
		case "cores":
			sc.Cores, err = p.count(v, field)
		case "sla":
			_, err = p.fields(v, field, []string{"urgent"}, func(_ string, v *yaml.Node, field string) (err error) {
				sc.SLA.Urgent, err = p.duration(v, field, false)
				return err
			})
		case "ceiling":
			sc.Ceiling, err = p.float(v, field)
			if err == nil && !(sc.Ceiling > 0 && sc.Ceiling <= 1) {
				err = p.errf(v, field, "want a fraction of the machine in (0, 1], got %s", v.Value)
			}
		case "budget":
			err = p.budget(v, field, &sc.Budget)
		case "deps_timeout":
			sc.DepsTimeout, err = p.duration(v, field, false)
		case "coordination":
			err = p.coordination(v, field, &sc.Coordination)
		case "rules":
			err = p.rules(v, field, &sc.Rules)
		case "personas":
			sc.Personas, err = p.personas(v, field)
		case "traffic":
			err = p.traffic(v, field, &sc.Traffic)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := p.require(n, "", seen, required...); err != nil {
		return nil, err
	}
	if err := p.checkDeps(n, sc); err != nil {
		return nil, err
	}
	return sc, nil
}

func (p *parser) rules(n *yaml.Node, path string, ru *Rules) error {
	_, err := p.fields(n, path, []string{"quiet_after", "reply_budget", "reply_window", "max_depth", "respond_above"}, func(key string, v *yaml.Node, field string) (err error) {
		switch key {
		case "quiet_after":
			ru.QuietAfter, err = p.duration(v, field, false)
		case "reply_budget":
			ru.ReplyBudget, err = p.count(v, field)
		case "reply_window":
			ru.ReplyWindow, err = p.duration(v, field, false)
		case "max_depth":
			ru.MaxDepth, err = p.count(v, field)
		case "respond_above":
			ru.RespondAbove, err = p.float(v, field)
			if err == nil && !(ru.RespondAbove > 0 && ru.RespondAbove <= 1) {
				err = p.errf(v, field, "want a score in (0, 1], got %s", v.Value)
			}
		}
		return err
	})
	return err
}

// budget reads {per_sec, burst}: the daemon's --budget (negative:
// unlimited) and --budget-burst.
func (p *parser) budget(n *yaml.Node, path string, b *Budget) error {
	_, err := p.fields(n, path, []string{"per_sec", "burst"}, func(key string, v *yaml.Node, field string) (err error) {
		switch key {
		case "per_sec":
			b.PerSec, err = p.float(v, field)
			if err == nil && b.PerSec == 0 {
				err = p.errf(v, field, "want model calls per second (negative: unlimited), got 0")
			}
		case "burst":
			b.Burst, err = p.count(v, field)
		}
		return err
	})
	return err
}

func (p *parser) coordination(n *yaml.Node, path string, c *Coordination) error {
	// Unsaid, the window counts from the first thought, as the daemon's.
	c.FromFirstThought = chat.DefaultSettings().Stream.WindowFromFirstThought
	_, err := p.fields(n, path, []string{"window", "min_window", "max_window", "fixed", "k", "from_first_thought", "patience"}, func(key string, v *yaml.Node, field string) (err error) {
		switch key {
		case "window":
			c.Window, err = p.duration(v, field, false)
		case "min_window":
			c.MinWindow, err = p.duration(v, field, false)
		case "max_window":
			c.MaxWindow, err = p.duration(v, field, false)
		case "fixed":
			c.Fixed, err = p.bool(v, field)
		case "k":
			c.K, err = p.count(v, field)
		case "from_first_thought":
			c.FromFirstThought, err = p.bool(v, field)
		case "patience":
			c.Patience, err = p.duration(v, field, false)
		}
		return err
	})
	if err == nil && c.MinWindow > 0 && c.MaxWindow > 0 && c.MinWindow > c.MaxWindow {
		return p.errf(n, path+".min_window", "%v is above max_window %v", c.MinWindow, c.MaxWindow)
	}
	return err
}

func (p *parser) personas(n *yaml.Node, path string) ([]PersonaSpec, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, p.errf(n, path, "want a list of personas, got %s", kindName(n))
	}
	if len(n.Content) == 0 {
		return nil, p.errf(n, path, "want at least one persona")
	}
	var out []PersonaSpec
	names := map[string]bool{}
	for i, e := range n.Content {
		e = deref(e)
		field := fmt.Sprintf("%s[%d]", path, i)
		ps := PersonaSpec{Count: 1}
		known := []string{"name", "count", "expertise", "handle", "capacity", "waits_for",
			"cadence", "thresholds", "display_name", "system_prompt", "model", "reply", "complexity",
			// The persona file's model settings: accepted so that a persona
			// file's entries read as a scenario's, and not modelled (the
			// handle time is the call's time).
			"model_url", "max_tokens", "temperature", "model_timeout"}
		seen, err := p.fields(e, field, known, func(key string, v *yaml.Node, field string) (err error) {
			switch key {
			case "name":
				ps.Name, err = p.name(v, field)
			case "count":
				ps.Count, err = p.count(v, field)
			case "expertise":
				ps.Expertise, err = p.words(v, field)
			case "handle":
				ps.Handle, err = p.handle(v, field)
			case "capacity":
				ps.Capacity, err = p.count(v, field)
			case "waits_for":
				ps.WaitsFor, err = p.words(v, field)
			case "cadence":
				c := &ps.Cadence
				err = p.moods(v, field, func(mood string, v *yaml.Node, field string) error {
					d, err := p.duration(v, field, false)
					if err == nil && d > time.Hour {
						err = p.errf(v, field, "want at most 1h, got %q", v.Value)
					}
					byMood(mood, d, &c.Idle, &c.Active, &c.Tired, &c.Overwhelmed)
					return err
				})
			case "thresholds":
				t := &ps.Thresholds
				err = p.moods(v, field, func(mood string, v *yaml.Node, field string) error {
					f, err := p.prob(v, field)
					byMood(mood, f, &t.Idle, &t.Active, &t.Tired, &t.Overwhelmed)
					return err
				})
			case "display_name":
				ps.Display, err = p.str(v, field)
			case "system_prompt":
				ps.System, err = p.str(v, field)
			case "model":
				ps.Model, err = p.str(v, field)
			case "model_url":
				_, err = p.str(v, field)
			case "max_tokens":
				_, err = p.count(v, field)
			case "temperature":
				_, err = p.float(v, field)
			case "model_timeout":
				_, err = p.duration(v, field, false)
			case "reply":
				var reply bool
				reply, err = p.bool(v, field)
				ps.NoReply = !reply
			case "complexity":
				ps.Complexity, err = p.float(v, field)
				if err == nil && !(ps.Complexity > 0) {
					err = p.errf(v, field, "want a positive weight, got %q", v.Value)
				}
			}
			return err
		})
		if err != nil {
			return nil, err
		}
		if err := p.require(e, field, seen, "name"); err != nil {
			return nil, err
		}
		if names[ps.Name] {
			return nil, p.errf(e, field+".name", "duplicate persona %q", ps.Name)
		}
		names[ps.Name] = true
		out = append(out, ps)
	}
	// Instance names must not collide with a group name or each other.
	inst := map[string]int{}
	for i, ps := range out {
		for _, name := range ps.instances() {
			if j, dup := inst[name]; dup && j != i {
				return nil, p.errf(deref(n.Content[i]), fmt.Sprintf("%s[%d].name", path, i), "persona %q collides with persona %q of %s[%d]", name, name, path, j)
			}
			inst[name] = i
		}
	}
	return out, nil
}

// moods walks a per-mood mapping (the daemon's persona file's cadence and
// thresholds).
func (p *parser) moods(n *yaml.Node, path string, set func(mood string, v *yaml.Node, field string) error) error {
	_, err := p.fields(n, path, []string{"idle", "active", "tired", "overwhelmed"}, func(key string, v *yaml.Node, field string) error {
		return set(key, v, field)
	})
	return err
}

// byMood stores v in the field for mood.
func byMood[T any](mood string, v T, idle, active, tired, overwhelmed *T) {
	switch mood {
	case "idle":
		*idle = v
	case "active":
		*active = v
	case "tired":
		*tired = v
	case "overwhelmed":
		*overwhelmed = v
	}
}

func (p *parser) handle(n *yaml.Node, path string) (Handle, error) {
	var h Handle
	seen, err := p.fields(n, path, []string{"median", "p95"}, func(key string, v *yaml.Node, field string) (err error) {
		switch key {
		case "median":
			h.Median, err = p.duration(v, field, false)
		case "p95":
			h.P95, err = p.duration(v, field, false)
		}
		return err
	})
	if err != nil {
		return h, err
	}
	if err := p.require(n, path, seen, "median", "p95"); err != nil {
		return h, err
	}
	if h.P95 < h.Median {
		return h, p.errf(n, path+".p95", "p95 %v is below the median %v", h.P95, h.Median)
	}
	return h, nil
}

func (p *parser) traffic(n *yaml.Node, path string, t *Traffic) error {
	t.Rooms, t.Human = 1, 1
	known := []string{"rate", "rooms", "mention", "topics", "human", "replies_feed_back", "bursts", "deadline", "script"}
	seen, err := p.fields(n, path, known, func(key string, v *yaml.Node, field string) (err error) {
		switch key {
		case "rate":
			t.Rate, err = p.rate(v, field)
		case "rooms":
			t.Rooms, err = p.count(v, field)
		case "mention":
			t.Mention, err = p.prob(v, field)
		case "human":
			t.Human, err = p.prob(v, field)
		case "replies_feed_back":
			t.RepliesFeedBack, err = p.bool(v, field)
		case "topics":
			if v.Kind != yaml.MappingNode {
				return p.errf(v, field, "want a mapping of word: chance, got %s", kindName(v))
			}
			seen := map[string]bool{}
			for i := 0; i+1 < len(v.Content); i += 2 {
				k, pv := deref(v.Content[i]), deref(v.Content[i+1])
				w, err := p.name(k, field)
				if err != nil {
					return err
				}
				w = strings.ToLower(w)
				if seen[w] {
					return p.errf(k, field+"."+w, "duplicate topic")
				}
				seen[w] = true
				pr, err := p.prob(pv, field+"."+w)
				if err != nil {
					return err
				}
				t.Topics = append(t.Topics, Topic{Word: w, P: pr})
			}
			if len(t.Topics) > maxTopics {
				return p.errf(v, field, "at most %d topics", maxTopics)
			}
		case "bursts":
			t.Bursts, err = p.bursts(v, field)
		case "script":
			t.Script, err = p.script(v, field)
		case "deadline":
			t.Deadline, err = p.duration(v, field, false)
		}
		return err
	})
	if err != nil {
		return err
	}
	if seen["script"] {
		return nil // the script is the traffic: no rate needed
	}
	return p.require(n, path, seen, "rate")
}

// script reads a list of {at, room, author, text}; at is required, room
// defaults to "general" and author to "human".
func (p *parser) script(n *yaml.Node, path string) ([]ScriptMessage, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, p.errf(n, path, "want a list of messages, got %s", kindName(n))
	}
	var out []ScriptMessage
	for i, e := range n.Content {
		e = deref(e)
		field := fmt.Sprintf("%s[%d]", path, i)
		m := ScriptMessage{Room: "general", Author: "human"}
		seen, err := p.fields(e, field, []string{"at", "room", "author", "text"}, func(key string, v *yaml.Node, field string) (err error) {
			switch key {
			case "at":
				m.At, err = p.duration(v, field, true)
			case "room":
				m.Room, err = p.str(v, field)
			case "author":
				m.Author, err = p.str(v, field)
			case "text":
				err = p.scalar(v, field, "a string")
				m.Text = v.Value
			}
			return err
		})
		if err != nil {
			return nil, err
		}
		if err := p.require(e, field, seen, "at"); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// maxTopics bounds topic words so a message's topics fit in a bit set.
const maxTopics = 64

func (p *parser) bursts(n *yaml.Node, path string) ([]Burst, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, p.errf(n, path, "want a list of bursts, got %s", kindName(n))
	}
	var out []Burst
	for i, e := range n.Content {
		e = deref(e)
		field := fmt.Sprintf("%s[%d]", path, i)
		var b Burst
		seen, err := p.fields(e, field, []string{"at", "for", "rate"}, func(key string, v *yaml.Node, field string) (err error) {
			switch key {
			case "at":
				b.At, err = p.duration(v, field, true)
			case "for":
				b.For, err = p.duration(v, field, false)
			case "rate":
				b.Rate, err = p.rate(v, field)
			}
			return err
		})
		if err != nil {
			return nil, err
		}
		if err := p.require(e, field, seen, "at", "for", "rate"); err != nil {
			return nil, err
		}
		for j, o := range out {
			if b.At < o.At+o.For && o.At < b.At+b.For {
				return nil, p.errf(e, field, "overlaps %s[%d]", path, j)
			}
		}
		out = append(out, b)
	}
	return out, nil
}

// checkDeps resolves waits_for against persona and group names and checks
// the graph with deps.NewGraph (unknown names, self-dependencies, cycles).
func (p *parser) checkDeps(root *yaml.Node, sc *Scenario) error {
	line := func(i int) (*yaml.Node, string) {
		field := fmt.Sprintf("personas[%d].waits_for", i)
		pn := findKey(root, "personas")
		if pn == nil || i >= len(pn.Content) {
			return root, field
		}
		e := deref(pn.Content[i])
		if w := findKey(e, "waits_for"); w != nil {
			return w, field
		}
		return e, field
	}
	for i, ps := range sc.Personas {
		for _, w := range ps.WaitsFor {
			if w == ps.Name || slices.Contains(ps.instances(), w) {
				n, field := line(i)
				return p.errf(n, field, "persona %q waits for itself", ps.Name)
			}
			if _, err := sc.resolve(w); err != nil {
				n, field := line(i)
				return p.errf(n, field, "%v", err)
			}
		}
	}
	if _, err := sc.graph(); err != nil {
		// Point at the persona that starts the cycle (its earliest-declared
		// member), else at the first that waits for anyone.
		i := slices.IndexFunc(sc.Personas, func(ps PersonaSpec) bool { return len(ps.WaitsFor) > 0 })
		msg := err.Error()
		if ce := (*deps.CycleError)(nil); errors.As(err, &ce) {
			if j := slices.IndexFunc(sc.Personas, func(ps PersonaSpec) bool { return slices.Contains(ps.instances(), ce.Path[0]) }); j >= 0 {
				i = j
			}
			msg = "dependency cycle " + strings.Join(ce.Path, " -> ")
		}
		n, field := line(max(i, 0))
		return p.errf(n, field, "%s", msg)
	}
	return nil
}

func findKey(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if deref(m.Content[i]).Value == key {
			return deref(m.Content[i+1])
		}
	}
	return nil
}

func (p *parser) scalar(n *yaml.Node, field, want string) error {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		return p.errf(n, field, "want %s, got %s", want, kindName(n))
	}
	return nil
}

func (p *parser) str(n *yaml.Node, field string) (string, error) {
	if err := p.scalar(n, field, "a string"); err != nil {
		return "", err
	}
	if strings.TrimSpace(n.Value) == "" {
		return "", p.errf(n, field, "want a non-empty string")
	}
	return n.Value, nil
}

// name is a persona, group or topic word: letters, digits, '-' and '_',
// which is what an @mention can name (chat.Mentions).
func (p *parser) name(n *yaml.Node, field string) (string, error) {
	s, err := p.str(n, field)
	if err != nil {
		return "", err
	}
	for _, r := range s {
		if !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return "", p.errf(n, field, "want a name of letters, digits, '-' and '_', got %q", s)
		}
	}
	return s, nil
}

func (p *parser) words(n *yaml.Node, field string) ([]string, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, p.errf(n, field, "want a list, got %s", kindName(n))
	}
	out := []string{}
	for i, e := range n.Content {
		w, err := p.name(deref(e), fmt.Sprintf("%s[%d]", field, i))
		if err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, nil
}

func (p *parser) uint(n *yaml.Node, field string) (uint64, error) {
	if err := p.scalar(n, field, "a non-negative integer"); err != nil {
		return 0, err
	}
	v, err := strconv.ParseUint(n.Value, 10, 64)
	if err != nil || n.Tag != "!!int" {
		return 0, p.errf(n, field, "want a non-negative integer, got %q", n.Value)
	}
	return v, nil
}

// count is an integer >= 1.
func (p *parser) count(n *yaml.Node, field string) (int, error) {
	if err := p.scalar(n, field, "an integer >= 1"); err != nil {
		return 0, err
	}
	v, err := strconv.Atoi(n.Value)
	if err != nil || n.Tag != "!!int" || v < 1 {
		return 0, p.errf(n, field, "want an integer >= 1, got %q", n.Value)
	}
	return v, nil
}

func (p *parser) float(n *yaml.Node, field string) (float64, error) {
	if err := p.scalar(n, field, "a number"); err != nil {
		return 0, err
	}
	v, err := strconv.ParseFloat(n.Value, 64)
	if err != nil || (n.Tag != "!!int" && n.Tag != "!!float") || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, p.errf(n, field, "want a number, got %q", n.Value)
	}
	return v, nil
}

func (p *parser) prob(n *yaml.Node, field string) (float64, error) {
	v, err := p.float(n, field)
	if err != nil {
		return 0, err
	}
	if v < 0 || v > 1 {
		return 0, p.errf(n, field, "want a probability in [0, 1], got %s", n.Value)
	}
	return v, nil
}

func (p *parser) bool(n *yaml.Node, field string) (bool, error) {
	var b bool
	if err := p.scalar(n, field, "true or false"); err != nil {
		return false, err
	}
	if n.Tag != "!!bool" || n.Decode(&b) != nil {
		return false, p.errf(n, field, "want true or false, got %q", n.Value)
	}
	return b, nil
}

// duration is a Go duration with a unit: 10s, 30m, 2h, 1h30m, 500ms.
func (p *parser) duration(n *yaml.Node, field string, zeroOK bool) (time.Duration, error) {
	if err := p.scalar(n, field, "a duration like 30s"); err != nil {
		return 0, err
	}
	d, err := time.ParseDuration(strings.TrimSpace(n.Value))
	if err != nil {
		return 0, p.errf(n, field, "want a duration with a unit like 10s, 30m or 2h, got %q", n.Value)
	}
	if d < 0 || (d == 0 && !zeroOK) {
		return 0, p.errf(n, field, "want a positive duration, got %q", n.Value)
	}
	return d, nil
}

// rate is "<number>/s", "/m" or "/h".
func (p *parser) rate(n *yaml.Node, field string) (Rate, error) {
	if err := p.scalar(n, field, "a rate like 0.5/s"); err != nil {
		return 0, err
	}
	r, err := ParseRate(n.Value)
	if err != nil {
		return 0, p.errf(n, field, "%v", err)
	}
	return r, nil
}

// ParseRate parses a rate such as 0.5/s, 10/m or 3/h into events per
// second. Negative, NaN and infinite rates are errors.
func ParseRate(s string) (Rate, error) {
	num, unit, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return 0, fmt.Errorf("want a rate like 0.5/s, 10/m or 3/h, got %q", s)
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("want a rate like 0.5/s, 10/m or 3/h, got %q", s)
	}
	if v < 0 {
		return 0, fmt.Errorf("want a rate >= 0, got %q", s)
	}
	switch strings.TrimSpace(unit) {
	case "s":
	case "m":
		v /= 60
	case "h":
		v /= 3600
	default:
		return 0, fmt.Errorf("want a rate per s, m or h, got %q", s)
	}
	return Rate(v), nil
}

// String renders the rate per second.
func (r Rate) String() string { return strconv.FormatFloat(float64(r), 'g', -1, 64) + "/s" }

func (ps PersonaSpec) instances() []string {
	if ps.Count <= 1 {
		return []string{ps.Name}
	}
	out := make([]string, ps.Count)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", ps.Name, i+1)
	}
	return out
}

// instance reports whether name (any case) is a persona instance of sc.
func (sc *Scenario) instance(name string) bool {
	for _, ps := range sc.Personas {
		if slices.ContainsFunc(ps.instances(), func(n string) bool { return strings.EqualFold(n, name) }) {
			return true
		}
	}
	return false
}

// resolve expands a waits_for name (a group or one instance) to instances.
func (sc *Scenario) resolve(name string) ([]string, error) {
	for _, ps := range sc.Personas {
		if ps.Name == name {
			return ps.instances(), nil
		}
		if slices.Contains(ps.instances(), name) {
			return []string{name}, nil
		}
	}
	return nil, fmt.Errorf("waits for unknown persona %q", name)
}

// graph builds the dependency graph over persona instances.
func (sc *Scenario) graph() (*deps.Graph, error) {
	var nodes []deps.Node
	for _, ps := range sc.Personas {
		var waits []string
		for _, w := range ps.WaitsFor {
			ns, err := sc.resolve(w)
			if err != nil {
				return nil, err
			}
			waits = append(waits, ns...)
		}
		for _, name := range ps.instances() {
			nodes = append(nodes, deps.Node{Name: name, WaitsFor: waits})
		}
	}
	return deps.NewGraph(nodes)
}

// ErrInvalid is wrapped by Validate's errors.
var ErrInvalid = errors.New("invalid scenario")

// Validate checks a scenario built in Go (ParseScenario has checked the
// same with lines). Zero optional fields are allowed: Run fills defaults.
func (sc *Scenario) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
	}
	switch {
	case sc == nil:
		return bad("nil scenario")
	case sc.Name == "":
		return bad("name is empty")
	case sc.Duration <= 0:
		return bad("duration %v is not positive", sc.Duration)
	case sc.Cores < 0:
		return bad("cores %d is negative", sc.Cores)
	case sc.SLA.Urgent < 0:
		return bad("sla.urgent %v is negative", sc.SLA.Urgent)
	case sc.Ceiling < 0 || sc.Ceiling > 1 || math.IsNaN(sc.Ceiling):
		return bad("ceiling %v is outside (0, 1]", sc.Ceiling)
	case math.IsNaN(sc.Budget.PerSec) || math.IsInf(sc.Budget.PerSec, 0) || sc.Budget.Burst < 0:
		return bad("budget %+v: want a finite rate and a burst >= 0", sc.Budget)
	case len(sc.Personas) == 0:
		return bad("no personas")
	case sc.Traffic.Rate < 0 || math.IsNaN(float64(sc.Traffic.Rate)):
		return bad("traffic.rate %v is negative", sc.Traffic.Rate)
	case sc.Traffic.Rooms < 0:
		return bad("traffic.rooms %d is negative", sc.Traffic.Rooms)
	case !(sc.Traffic.Mention >= 0 && sc.Traffic.Mention <= 1):
		return bad("traffic.mention %v is not a probability", sc.Traffic.Mention)
	case !(sc.Traffic.Human >= 0 && sc.Traffic.Human <= 1):
		return bad("traffic.human %v is not a probability", sc.Traffic.Human)
	case len(sc.Traffic.Topics) > maxTopics:
		return bad("%d topics, at most %d", len(sc.Traffic.Topics), maxTopics)
	}
	for i, t := range sc.Traffic.Topics {
		if t.Word == "" || !(t.P >= 0 && t.P <= 1) {
			return bad("traffic.topics[%d]: want a word and a probability", i)
		}
	}
	for i, b := range sc.Traffic.Bursts {
		if b.At < 0 || b.For <= 0 || b.Rate < 0 {
			return bad("traffic.bursts[%d]: want at >= 0, for > 0, rate >= 0", i)
		}
	}
	for i, m := range sc.Traffic.Script {
		if m.At < 0 || m.Room == "" {
			return bad("traffic.script[%d]: want at >= 0 and a room", i)
		}
		named := 0
		for _, n := range chat.Mentions(m.Text) {
			if sc.instance(n) && !strings.EqualFold(n, m.Author) {
				named++
			}
		}
		if named > 1 {
			return bad("traffic.script[%d]: @mentions %d personas; a simulated message addresses at most one", i, named)
		}
	}
	total := 0
	for i, ps := range sc.Personas {
		switch {
		case ps.Name == "":
			return bad("personas[%d]: empty name", i)
		case ps.Count < 0 || ps.Capacity < 0:
			return bad("personas[%d]: negative count or capacity", i)
		case ps.Handle.Median < 0 || ps.Handle.P95 < ps.Handle.Median:
			return bad("personas[%d].handle: want 0 <= median <= p95", i)
		case min(ps.Cadence.Idle, ps.Cadence.Active, ps.Cadence.Tired, ps.Cadence.Overwhelmed) < 0:
			return bad("personas[%d].cadence: negative", i)
		case !inUnit(ps.Thresholds.Idle) || !inUnit(ps.Thresholds.Active) || !inUnit(ps.Thresholds.Tired) || !inUnit(ps.Thresholds.Overwhelmed):
			return bad("personas[%d].thresholds: want each in [0, 1]", i)
		}
		total += max(ps.Count, 1)
	}
	if total > math.MaxInt32/4 {
		return bad("too many personas")
	}
	if _, err := sc.graph(); err != nil {
		return bad("%v", err)
	}
	c := sc.Coordination
	if c.Window < 0 || c.MinWindow < 0 || c.MaxWindow < 0 || c.K < 0 || c.Patience < 0 {
		return bad("coordination: negative value")
	}
	if ru := sc.Rules; ru.QuietAfter < 0 || ru.ReplyBudget < 0 || ru.ReplyWindow < 0 || ru.MaxDepth < 0 || !(ru.RespondAbove >= 0 && ru.RespondAbove <= 1) {
		return bad("rules: negative value, or respond_above outside [0, 1]")
	}
	return nil
}

func inUnit(v float64) bool { return v >= 0 && v <= 1 }

// withDefaults returns a copy with every zero optional field set.
func (sc Scenario) withDefaults() Scenario {
	if sc.Cores == 0 {
		sc.Cores = DefaultCores
	}
	if sc.SLA.Urgent == 0 {
		sc.SLA.Urgent = DefaultSLA
	}
	if sc.Ceiling == 0 {
		sc.Ceiling = govern.DefaultCeiling
	}
	if sc.DepsTimeout == 0 {
		sc.DepsTimeout = DefaultDepsTimeout
	}
	if sc.Budget.PerSec == 0 {
		sc.Budget.PerSec = DefaultBudgetPerSec
	}
	if sc.Budget.Burst == 0 {
		sc.Budget.Burst = DefaultBudgetBurst
	}
	c := &sc.Coordination
	def := chat.DefaultSettings().Stream
	if *c == (Coordination{}) {
		c.FromFirstThought = def.WindowFromFirstThought
	}
	if c.Window == 0 {
		c.Window = def.Window
	}
	if c.MinWindow == 0 {
		c.MinWindow = def.MinWindow
	}
	if c.MaxWindow == 0 {
		c.MaxWindow = def.MaxWindow
	}
	// As coord.Options does: widen the bounds around the initial window.
	c.MinWindow = min(c.MinWindow, c.Window)
	c.MaxWindow = max(c.MaxWindow, c.Window)
	if c.K == 0 {
		c.K = def.K
	}
	if c.Patience == 0 {
		c.Patience = def.Patience
	}
	if sc.Traffic.Rooms == 0 {
		sc.Traffic.Rooms = 1
	}
	sc.Traffic.Rooms = max(sc.Traffic.Rooms, len(scriptRooms(sc.Traffic.Script)))
	ps := make([]PersonaSpec, len(sc.Personas))
	for i, p := range sc.Personas {
		if p.Count == 0 {
			p.Count = 1
		}
		if p.Capacity == 0 {
			p.Capacity = DefaultCapacity
		}
		if p.Handle.Median == 0 {
			p.Handle = defaultHandle
		}
		ex := make([]string, len(p.Expertise))
		for j, w := range p.Expertise {
			ex[j] = strings.ToLower(w)
		}
		p.Expertise = ex
		ps[i] = p
	}
	sc.Personas = ps
	return sc
}
