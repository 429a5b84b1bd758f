package sim

import (
	"fmt"
	"os"
	"slices"

	"github.com/personaos/persona/chat"
)

// Simulating a daemon's persona file: `persona sim --config personas.yaml
// [--traffic FILE]` runs the personas the daemon would run, with the
// daemon's defaults (chat.DefaultSettings), under the traffic of a traffic
// file or DefaultTraffic.

// DefaultTraffic is the traffic a persona file is simulated under when no
// traffic file is given: an hour of a small team's chat in three rooms, a
// message every 10 s on average, most from people, some naming a persona,
// and a two-minute rush at 20 minutes. With no topics, every expertise
// word of the persona file is a topic (FromPersonas).
const DefaultTraffic = `# The default traffic of persona sim --config (a traffic file has the
# fields of a scenario, without personas: they are the persona file's).
name: default-traffic
seed: 1
duration: 1h
cores: 2              # model slots: calls that run at once
traffic:
  rate: 0.1/s         # a message every 10 s on average
  rooms: 3
  mention: 0.15       # a message names one persona
  human: 0.9          # the rest are other personas' messages
  bursts:
    - {at: 20m, for: 2m, rate: 1/s}
`

// LoadTraffic reads and parses a traffic file.
func LoadTraffic(path string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("sim: load traffic: %w", err)
	}
	return ParseTraffic(path, data)
}

// ParseTraffic parses a traffic file: a scenario's fields without personas
// (name is optional). Errors are *FieldError, as ParseScenario's.
func ParseTraffic(file string, data []byte) (*Scenario, error) {
	return parse(&parser{file: file, trafficOnly: true}, file, data)
}

// FromPersonas is the scenario that simulates a daemon's persona file:
// specs (chat.LoadPersonas) under traffic's world and traffic (ParseTraffic
// or DefaultTraffic), named name. Each persona is one instance with its
// file's expertise, capacity, waits_for, cadence and thresholds, and the
// default model call (median 4 s, p95 20 s). When the traffic names no
// topics, each expertise word of the file is one, with chance 1/(number of
// words), at most 0.1, so that a message names about one persona's field;
// at most 64 words are used, in file order.
func FromPersonas(name string, specs []chat.PersonaSpec, traffic *Scenario) *Scenario {
	sc := *traffic
	sc.Name = name
	sc.Personas = nil
	var words []string
	for _, s := range specs {
		sc.Personas = append(sc.Personas, PersonaSpec{
			Name: s.Name, Count: 1, Expertise: slices.Clone(s.Expertise), Capacity: s.Capacity,
			WaitsFor: slices.Clone(s.WaitsFor), Cadence: s.Cadence, Thresholds: s.Thresholds,
			Display: s.Display, System: s.System, Model: s.Model,
		})
		for _, w := range s.Expertise {
			if !slices.Contains(words, w) && len(words) < maxTopics {
				words = append(words, w)
			}
		}
	}
	if len(sc.Traffic.Topics) == 0 && len(words) > 0 {
		p := min(0.1, 1/float64(len(words)))
		sc.Traffic.Topics = nil
		for _, w := range words {
			sc.Traffic.Topics = append(sc.Traffic.Topics, Topic{Word: w, P: p})
		}
	}
	return &sc
}
