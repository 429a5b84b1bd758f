package server

import (
	_ "embed"
	"fmt"
	"slices"
	"strings"

	"github.com/personaos/persona/chat"
)

// defaultPersonasYAML is the persona set the daemon runs without --config.
// It is a copy of personas.yaml at the repository root (a test keeps the two
// identical), because go:embed cannot reach outside this package.
//
//go:embed personas.yaml
var defaultPersonasYAML []byte

// The persona file's model and parser live in package chat, which the
// simulator shares; these names keep the daemon's API.
type (
	// PersonaSpec is one persona of the configuration (chat.PersonaSpec).
	PersonaSpec = chat.PersonaSpec
	// Cadences are per-mood scan cadences (chat.Cadences).
	Cadences = chat.Cadences
	// Thresholds are per-mood engagement thresholds (chat.Thresholds).
	Thresholds = chat.Thresholds
	// ConfigError is one problem in a persona file (chat.ConfigError).
	ConfigError = chat.ConfigError
)

// ErrConfig is wrapped by every error of LoadPersonas and ParsePersonas.
var ErrConfig = chat.ErrConfig

// DefaultPersonas returns the built-in persona set (Helper, CodeReview,
// Teacher, Planner).
func DefaultPersonas() []PersonaSpec {
	specs, err := ParsePersonas("personas.yaml (built in)", defaultPersonasYAML)
	if err != nil {
		panic(err) // a test parses it: unreachable in a released binary
	}
	return specs
}

// LoadPersonas reads and validates a persona file (chat.LoadPersonas).
func LoadPersonas(path string) ([]PersonaSpec, error) { return chat.LoadPersonas(path) }

// ParsePersonas decodes and validates a persona file's contents
// (chat.ParsePersonas).
func ParsePersonas(name string, data []byte) ([]PersonaSpec, error) {
	return chat.ParsePersonas(name, data)
}

// selectPersonas keeps the named personas (case-insensitive), in file order.
// An empty selection keeps all. A selected persona that waits for one left
// out is an error: pipelines do not span daemons.
func selectPersonas(specs []PersonaSpec, names []string) ([]PersonaSpec, error) {
	if len(names) == 0 {
		return specs, nil
	}
	want := map[string]bool{}
	for _, n := range names {
		n = strings.ToLower(strings.TrimSpace(n))
		if n != "" {
			want[n] = true
		}
	}
	var out []PersonaSpec
	for _, s := range specs {
		if want[strings.ToLower(s.Name)] {
			out = append(out, s)
			delete(want, strings.ToLower(s.Name))
		}
	}
	if len(want) > 0 {
		var missing []string
		for n := range want {
			missing = append(missing, n)
		}
		slices.Sort(missing)
		var known []string
		for _, s := range specs {
			known = append(known, s.Name)
		}
		return nil, fmt.Errorf("%w: --personas names %s, not in the configuration (known: %s)", ErrConfig,
			strings.Join(missing, ", "), strings.Join(known, ", "))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: --personas selects no persona", ErrConfig)
	}
	for _, s := range out {
		for _, w := range s.WaitsFor {
			if !slices.ContainsFunc(out, func(o PersonaSpec) bool { return o.Name == w }) {
				return nil, fmt.Errorf("%w: persona %s waits for %s, which --personas leaves out (a pipeline runs in one daemon)", ErrConfig, s.Name, w)
			}
		}
	}
	return out, nil
}
