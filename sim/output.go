package sim

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

// row is one line of the comparison table.
type row struct {
	name string
	cell func(*Report) string
}

func n(v int) string        { return strconv.Itoa(v) }
func f(v float64) string    { return strconv.FormatFloat(v, 'f', 2, 64) }
func secs(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

var rows = []row{
	{"delivered", func(r *Report) string { return n(r.Delivered) }},
	{"handled", func(r *Report) string { return n(r.Handled) }},
	{"declined", func(r *Report) string { return n(r.Declined) }},
	{"deferred (at end)", func(r *Report) string { return n(r.Deferred) }},
	{"expired", func(r *Report) string { return n(r.Expired) }},
	{"lost", func(r *Report) string { return n(r.Lost) }},
	{"skipped at intake", func(r *Report) string { return n(r.Skipped) }},
	{"pending at end", func(r *Report) string { return n(r.PendingAtEnd) }},
	{"urgent wait p50 / p99 / max (s)", func(r *Report) string {
		q := r.WaitSeconds.Urgent
		return secs(q.P50) + " / " + secs(q.P99) + " / " + secs(q.Max)
	}},
	{"normal wait p50 / p99 (s)", func(r *Report) string {
		q := r.WaitSeconds.Normal
		return secs(q.P50) + " / " + secs(q.P99)
	}},
	{"low wait p50 / p99 (s)", func(r *Report) string {
		q := r.WaitSeconds.Low
		return secs(q.P50) + " / " + secs(q.P99)
	}},
	{"urgent SLA violations", func(r *Report) string {
		return fmt.Sprintf("%d (SLA %gs)", r.UrgentSLAViolations, r.UrgentSLASeconds)
	}},
	{"@mention wait for a slot p99 (s) / over SLA", func(r *Report) string {
		return secs(r.MentionSlotWaitSeconds.P99) + " / " + n(r.MentionSlotViolations)
	}},
	{"@mentions answered", func(r *Report) string { return fmt.Sprintf("%d of %d", r.MentionsAnswered, r.Mentions) }},
	{"human messages answered", func(r *Report) string {
		return fmt.Sprintf("%d of %d", r.HumanAnswered, r.HumanMessages)
	}},
	{"questions unanswered", func(r *Report) string { return n(r.QuestionsUnanswered) }},
	{"human answer p95 (s)", func(r *Report) string { return secs(r.HumanAnswerP95Seconds) }},
	{"response latency p95 (s)", func(r *Report) string { return secs(r.ResponseLatencyP95Seconds) }},
	{"model calls", func(r *Report) string { return n(r.ModelCalls) }},
	{"evaluations / message", func(r *Report) string { return f(r.EvaluationsPerMessage) }},
	{"responses / message", func(r *Report) string { return f(r.ResponsesPerMessage) }},
	{"persona msgs / room-minute mean / max", func(r *Report) string {
		return f(r.PersonaMessagesPerRoomMinute.Mean) + " / " + strconv.FormatFloat(r.PersonaMessagesPerRoomMinute.Max, 'f', 0, 64)
	}},
	{"duty cycle mean / max 1-min", func(r *Report) string { return f(r.DutyCycle.Mean) + " / " + f(r.DutyCycle.Max) }},
	{"ordinary work's duty mean / max 1-min", func(r *Report) string {
		return f(r.DutyOrdinary.Mean) + " / " + f(r.DutyOrdinary.Max)
	}},
	{"energy min / mean", func(r *Report) string {
		if r.Energy == nil {
			return "n/a"
		}
		return f(r.Energy.Min) + " / " + f(r.Energy.Mean)
	}},
	{"fairness (Jain)", func(r *Report) string { return f(r.FairnessJain) }},
	{"wake-ups", func(r *Report) string { return n(int(r.Wakeups)) }},
	{"suppressed replies", func(r *Report) string { return n(r.SuppressedReplies) }},
	{"preemptions", func(r *Report) string { return n(r.Preemptions) }},
	{"wall time (s)", func(r *Report) string { return strconv.FormatFloat(r.WallSeconds, 'f', 2, 64) }},
}

// WriteMarkdown writes the reports as one Markdown comparison table, a
// column per policy, for a README.
func WriteMarkdown(w io.Writer, reps []*Report) error {
	if len(reps) == 0 {
		return nil
	}
	var b strings.Builder
	r0 := reps[0]
	fmt.Fprintf(&b, "Scenario `%s`: %s of virtual time, %d personas, %d model slots, seed %d.\n\n",
		r0.Scenario, fmtDur(r0.DurationSeconds), r0.Personas, r0.Cores, r0.Seed)
	b.WriteString("| |")
	for _, r := range reps {
		fmt.Fprintf(&b, " %s |", r.Policy)
	}
	b.WriteString("\n|---|")
	for range reps {
		b.WriteString("---:|")
	}
	b.WriteString("\n")
	for _, row := range rows {
		fmt.Fprintf(&b, "| %s |", row.name)
		for _, r := range reps {
			fmt.Fprintf(&b, " %s |", row.cell(r))
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteSummary writes the reports as an aligned text table.
func WriteSummary(w io.Writer, reps []*Report) error {
	if len(reps) == 0 {
		return nil
	}
	r0 := reps[0]
	fmt.Fprintf(w, "scenario %s: %s virtual, %d personas, %d model slots, seed %d\n\n",
		r0.Scenario, fmtDur(r0.DurationSeconds), r0.Personas, r0.Cores, r0.Seed)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "\t")
	for _, r := range reps {
		fmt.Fprintf(tw, "%s\t", r.Policy)
	}
	fmt.Fprintln(tw)
	for _, row := range rows {
		fmt.Fprintf(tw, "%s\t", row.name)
		for _, r := range reps {
			fmt.Fprintf(tw, "%s\t", row.cell(r))
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

func fmtDur(s float64) string {
	switch {
	case s >= 3600 && int(s)%3600 == 0:
		return fmt.Sprintf("%dh", int(s)/3600)
	case s >= 60 && int(s)%60 == 0:
		return fmt.Sprintf("%dm", int(s)/60)
	}
	return fmt.Sprintf("%gs", s)
}
