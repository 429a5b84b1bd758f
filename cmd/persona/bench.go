package main

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/personaos/persona/bench"
	"github.com/personaos/persona/inbox"
)

// benchReport is what `persona bench --json` prints: each figure next to
// its baseline, measured in the same run.
type benchReport struct {
	GoVersion string `json:"go_version"`
	CPUs      int    `json:"cpus"`
	Quick     bool   `json:"quick"`

	InboxOpsPerSec         float64 `json:"inbox_ops_per_sec"`
	InboxBaselineOpsPerSec float64 `json:"inbox_ops_per_sec_baseline_sorted_slice"`
	InboxSpeedup           float64 `json:"inbox_speedup"`

	UrgentWakeP50         float64 `json:"urgent_wake_p50_us"`
	UrgentWakeP99         float64 `json:"urgent_wake_p99_us"`
	UrgentWakeTrials      int     `json:"urgent_wake_trials"`
	UrgentWakeWarmP50     float64 `json:"urgent_wake_parked_goroutine_p50_us"`
	UrgentWakeWarmP99     float64 `json:"urgent_wake_parked_goroutine_p99_us"`
	UrgentWakeBaselineP50 float64 `json:"urgent_wake_baseline_poll_100ms_p50_us"`
	UrgentWakeBaselineP99 float64 `json:"urgent_wake_baseline_poll_100ms_p99_us"`
	UrgentWakeBaselineN   int     `json:"urgent_wake_baseline_trials"`

	IdlePersonas                int     `json:"idle_personas"`
	IdleWakeupsPerSec           float64 `json:"idle_wakeups_per_sec"`
	IdleBytesPerPersona         float64 `json:"idle_bytes_per_persona"`
	IdleBaselineWakeupsPerSec   float64 `json:"idle_baseline_parked_goroutine_wakeups_per_sec"`
	IdleBaselineBytesPerPersona float64 `json:"idle_baseline_parked_goroutine_bytes_per_persona"`

	ThroughputItemsPerSec         float64 `json:"throughput_items_per_sec"`
	ThroughputBaselineItemsPerSec float64 `json:"throughput_baseline_fifo_actor_items_per_sec"`
	ThroughputRatio               float64 `json:"throughput_ratio_to_baseline"`

	WallSeconds float64 `json:"wall_seconds"`
}

func newBenchCmd() *cobra.Command {
	var asJSON, quick bool
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure the runtime against baselines run in the same process",
		Long: `Measures the inbox against the seed's sort-on-every-push array, urgent wake-up
latency (of an idle persona holding no goroutine, and of one whose loop is still parked
within its linger) against 100 ms polling, the cost of 10,000 idle personas against a parked
goroutine each, and throughput against a plain FIFO actor runtime. Every figure
is printed next to its baseline measured in the same run.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rep, err := runBench(cmd.ErrOrStderr(), quick)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			printBench(cmd.OutOrStdout(), rep)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object")
	cmd.Flags().BoolVar(&quick, "quick", false, "smaller runs (for smoke tests; figures are noisier)")
	return cmd
}

func runBench(progress io.Writer, quick bool) (benchReport, error) {
	start := time.Now()
	rep := benchReport{GoVersion: runtime.Version(), CPUs: runtime.NumCPU(), Quick: quick}
	scale := 1
	if quick {
		scale = 10
	}
	step := func(what string) { fmt.Fprintf(progress, "bench: %s...\n", what) }

	step("inbox vs sorted slice")
	const depth = 1000
	ops := 2_000_000 / scale
	q := inbox.New[int](inbox.Options{Capacity: depth})
	d := inbox.BenchMixed(func(e inbox.Entry[int]) { q.Push(e) }, func() bool {
		e, ok := q.TakeTop()
		if ok {
			q.Finish(e.ID, inbox.Handled)
		}
		return ok
	}, depth, ops, 1)
	rep.InboxOpsPerSec = 2 * float64(ops) / d.Seconds()
	baseOps := 20_000 / scale
	var s inbox.SortedSlice[int]
	s.Capacity = depth
	bd := inbox.BenchMixed(func(e inbox.Entry[int]) { s.Push(e) }, func() bool { _, ok := s.TakeTop(); return ok }, depth, baseOps, 1)
	rep.InboxBaselineOpsPerSec = 2 * float64(baseOps) / bd.Seconds()
	rep.InboxSpeedup = rep.InboxOpsPerSec / rep.InboxBaselineOpsPerSec

	step("urgent wake-up latency")
	wake, err := bench.UrgentWake(10_000/scale, -1)
	if err != nil {
		return rep, err
	}
	rep.UrgentWakeP50, rep.UrgentWakeP99, rep.UrgentWakeTrials = wake.P50, wake.P99, wake.N
	warm, err := bench.UrgentWake(10_000/scale, time.Second)
	if err != nil {
		return rep, err
	}
	rep.UrgentWakeWarmP50, rep.UrgentWakeWarmP99 = warm.P50, warm.P99
	poll := bench.PollingWake(100/scale, 100*time.Millisecond)
	rep.UrgentWakeBaselineP50, rep.UrgentWakeBaselineP99, rep.UrgentWakeBaselineN = poll.P50, poll.P99, poll.N

	step("idle personas")
	n := 10_000
	idle, err := bench.IdlePersonas(n, 2*time.Second)
	if err != nil {
		return rep, err
	}
	rep.IdlePersonas, rep.IdleWakeupsPerSec, rep.IdleBytesPerPersona = idle.Personas, idle.WakeupsPerSec, idle.BytesPerPersona
	parked := bench.ParkedBaseline(n, 100*time.Millisecond, time.Second)
	rep.IdleBaselineWakeupsPerSec, rep.IdleBaselineBytesPerPersona = parked.WakeupsPerSec, parked.BytesPerPersona

	step("throughput")
	per := 2_000_000 / scale
	tp, err := bench.Throughput(1000, 2, per)
	if err != nil {
		return rep, err
	}
	rep.ThroughputItemsPerSec = tp
	rep.ThroughputBaselineItemsPerSec = bench.FIFOBaseline(1000, 2, per)
	rep.ThroughputRatio = tp / rep.ThroughputBaselineItemsPerSec

	rep.WallSeconds = time.Since(start).Seconds()
	return rep, nil
}

func printBench(w io.Writer, r benchReport) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "figure\tpersona\tbaseline\tratio\n")
	fmt.Fprintf(tw, "inbox ops/s (cap 1000, mixed)\t%.0f\t%.0f (sorted slice)\t%.0fx\n", r.InboxOpsPerSec, r.InboxBaselineOpsPerSec, r.InboxSpeedup)
	fmt.Fprintf(tw, "urgent wake p50 / p99 (us), idle persona\t%.1f / %.1f\t%.0f / %.0f (100 ms poll)\t\n", r.UrgentWakeP50, r.UrgentWakeP99, r.UrgentWakeBaselineP50, r.UrgentWakeBaselineP99)
	fmt.Fprintf(tw, "urgent wake p50 / p99 (us), within linger\t%.1f / %.1f\t\t\n", r.UrgentWakeWarmP50, r.UrgentWakeWarmP99)
	fmt.Fprintf(tw, "idle wake-ups/s (%d personas)\t%.0f\t%.0f (parked goroutine)\t\n", r.IdlePersonas, r.IdleWakeupsPerSec, r.IdleBaselineWakeupsPerSec)
	fmt.Fprintf(tw, "idle bytes per persona\t%.0f\t%.0f (parked goroutine)\t\n", r.IdleBytesPerPersona, r.IdleBaselineBytesPerPersona)
	fmt.Fprintf(tw, "throughput items/s (1000 personas)\t%.0f\t%.0f (FIFO actors)\t%.2fx\n", r.ThroughputItemsPerSec, r.ThroughputBaselineItemsPerSec, r.ThroughputRatio)
	tw.Flush()
	fmt.Fprintf(w, "wall %.1fs, %s, %d CPUs\n", r.WallSeconds, r.GoVersion, r.CPUs)
}
