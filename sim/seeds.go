package sim

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// RunSeeds runs sc under the policies once per seed, the scenario's own
// seed replaced, and returns the reports by seed, each in the order of ps.
// A claim about a policy is a claim over seeds: one seed proves nothing.
func RunSeeds(ctx context.Context, sc *Scenario, ps []Policy, seeds []uint64, opts Options) ([][]*Report, error) {
	out := make([][]*Report, 0, len(seeds))
	for _, seed := range seeds {
		s := *sc
		s.Seed = seed
		reps, err := RunAll(ctx, &s, ps, opts)
		if err != nil {
			return nil, fmt.Errorf("seed %d: %w", seed, err)
		}
		out = append(out, reps)
	}
	return out, nil
}

// ParseSeeds parses a seed range "A-B" (inclusive) or a single seed.
func ParseSeeds(s string) ([]uint64, error) {
	lo, hi, found := strings.Cut(strings.TrimSpace(s), "-")
	a, err := strconv.ParseUint(lo, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("sim: seeds %q: want A-B or one seed", s)
	}
	b := a
	if found {
		if b, err = strconv.ParseUint(hi, 10, 64); err != nil || b < a || b-a >= 1000 {
			return nil, fmt.Errorf("sim: seeds %q: want A-B with A <= B, at most 1000 seeds", s)
		}
	}
	var seeds []uint64
	for i := a; i <= b; i++ {
		seeds = append(seeds, i)
	}
	return seeds, nil
}

// seedRow is one line of the table over seeds: a figure of one report,
// summed or spread over the seeds.
type seedRow struct {
	name string
	// value is the figure for one seed.
	value func(r *Report) float64
	// sum: the row shows the total over seeds and on how many seeds it was
	// not zero; otherwise the median and the range.
	sum    bool
	digits int
}

var seedRows = []seedRow{
	{name: "urgent SLA violations", value: func(r *Report) float64 { return float64(r.UrgentSLAViolations) }, sum: true},
	{name: "urgent wait p99 (s)", value: func(r *Report) float64 { return r.WaitSeconds.Urgent.P99 }, digits: 1},
	{name: "@mention slot wait p99 (s)", value: func(r *Report) float64 { return r.MentionSlotWaitSeconds.P99 }, digits: 1},
	{name: "@mentions over SLA for a slot", value: func(r *Report) float64 { return float64(r.MentionSlotViolations) }, sum: true},
	{name: "@mentions unanswered", value: func(r *Report) float64 { return float64(r.Mentions - r.MentionsAnswered) }, sum: true},
	{name: "questions unanswered", value: func(r *Report) float64 { return float64(r.QuestionsUnanswered) }, sum: true},
	{name: "lost", value: func(r *Report) float64 { return float64(r.Lost) }, sum: true},
	{name: "expired", value: func(r *Report) float64 { return float64(r.Expired) }, sum: true},
	{name: "model calls", value: func(r *Report) float64 { return float64(r.ModelCalls) }},
	{name: "least slot share / fair share", value: func(r *Report) float64 { return r.SlotShareMin }, digits: 2},
	{name: "human answer p95 (s)", value: func(r *Report) float64 { return r.HumanAnswerP95Seconds }, digits: 1},
	{name: "duty, busiest minute", value: func(r *Report) float64 { return r.DutyCycle.Max }, digits: 2},
	{name: "ordinary work's duty, busiest minute", value: func(r *Report) float64 { return r.DutyOrdinary.Max }, digits: 2},
	{name: "pipeline items through every stage (%)", value: func(r *Report) float64 {
		if r.Pipeline == nil || r.Pipeline.Items == 0 {
			return -1
		}
		return 100 * float64(r.Pipeline.Complete) / float64(r.Pipeline.Items)
	}, digits: 1},
}

// WriteSeedsMarkdown writes runs (RunSeeds' result) as one Markdown table,
// a column per policy: for a figure that should be zero, its total over
// the seeds and on how many seeds it was not; for the others, the median
// over seeds and its range.
func WriteSeedsMarkdown(w io.Writer, seeds []uint64, runs [][]*Report) error {
	if len(runs) == 0 || len(runs[0]) == 0 {
		return nil
	}
	var b strings.Builder
	r0 := runs[0][0]
	fmt.Fprintf(&b, "Scenario `%s`: %s of virtual time, %d personas, %d model slots, seeds %d-%d.\n\n",
		r0.Scenario, fmtDur(r0.DurationSeconds), r0.Personas, r0.Cores, seeds[0], seeds[len(seeds)-1])
	b.WriteString("| over seeds |")
	for _, r := range runs[0] {
		fmt.Fprintf(&b, " %s |", r.Policy)
	}
	b.WriteString("\n|---|")
	for range runs[0] {
		b.WriteString("---:|")
	}
	b.WriteString("\n")
	for _, row := range seedRows {
		var cells []string
		any := false
		for p := range runs[0] {
			var vs []float64
			for _, reps := range runs {
				if v := row.value(reps[p]); v >= 0 {
					vs = append(vs, v)
				}
			}
			if len(vs) == 0 {
				cells = append(cells, "n/a")
				continue
			}
			any = true
			cells = append(cells, seedCell(row, vs))
		}
		if !any {
			continue
		}
		fmt.Fprintf(&b, "| %s | %s |\n", row.name, strings.Join(cells, " | "))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func seedCell(row seedRow, vs []float64) string {
	num := func(v float64) string { return strconv.FormatFloat(v, 'f', row.digits, 64) }
	if row.sum {
		total, nonzero := 0.0, 0
		for _, v := range vs {
			total += v
			if v != 0 {
				nonzero++
			}
		}
		if nonzero == 0 {
			return "0"
		}
		return fmt.Sprintf("%s (on %d of %d seeds)", num(total), nonzero, len(vs))
	}
	slices.Sort(vs)
	med := vs[len(vs)/2]
	if len(vs)%2 == 0 {
		med = (vs[len(vs)/2-1] + vs[len(vs)/2]) / 2
	}
	return fmt.Sprintf("%s (%s-%s)", num(med), num(vs[0]), num(vs[len(vs)-1]))
}
