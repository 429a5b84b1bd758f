package chat

import (
	_ "embed"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"go.yaml.in/yaml/v3"

	"github.com/personaos/persona/state"
)

// The persona file: the personas a chat daemon runs (persona serve
// --config) and a simulation runs the same way (persona sim --config).
// Both read it here, so that a field means the same to both.

// PersonaSpec is one persona of the configuration: who it is, what it knows,
// and the overrides of its rhythm. The zero value of every optional field
// means the runtime's default.
type PersonaSpec struct {
	// Name is what @mentions use and what replies are signed with: a letter,
	// then letters, digits, '-' or '_', at most 32. Unique, case-insensitively.
	Name string
	// Display is the name shown on the dashboard (default Name).
	Display string
	// System is the system prompt (default: a short generic one).
	System string
	// Expertise holds lower-case words; a message containing one scores
	// higher for this persona (see chat.Scorer).
	Expertise []string
	// Model overrides the daemon's model name for this persona.
	Model string
	// ModelURL overrides the daemon's model server (--model-url) for this
	// persona: an OpenAI-compatible base URL, e.g. a second Ollama.
	ModelURL string
	// MaxTokens, Temperature and ModelTimeout override the daemon's
	// --max-tokens, --temperature and --model-timeout for this persona's
	// calls (zero, nil and zero: the daemon's).
	MaxTokens    int
	Temperature  *float64
	ModelTimeout time.Duration
	// Capacity of the inbox (default 1000).
	Capacity int
	// Cadence overrides the scan cadence by mood (zero: the seed's 3s / 5s /
	// 7s / 10s).
	Cadence Cadences
	// Thresholds overrides the engagement thresholds by mood (zero: the
	// seed's 0.1 / 0.3 / 0.5 / 0.9).
	Thresholds Thresholds
	// WaitsFor names personas that must finish a message before this one is
	// handed it (a pipeline). Such a persona is not coordinated: it answers
	// after its prerequisites on its own judgement.
	WaitsFor []string
	// MayMention names personas this persona's replies may call into the
	// room with an @mention. Any other @name in a model's reply is made
	// plain (but those of the people it answers), so that a model does not
	// set other personas talking on its own.
	MayMention []string
	// Line is where the persona was declared, for error messages; 0 when it
	// did not come from a file.
	Line int
}

// Cadences are per-mood scan cadences; zero fields take the default.
type Cadences struct{ Idle, Active, Tired, Overwhelmed time.Duration }

// Thresholds are per-mood engagement thresholds in [0, 1]; zero fields take
// the default.
type Thresholds struct{ Idle, Active, Tired, Overwhelmed float64 }

// ConfigError is one problem in a persona file, located by line and field
// path ("personas[2].capacity").
type ConfigError struct {
	File  string
	Line  int
	Field string
	Msg   string
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Field != "" {
		b.WriteString(": " + e.Field)
	}
	b.WriteString(": " + e.Msg)
	return b.String()
}

// ErrConfig is wrapped by every error of LoadPersonas and ParsePersonas.
var ErrConfig = errors.New("invalid persona configuration")

// LoadPersonas reads and validates a persona file.
func LoadPersonas(path string) ([]PersonaSpec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return ParsePersonas(path, data)
}

// maxConfigErrors bounds how many problems one error reports.
const maxConfigErrors = 20

// ParsePersonas decodes and validates a persona file's contents; name is the
// file name errors mention. Unknown fields, wrong types and bad values are
// errors (all of them, up to 20, joined, each "file:line: field: message"),
// and then no persona is returned: nothing starts half-configured.
func ParsePersonas(name string, data []byte) ([]PersonaSpec, error) {
	p := &parser{file: name}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		line := 0
		msg := err.Error()
		// yaml.v3 says "yaml: line 3: ..."; keep the line, drop the prefix.
		if rest, ok := strings.CutPrefix(msg, "yaml: line "); ok {
			if n, after, ok := strings.Cut(rest, ": "); ok {
				if l, err := strconv.Atoi(n); err == nil {
					line, msg = l, after
				}
			}
		}
		return nil, fmt.Errorf("%w: %w", ErrConfig, &ConfigError{File: name, Line: line, Msg: "not valid YAML: " + msg})
	}
	specs := p.document(&doc)
	if len(p.errs) == 0 {
		p.validate(specs)
	}
	if len(p.errs) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrConfig, errors.Join(p.errs...))
	}
	return specs, nil
}

type parser struct {
	file string
	errs []error
}

func (p *parser) fail(n *yaml.Node, field, format string, args ...any) {
	if len(p.errs) >= maxConfigErrors {
		return
	}
	line := 0
	if n != nil {
		line = n.Line
	}
	p.errs = append(p.errs, &ConfigError{File: p.file, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)})
}

func (p *parser) document(doc *yaml.Node) []PersonaSpec {
	if doc.Kind == 0 || len(doc.Content) == 0 {
		p.fail(nil, "", "empty file: want a \"personas:\" list")
		return nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		p.fail(root, "", "want a mapping with a \"personas:\" list")
		return nil
	}
	var list *yaml.Node
	p.fields(root, "", func(key string, k, v *yaml.Node) {
		switch key {
		case "personas":
			list = v
		default:
			p.fail(k, key, "unknown field (known: personas)")
		}
	})
	if list == nil {
		p.fail(root, "personas", "missing: list at least one persona")
		return nil
	}
	if list.Kind != yaml.SequenceNode {
		p.fail(list, "personas", "must be a list")
		return nil
	}
	if len(list.Content) == 0 {
		p.fail(list, "personas", "empty: list at least one persona")
		return nil
	}
	specs := make([]PersonaSpec, 0, len(list.Content))
	for i, n := range list.Content {
		specs = append(specs, p.persona(n, fmt.Sprintf("personas[%d]", i)))
	}
	return specs
}

// fields walks a mapping, reporting duplicate keys.
func (p *parser) fields(m *yaml.Node, path string, f func(key string, k, v *yaml.Node)) {
	seen := map[string]bool{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		field := join(path, k.Value)
		if k.Kind != yaml.ScalarNode {
			p.fail(k, path, "keys must be plain words")
			continue
		}
		if seen[k.Value] {
			p.fail(k, field, "given twice")
			continue
		}
		seen[k.Value] = true
		f(k.Value, k, v)
	}
}

func join(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

const personaFields = "name, display_name, system_prompt, expertise, model, model_url, max_tokens, temperature, model_timeout, capacity, cadence, thresholds, waits_for, may_mention"

func (p *parser) persona(n *yaml.Node, path string) PersonaSpec {
	s := PersonaSpec{Line: n.Line}
	if n.Kind != yaml.MappingNode {
		p.fail(n, path, "must be a mapping with at least a name")
		return s
	}
	var nameNode *yaml.Node
	p.fields(n, path, func(key string, k, v *yaml.Node) {
		field := join(path, key)
		switch key {
		case "name":
			nameNode = v
			s.Name = p.str(v, field)
		case "display_name":
			s.Display = p.str(v, field)
		case "system_prompt":
			s.System = p.str(v, field)
		case "expertise":
			s.Expertise = p.words(v, field)
		case "model":
			s.Model = p.str(v, field)
		case "model_url":
			s.ModelURL = p.str(v, field)
			if u, err := url.Parse(s.ModelURL); s.ModelURL != "" && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "") {
				p.fail(v, field, "%q: want an http(s) base URL such as http://127.0.0.1:11434/v1", s.ModelURL)
			}
		case "max_tokens":
			s.MaxTokens = p.integer(v, field, 1, 1_000_000)
		case "temperature":
			t := p.float(v, field, 0, 2)
			s.Temperature = &t
		case "model_timeout":
			s.ModelTimeout = p.duration(v, field)
		case "capacity":
			s.Capacity = p.integer(v, field, 1, 1_000_000)
		case "cadence":
			c := &s.Cadence
			p.moods(v, field, func(mood string, vv *yaml.Node, f string) {
				setByMood(mood, p.duration(vv, f), &c.Idle, &c.Active, &c.Tired, &c.Overwhelmed)
			})
		case "thresholds":
			t := &s.Thresholds
			p.moods(v, field, func(mood string, vv *yaml.Node, f string) {
				setByMood(mood, p.float(vv, f, 0, 1), &t.Idle, &t.Active, &t.Tired, &t.Overwhelmed)
			})
		case "waits_for":
			s.WaitsFor = p.names(v, field)
		case "may_mention":
			s.MayMention = p.names(v, field)
		default:
			p.fail(k, field, "unknown field (known: %s)", personaFields)
		}
	})
	if nameNode == nil {
		p.fail(n, join(path, "name"), "missing: every persona needs a name")
	} else if s.Name != "" && !validName.MatchString(s.Name) {
		p.fail(nameNode, join(path, "name"), "%q: want a letter, then letters, digits, '-' or '_', at most 32 (it is what @mentions use)", s.Name)
	}
	if len([]rune(s.Display)) > 64 {
		p.fail(n, join(path, "display_name"), "longer than 64 characters")
	}
	return s
}

// validName is what chat.Mentions recognises after an '@', starting with a
// letter so that "@2pm" is not a persona.
var validName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,31}$`)

func (p *parser) scalar(n *yaml.Node, field, what string) bool {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		p.fail(n, field, "must be %s", what)
		return false
	}
	return true
}

func (p *parser) str(n *yaml.Node, field string) string {
	if !p.scalar(n, field, "a string") {
		return ""
	}
	return strings.TrimSpace(n.Value)
}

func (p *parser) integer(n *yaml.Node, field string, lo, hi int) int {
	if !p.scalar(n, field, "a whole number") {
		return 0
	}
	v, err := strconv.Atoi(n.Value)
	if err != nil {
		p.fail(n, field, "must be a whole number, not %q", n.Value)
		return 0
	}
	if v < lo {
		p.fail(n, field, "must be >= %d", lo)
		return 0
	}
	if v > hi {
		p.fail(n, field, "must be <= %d", hi)
		return 0
	}
	return v
}

func (p *parser) float(n *yaml.Node, field string, lo, hi float64) float64 {
	if !p.scalar(n, field, "a number") {
		return 0
	}
	v, err := strconv.ParseFloat(n.Value, 64)
	if err != nil || math.IsNaN(v) {
		p.fail(n, field, "must be a number, not %q", n.Value)
		return 0
	}
	if v < lo || v > hi {
		p.fail(n, field, "must be between %g and %g", lo, hi)
		return 0
	}
	return v
}

func (p *parser) duration(n *yaml.Node, field string) time.Duration {
	if !p.scalar(n, field, `a duration such as "5s"`) {
		return 0
	}
	d, err := time.ParseDuration(n.Value)
	if err != nil {
		p.fail(n, field, `must be a duration such as "5s", not %q`, n.Value)
		return 0
	}
	if d <= 0 || d > time.Hour {
		p.fail(n, field, "must be above 0 and at most 1h")
		return 0
	}
	return d
}

func (p *parser) list(n *yaml.Node, field string) []*yaml.Node {
	if n.Kind != yaml.SequenceNode {
		p.fail(n, field, "must be a list")
		return nil
	}
	return n.Content
}

// words are expertise words: what chat.MatchesExpertise can match, a single
// token of letters, digits, '+' and '#', lower-cased.
func (p *parser) words(n *yaml.Node, field string) []string {
	var out []string
	for i, w := range p.list(n, field) {
		f := fmt.Sprintf("%s[%d]", field, i)
		s := strings.ToLower(p.str(w, f))
		switch {
		case s == "":
			p.fail(w, f, "empty word")
		case strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '+' && r != '#' }):
			p.fail(w, f, "%q: one word of letters, digits, '+' or '#' (messages are matched word by word)", s)
		case !slices.Contains(out, s):
			out = append(out, s)
		}
	}
	return out
}

func (p *parser) names(n *yaml.Node, field string) []string {
	var out []string
	for i, w := range p.list(n, field) {
		f := fmt.Sprintf("%s[%d]", field, i)
		if s := p.str(w, f); s != "" {
			out = append(out, s)
		} else {
			p.fail(w, f, "empty name")
		}
	}
	return out
}

func (p *parser) moods(n *yaml.Node, field string, f func(mood string, v *yaml.Node, field string)) {
	if n.Kind != yaml.MappingNode {
		p.fail(n, field, "must be a mapping of idle, active, tired, overwhelmed")
		return
	}
	p.fields(n, field, func(key string, k, v *yaml.Node) {
		switch key {
		case "idle", "active", "tired", "overwhelmed":
			f(key, v, join(field, key))
		default:
			p.fail(k, join(field, key), "unknown mood (known: idle, active, tired, overwhelmed)")
		}
	})
}

// validate checks what spans personas: unique names, waits_for and
// may_mention targets, and cycles. Names in both are resolved to their
// declared spelling.
func (p *parser) validate(specs []PersonaSpec) {
	byName := map[string]int{}
	for i, s := range specs {
		key := strings.ToLower(s.Name)
		if j, dup := byName[key]; dup {
			p.errs = append(p.errs, &ConfigError{File: p.file, Line: s.Line, Field: fmt.Sprintf("personas[%d].name", i),
				Msg: fmt.Sprintf("%q is already the name of personas[%d] (names are case-insensitive)", s.Name, j)})
			continue
		}
		byName[key] = i
	}
	for i := range specs {
		s := &specs[i]
		p.resolve(specs, byName, i, "waits_for", s.WaitsFor, "a persona cannot wait for itself")
		p.resolve(specs, byName, i, "may_mention", s.MayMention, "a persona does not mention itself")
	}
	if len(p.errs) > 0 {
		return
	}
	if cyc := findCycle(specs); cyc != nil {
		first := specs[cyc[0]]
		names := make([]string, len(cyc))
		for i, c := range cyc {
			names[i] = specs[c].Name
		}
		p.errs = append(p.errs, &ConfigError{File: p.file, Line: first.Line, Field: fmt.Sprintf("personas[%d].waits_for", cyc[0]),
			Msg: "dependency cycle " + strings.Join(names, " -> ")})
	}
}

// resolve checks that each name of personas[i]'s list field names another
// persona, and rewrites it to that persona's declared spelling; self is
// the error for a persona's own name.
func (p *parser) resolve(specs []PersonaSpec, byName map[string]int, i int, key string, names []string, self string) {
	for j, w := range names {
		field := fmt.Sprintf("personas[%d].%s[%d]", i, key, j)
		k, ok := byName[strings.ToLower(w)]
		switch {
		case !ok:
			p.errs = append(p.errs, &ConfigError{File: p.file, Line: specs[i].Line, Field: field, Msg: fmt.Sprintf("no persona is named %q", w)})
		case k == i:
			p.errs = append(p.errs, &ConfigError{File: p.file, Line: specs[i].Line, Field: field, Msg: self})
		default:
			names[j] = specs[k].Name
		}
	}
}

// findCycle returns the indices of a waits_for cycle, first repeated at the
// end ("a -> b -> a"), or nil.
func findCycle(specs []PersonaSpec) []int {
	idx := map[string]int{}
	for i, s := range specs {
		idx[s.Name] = i
	}
	const (
		white = iota
		grey
		black
	)
	color := make([]int, len(specs))
	var stack []int
	var found []int
	var visit func(i int) bool
	visit = func(i int) bool {
		color[i] = grey
		stack = append(stack, i)
		for _, w := range specs[i].WaitsFor {
			j := idx[w]
			switch color[j] {
			case grey:
				start := slices.Index(stack, j)
				found = append(slices.Clone(stack[start:]), j)
				return true
			case white:
				if visit(j) {
					return true
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[i] = black
		return false
	}
	for i := range specs {
		if color[i] == white && visit(i) {
			return found
		}
	}
	return nil
}

// SystemPrompt is the persona's prompt, or a short generic one.
func (s PersonaSpec) SystemPrompt() string {
	if s.System != "" {
		return s.System
	}
	return fmt.Sprintf("You are %s, one of several AI personas in a group chat with humans. Answer briefly and only what you can add.", s.DisplayName())
}

// Dependent reports whether the persona waits for others (a pipeline
// stage): the chat rules' coordination does not apply to it.
func (s PersonaSpec) Dependent() bool { return len(s.WaitsFor) > 0 }

// StateConfig is base with the persona's cadence and threshold overrides:
// a zero override keeps base's value.
func (s PersonaSpec) StateConfig(base state.Config) state.Config {
	setD := func(dst *time.Duration, v time.Duration) {
		if v > 0 {
			*dst = v
		}
	}
	setF := func(dst *float64, v float64) {
		if v > 0 {
			*dst = v
		}
	}
	setD(&base.CadenceIdle, s.Cadence.Idle)
	setD(&base.CadenceActive, s.Cadence.Active)
	setD(&base.CadenceTired, s.Cadence.Tired)
	setD(&base.CadenceOverwhelmed, s.Cadence.Overwhelmed)
	setF(&base.ThresholdIdle, s.Thresholds.Idle)
	setF(&base.ThresholdActive, s.Thresholds.Active)
	setF(&base.ThresholdTired, s.Thresholds.Tired)
	setF(&base.ThresholdOverwhelmed, s.Thresholds.Overwhelmed)
	return base
}

// DisplayName is the name the dashboard shows: Display, or Name.
func (s PersonaSpec) DisplayName() string {
	if s.Display != "" {
		return s.Display
	}
	return s.Name
}

// setByMood stores v in the field for mood (p.moods has checked the name).
func setByMood[T any](mood string, v T, idle, active, tired, overwhelmed *T) {
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
