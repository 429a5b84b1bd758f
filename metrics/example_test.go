package metrics_test

import (
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"

	persona "github.com/personaos/persona"
	"github.com/personaos/persona/metrics"
)

// An urgent item that waited 12 s breaks the default 10 s SLA; the
// runtime's snapshots are read at scrape time.
func Example() {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, metrics.Options{})
	if err != nil {
		panic(err)
	}
	// In the daemon: persona.NewRuntime(persona.RuntimeOptions{Observer: m})
	// and m.WatchRuntime(rt.Snapshots).
	m.Observe(persona.Event{Kind: persona.EventHandled, Persona: "ada", Priority: 0.9, Wait: 12 * time.Second, Took: time.Second})
	if err := m.WatchRuntime(func() []persona.Snapshot {
		return []persona.Snapshot{{Name: "ada", Energy: 0.9}}
	}); err != nil {
		panic(err)
	}
	out, _ := testutil.GatherAndFormat(reg, expfmt.TypeTextPlain, "persona_sla_violations_total", "persona_energy")
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if !strings.HasPrefix(line, "#") {
			fmt.Println(line)
		}
	}
	// Output:
	// persona_energy{persona="ada"} 0.9
	// persona_sla_violations_total{persona="ada"} 1
}
