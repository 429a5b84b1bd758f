package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/personaos/persona/server"
	"github.com/personaos/persona/sim"
)

func runSim(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := newSimCmd()
	var out, errb bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	cmd.SetArgs(args)
	err = cmd.ExecuteContext(context.Background())
	return out.String(), errb.String(), err
}

func TestSimJSONHasOneReportPerPolicy(t *testing.T) {
	out, _, err := runSim(t, "--duration", "5m", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var reps []map[string]any
	if err := json.Unmarshal([]byte(out), &reps); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if len(reps) != 4 {
		t.Fatalf("%d reports, want 4", len(reps))
	}
	for i, want := range []string{"direct", "seed", "persona", "bound"} {
		if reps[i]["policy"] != want || reps[i]["scenario"] != "overload-burst" {
			t.Errorf("report %d: policy %v scenario %v", i, reps[i]["policy"], reps[i]["scenario"])
		}
		for _, field := range []string{"delivered", "handled", "declined", "deferred", "expired", "lost",
			"pending_at_end", "wait_seconds", "urgent_sla_violations", "evaluations_per_message",
			"responses_per_message", "model_calls", "fairness_jain", "duty_cycle", "energy",
			"response_latency_p95_seconds", "human_answer_p95_seconds", "persona_messages_per_room_minute",
			"wall_seconds", "wakeups", "thermal_time", "suppressed_replies"} {
			if _, ok := reps[i][field]; !ok && !(field == "thermal_time" && want != "persona") {
				t.Errorf("%s report lacks %s", want, field)
			}
		}
	}
}

func TestSimMarkdownOnePolicyFromAFile(t *testing.T) {
	out, _, err := runSim(t, filepath.Join("..", "..", "scenarios", "steady.yaml"), "--policy", "persona", "--duration", "5m", "--markdown")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "| | persona |") || strings.Contains(out, "| seed |") {
		t.Errorf("markdown:\n%s", out)
	}
}

func TestSimEmbeddedByName(t *testing.T) {
	out, _, err := runSim(t, "pipeline.yaml", "--policy", "persona", "--duration", "2m")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "scenario pipeline") {
		t.Errorf("summary:\n%s", out)
	}
}

func TestSimPlotsAndProgress(t *testing.T) {
	dir := t.TempDir()
	_, stderr, err := runSim(t, "--duration", "3m", "--plot", dir, "--progress")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"wait-cdf.png", "depth-duty.png", "energy-mood.png"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil || !bytes.HasPrefix(b, []byte("\x89PNG")) {
			t.Errorf("%s: %v, %d bytes", f, err, len(b))
		}
	}
	if !strings.Contains(stderr, "100%") {
		t.Errorf("progress bar did not finish: %q", stderr)
	}
}

func TestSimRejects(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("name: x\nduration: 1h\nwat: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, args := range map[string][]string{
		"unknown field": {bad},
		"missing file":  {"no-such-scenario.yaml"},
		"bad policy":    {"--policy", "lifo"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, _, err := runSim(t, args...); err == nil {
				t.Error("accepted")
			}
		})
	}
	_, _, err := runSim(t, bad)
	if err == nil || !strings.Contains(err.Error(), "bad.yaml:3: field wat: unknown field") {
		t.Errorf("err = %v, want file:line: field", err)
	}
}

func TestSimMetricsUseTheDaemonsCollectors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "sim.prom")
	out, _, err := runSim(t, "steady.yaml", "--duration", "10m", "--policy", "persona", "--json", "--metrics", file)
	if err != nil {
		t.Fatal(err)
	}
	var reps []struct {
		Handled int `json:"handled"`
	}
	if err := json.Unmarshal([]byte(out), &reps); err != nil || len(reps) != 1 {
		t.Fatalf("report: %v %s", err, out)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	// The handled items the report counts are the handled items the
	// Prometheus counters count.
	var sum int
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, `persona_items_total{account="handled"`) {
			var n int
			if _, err := fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &n); err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			sum += n
		}
	}
	if sum == 0 || sum != reps[0].Handled {
		t.Fatalf("metrics count %d handled items, the report %d", sum, reps[0].Handled)
	}
	if !strings.Contains(string(data), "persona_wait_seconds_bucket") {
		t.Fatal("no wait-time histogram in the metrics")
	}
}

// A scenario's compute budget defaults to what persona serve runs with, so
// the simulator measures the budget the daemon applies.
func TestSimBudgetDefaultsAreServes(t *testing.T) {
	f := newServeCmd().Flags()
	for _, tc := range []struct {
		flag string
		sim  string
	}{
		{"budget", fmt.Sprint(float64(sim.DefaultBudgetPerSec))},
		{"budget-burst", fmt.Sprint(sim.DefaultBudgetBurst)},
	} {
		fl := f.Lookup(tc.flag)
		if fl == nil {
			t.Fatalf("persona serve has no --%s", tc.flag)
		}
		if fl.DefValue != tc.sim {
			t.Errorf("persona serve --%s defaults to %s, a scenario's budget to %s", tc.flag, fl.DefValue, tc.sim)
		}
	}
	if sim.DefaultBudgetPerSec != server.DefaultBudgetPerSec || sim.DefaultBudgetBurst != server.DefaultBudgetBurst {
		t.Errorf("sim budget %v/%v, server %v/%v", sim.DefaultBudgetPerSec, sim.DefaultBudgetBurst, server.DefaultBudgetPerSec, server.DefaultBudgetBurst)
	}
}

// personasFile is the daemon's own persona file.
var personasFile = filepath.Join("..", "..", "server", "personas.yaml")

func TestSimConfigRunsTheDaemonsPersonaFile(t *testing.T) {
	out, _, err := runSim(t, "--config", personasFile, "--duration", "5m")
	if err != nil {
		t.Fatal(err)
	}
	// The same report as a scenario's: every policy, every row.
	for _, want := range []string{"scenario personas.yaml: 5m virtual, 4 personas", "direct", "seed", "persona",
		"urgent SLA violations", "@mentions answered", "suppressed replies"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

func TestSimConfigWithTrafficAndFlags(t *testing.T) {
	traffic := filepath.Join(t.TempDir(), "traffic.yaml")
	if err := os.WriteFile(traffic, []byte("duration: 10m\nseed: 4\ntraffic:\n  rate: 1/s\n  rooms: 1\n  topics: {go: 0.5}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	report := func(args ...string) map[string]any {
		t.Helper()
		out, _, err := runSim(t, append([]string{"--config", personasFile, "--traffic", traffic, "--policy", "persona", "--json"}, args...)...)
		if err != nil {
			t.Fatal(err)
		}
		var reps []map[string]any
		if err := json.Unmarshal([]byte(out), &reps); err != nil || len(reps) != 1 {
			t.Fatalf("report: %v\n%s", err, out)
		}
		return reps[0]
	}
	def := report()
	if def["scenario"] != "personas.yaml" || def["duration_seconds"] != 600.0 {
		t.Errorf("scenario %v, %v s: want the persona file under the traffic file's 10m", def["scenario"], def["duration_seconds"])
	}
	// A message a second in one room: the daemon's budget of 6 a minute
	// holds replies back (people's questions wait and merge, chatter is
	// refused); a budget of 1 writes fewer, and K = 2 writes more.
	tight := report("--reply-budget", "1")
	if tight["replies"].(float64) >= def["replies"].(float64) {
		t.Errorf("--reply-budget 1 wrote %v replies, the default budget %v", tight["replies"], def["replies"])
	}
	if k2 := report("--k", "2", "--reply-budget", "1000"); k2["replies"].(float64) <= report("--reply-budget", "1000")["replies"].(float64) {
		t.Errorf("--k 2 wrote %v replies, no more than K = 1", k2["replies"])
	}
	// A compute budget of one call in twenty seconds (30 in the 10 minutes,
	// under the reply budget's 60) holds the model calls back: fewer
	// replies than with the daemon's default two a second, and about one
	// reply a token. (One call in ten seconds is the reply budget's own
	// rate: it wrote 1 reply for 2,035 calls while a call waiting for its
	// token could be superseded and lose it.)
	slow := report("--budget", "0.05", "--budget-burst", "1")
	if r := slow["replies"].(float64); r >= def["replies"].(float64) || r < 25 {
		t.Errorf("--budget 0.05 wrote %v replies, the default budget %v: want fewer, and about the 31 tokens", r, def["replies"])
	}
}

func TestSimConfigRejects(t *testing.T) {
	dir := t.TempDir()
	badTraffic := filepath.Join(dir, "traffic.yaml")
	if err := os.WriteFile(badTraffic, []byte("duration: 10m\ntraffic:\n  rate: 1/s\n  rooms: none\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	withPersonas := filepath.Join(dir, "with-personas.yaml")
	if err := os.WriteFile(withPersonas, []byte("duration: 10m\npersonas: []\ntraffic: {rate: 1/s}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	badConfig := filepath.Join(dir, "personas.yaml")
	if err := os.WriteFile(badConfig, []byte("personas:\n  - name: a\n    cadence: {idle: soon}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"traffic field":          {[]string{"--config", personasFile, "--traffic", badTraffic}, "traffic.yaml:4: field traffic.rooms: "},
		"traffic with personas":  {[]string{"--config", personasFile, "--traffic", withPersonas}, "with-personas.yaml:2: field personas: unknown field"},
		"persona file field":     {[]string{"--config", badConfig}, "personas.yaml:3: personas[0].cadence.idle: "},
		"traffic without config": {[]string{"--traffic", badTraffic}, "--traffic needs --config"},
		"config and scenario":    {[]string{"steady.yaml", "--config", personasFile}, "not both"},
		"no-merge":               {[]string{"--config", personasFile, "--no-merge"}, "not modelled"},
		"bad flag value":         {[]string{"--config", personasFile, "--k", "0"}, "--k must be positive"},
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := runSim(t, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}
