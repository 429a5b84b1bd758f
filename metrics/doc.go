// Package metrics exports the figures of DESIGN.md "Metrics" to Prometheus
// (client_golang): how long work waits by priority class, the SLA for
// urgent work, where every item ends up, each persona's state, duty cycles,
// fairness, wake-ups, the governor's thermal state, and the chat domain's
// evaluations, responses and model calls. The daemon and the simulator use
// the same Metrics, so a dashboard reads the same names from both.
//
// # Use
//
//	reg := prometheus.NewRegistry()
//	m, err := metrics.New(reg, metrics.Options{})
//	rt := persona.NewRuntime(persona.RuntimeOptions{Observer: m, ...})
//	err = m.WatchRuntime(rt.Snapshots)
//	err = m.WatchGovernor(gov) // a *govern.Governor
//	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// # Where the numbers come from
//
// Three sources, each read in its own way:
//
//   - Events (Observe, the persona.Observer): counters and histograms updated
//     as events happen. Observe is called synchronously from persona loops,
//     so it takes no lock of its own and does not allocate once a persona's
//     label children are cached (the first event of each persona resolves
//     them, under a mutex, into a copy-on-write map).
//   - Snapshots (WatchRuntime) and the governor (WatchGovernor): collectors
//     that call their source at scrape time. Nothing is stored between
//     scrapes except the duty-cycle window; a persona that leaves the
//     runtime leaves the exposition at the next scrape.
//   - Chat calls (Message, Evaluation, Response, ModelCall, Thought,
//     Decision): counters the chat daemon increments. They resolve label
//     values on every call; they run once per message or model call, not
//     per scheduler step.
//
// # Metric names
//
// With the default namespace "persona". Labels in braces.
//
// From events:
//
//	persona_wait_seconds{class}          histogram: delivery to start of handling; class urgent|normal|low
//	                                     (priority >= Options.Urgent or the event's Urgent flag; >= Options.Normal; below).
//	                                     Recorded for handled, failed, and handler-declined items.
//	persona_handle_seconds{persona}      histogram: one handler call (handled, declined, error, panic; Took > 0)
//	persona_items_total{persona,account} counter: account delivered|deferred|handled|declined|expired|failed;
//	                                     deferred counts moves to the deferred store, the last four are final accounts
//	persona_handler_errors_total{persona} counter: handler calls that returned an error
//	persona_handler_panics_total{persona} counter: handler calls that panicked (recovered)
//	persona_sla_violations_total{persona} counter: urgent items that waited longer than Options.SLA
//	                                     (starvation count; handled, declined, failed or expired)
//	persona_wakeups_total{persona,trigger} counter: trigger demand|dependency|scan
//
// From snapshots (WatchRuntime):
//
//	persona_energy{persona}              gauge 0..1
//	persona_attention{persona}           gauge 0..1
//	persona_mood{persona,mood}           gauge: 1 for the current mood (idle|active|tired|overwhelmed), 0 for the others
//	persona_load{persona}                gauge: inbox depth / capacity
//	persona_budget{persona}              gauge: compute budget 0..1
//	persona_inbox_depth{persona}         gauge: items waiting
//	persona_deferred_depth{persona}      gauge: items in the deferred store
//	persona_in_flight{persona}           gauge: items taken, not finished
//	persona_cadence_seconds{persona}     gauge: current scan cadence
//	persona_awake{persona}               gauge: 1 while the loop runs
//	persona_busy_seconds_total{persona}  counter: total handler time
//	persona_slices_total{persona}        counter: time slices worked
//	persona_duty_cycle{persona}          gauge: handler time / wall time over the last duty window, 0..1
//	persona_system_duty_cycle            gauge: all handler time / (Options.Cores * wall time) over the last window
//	persona_fairness_jain{over}          gauge: Jain's index across personas of cumulative slices (over="slices")
//	                                     or busy time (over="busy"); 1 is fair, 1/n is one persona taking all
//	persona_members                      gauge: personas in the runtime
//
// From the governor (WatchGovernor):
//
//	persona_thermal_state{state}         gauge: 1 for the current state (nominal|fair|serious|critical)
//	persona_thermal_level                gauge: 0 nominal .. 3 critical
//	persona_governor_pressure            gauge: pressure score; 1 means an input is at its limit
//	persona_governor_load                gauge: total inbox load at the last sample
//	persona_governor_in_flight           gauge: handlers running at the last sample
//	persona_governor_duty_cycle          gauge: the governor's measured duty cycle of the machine
//	persona_governor_cpu                 gauge: process CPU over cores at the last sample
//	persona_governor_budget_spent        gauge: fraction of the model-call budget used up
//
// From the chat daemon:
//
//	persona_chat_messages_total          counter: chat messages posted
//	persona_chat_evaluations_total{persona} counter: messages a persona evaluated
//	                                     (per message: rate of this over rate of messages_total; seed target 5-10)
//	persona_chat_responses_total{persona,room} counter: responses posted
//	persona_model_calls_total{persona,outcome} counter: model calls; outcome ok|error|rate_limited
//	persona_model_call_seconds{outcome}  histogram: model call duration
//	persona_coord_thoughts_total{persona} counter: thoughts broadcast
//	persona_coord_decisions_total        counter: coordination decisions closed
//	persona_coord_granted                histogram: responders granted per decision
//
// Wait-time percentiles (p50/p95/p99) are histogram_quantile over
// persona_wait_seconds_bucket; the default buckets have edges at the SLA
// (10 s) and at the seed's p95 latency target (60 s).
//
// # Guarantees
//
// Registration is all or nothing: New registers every event and chat
// collector or none, and returns a wrapped prometheus.AlreadyRegisteredError
// when the registry already holds them (New twice on one registry), as do
// WatchRuntime and WatchGovernor when called twice. Every method is safe for
// concurrent use, including concurrent scrapes.
//
// # Testing code that uses it
//
// Give New a fresh prometheus.NewRegistry() per test and read it back with
// prometheus/testutil (ToFloat64 on a child, GatherAndCompare or
// GatherAndCount on the registry). WatchRuntime takes any func returning
// snapshots, so a test can feed fixed ones; Options.Now makes duty-cycle
// windows deterministic.
package metrics
