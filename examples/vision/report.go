package vision

import (
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/personaos/persona/govern"
)

// Report is what Pipeline.Run measured: the persona run, the baseline on
// the same frames, and their comparison. Durations are in nanoseconds in
// JSON, as in the core's snapshots. The zero value is an empty report.
type Report struct {
	Frames      int           `json:"frames"`
	FPS         int           `json:"fps"`
	Width       int           `json:"width"`
	Height      int           `json:"height"`
	Path        time.Duration `json:"path_ns"`
	Deadline    time.Duration `json:"deadline_ns"`
	NoveltyGate float64       `json:"novelty_gate"`
	DutyTarget  float64       `json:"duty_target"` // fraction of one core
	// StageClock is the clock stage CPU times are read from: thread CPU
	// time on Linux, wall time of the stage function elsewhere.
	StageClock string    `json:"stage_clock"`
	Personas   RunReport `json:"personas"`
	Baseline   RunReport `json:"baseline"`
	// Comparison is empty when the baseline was skipped.
	Comparison Comparison `json:"comparison"`
	// Thermal lists the governor's states over the persona run.
	Thermal []ThermalSpan `json:"thermal"`
	// Leftover counts frames still queued or deferred at shutdown (0
	// unless the run was cut short).
	Leftover int `json:"leftover"`
}

// RunReport describes one run.
type RunReport struct {
	// Delivered is how many frames the camera delivered.
	Delivered int           `json:"delivered"`
	Stages    []StageReport `json:"stages"`
	// Wall is the run's duration: real time for the personas, as fast as
	// it goes for the baseline.
	Wall time.Duration `json:"wall_ns"`
	// StageCPU is the time spent in the stage functions (and, for the
	// personas, in deciding to skip), summed over stages; ProcessCPU the
	// whole process's user plus system time over the run, runtime,
	// scheduling and garbage collection included.
	StageCPU   time.Duration `json:"stage_cpu_ns"`
	ProcessCPU time.Duration `json:"process_cpu_ns"`
	// Duty is StageCPU and CPUDuty ProcessCPU as fractions of one core:
	// over the run's wall time for the personas, and for the baseline over
	// the time the frames span at the camera's rate, which is what it
	// would burn in real time.
	Duty    float64 `json:"duty"`
	CPUDuty float64 `json:"cpu_duty"`
	// PeakCPU is the busiest governor window's CPU, a fraction of one
	// core (persona run only).
	PeakCPU float64 `json:"peak_cpu"`
	// Served counts frames the semantic segmenter finished, processed or
	// not; latencies are from delivery to that, over those frames, and
	// FreshLatencyP95 over the ones it processed.
	Served          int           `json:"served"`
	LatencyP50      time.Duration `json:"latency_p50_ns"`
	LatencyP95      time.Duration `json:"latency_p95_ns"`
	FreshLatencyP95 time.Duration `json:"fresh_latency_p95_ns"`
	// PassedEveryStage counts the frames every stage handled or declined,
	// none letting it expire or failing on it (the baseline's: all).
	// ExpiredUnderTarget counts the frames some stage let expire while the
	// duty the governor had last measured, when the frame was captured and
	// when it expired, was under the target: none, by design.
	PassedEveryStage   int `json:"passed_every_stage"`
	ExpiredUnderTarget int `json:"expired_under_target"`
	// LineQuality and LabelQuality are means over every frame of the
	// results shown on it: the last ones computed at or before it.
	LineQuality  float64 `json:"line_quality"`
	LabelQuality float64 `json:"label_quality"`
}

// StageReport is one stage's accounts. For the personas, Processed,
// Skipped (declined), Expired and Failed are the runtime's final accounts
// and Pending what was left at shutdown; Balanced says that they add up to
// Delivered. Deferrals counts frames moved out of a full inbox (none, unless
// the stage falls more than its inbox behind).
type StageReport struct {
	Name      string        `json:"name"`
	Delivered int           `json:"delivered"`
	Processed int           `json:"processed"`
	Skipped   int           `json:"skipped"`
	Expired   int           `json:"expired"`
	Failed    int           `json:"failed"`
	Pending   int           `json:"pending"`
	Deferrals int           `json:"deferrals"`
	Balanced  bool          `json:"balanced"`
	CPU       time.Duration `json:"cpu_ns"`
}

// Comparison sets the persona run against the baseline.
type Comparison struct {
	// CPURatio is the personas' stage CPU over the baseline's;
	// ProcessCPURatio the same for the whole process.
	CPURatio        float64 `json:"cpu_ratio"`
	ProcessCPURatio float64 `json:"process_cpu_ratio"`
	// BothProcessed counts the frames the persona run took through the
	// semantic segmenter (the baseline takes all); the qualities are means
	// over them, of each run's own results.
	BothProcessed        int     `json:"both_processed"`
	LineQuality          float64 `json:"line_quality"`
	BaselineLineQuality  float64 `json:"baseline_line_quality"`
	LabelQuality         float64 `json:"label_quality"`
	BaselineLabelQuality float64 `json:"baseline_label_quality"`
}

// ThermalSpan is a stretch of the persona run in one governor state, from
// Start after the run began.
type ThermalSpan struct {
	State    govern.Thermal `json:"state"`
	Start    time.Duration  `json:"start_ns"`
	Duration time.Duration  `json:"duration_ns"`
}

// Stage returns the named stage's report, or false.
func (r RunReport) Stage(name string) (StageReport, bool) {
	i := slices.IndexFunc(r.Stages, func(s StageReport) bool { return s.Name == name })
	if i < 0 {
		return StageReport{}, false
	}
	return r.Stages[i], true
}

// finish fills in duty and latency; span is the time the frames cover.
func (r *RunReport) finish(span time.Duration, frames []frameResult) {
	if span > 0 {
		r.Duty = float64(r.StageCPU) / float64(span)
		r.CPUDuty = float64(r.ProcessCPU) / float64(span)
	}
	var all, fresh []time.Duration
	for _, f := range frames {
		if !f.Served {
			continue
		}
		all = append(all, f.Latency)
		if f.LabelsFresh {
			fresh = append(fresh, f.Latency)
		}
	}
	r.Served = len(all)
	r.LatencyP50, r.LatencyP95 = quantile(all, 0.5), quantile(all, 0.95)
	r.FreshLatencyP95 = quantile(fresh, 0.95)
}

// quantile is the nearest-rank q-quantile; 0 for no samples.
func quantile(xs []time.Duration, q float64) time.Duration {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(float64(len(s))*q+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// compare scores both runs on the frames the persona run processed end to
// end, and the CPU they took.
func compare(frames []*Frame, pers, base *runResult) Comparison {
	var c Comparison
	if base.report.StageCPU > 0 {
		c.CPURatio = float64(pers.report.StageCPU) / float64(base.report.StageCPU)
	}
	if base.report.ProcessCPU > 0 {
		c.ProcessCPURatio = float64(pers.report.ProcessCPU) / float64(base.report.ProcessCPU)
	}
	var pl, bl, pq, bq []float64
	for i, f := range pers.tr.frames {
		if !f.LabelsFresh || i >= len(base.lineQ) {
			continue
		}
		pl = append(pl, LineQuality(f.Lines, frames[i].Truth.Lines))
		pq = append(pq, Quality(f.Labels, frames[i].Truth.Labels))
		bl = append(bl, base.lineQ[i])
		bq = append(bq, base.labelQ[i])
	}
	c.BothProcessed = len(pl)
	c.LineQuality, c.BaselineLineQuality = mean(pl), mean(bl)
	c.LabelQuality, c.BaselineLabelQuality = mean(pq), mean(bq)
	return c
}

// ThermalTime returns how long the persona run spent in each governor
// state, indexed by govern.Thermal.
func (r Report) ThermalTime() [govern.Critical + 1]time.Duration {
	var t [govern.Critical + 1]time.Duration
	for _, s := range r.Thermal {
		if s.State >= govern.Nominal && s.State <= govern.Critical {
			t[s.State] += s.Duration
		}
	}
	return t
}

// WriteText writes the report as tables for people.
func (r Report) WriteText(w io.Writer) error {
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }
	pct := func(x float64) string { return fmt.Sprintf("%.1f%%", 100*x) }
	hasBase := len(r.Baseline.Stages) > 0

	if _, err := fmt.Fprintf(w, "persona vision: %d frames of %dx%d at %d fps (a %.1f s walk), deadline %v, duty target %s of a core\n\n",
		r.Frames, r.Width, r.Height, r.FPS, r.Path.Seconds(), r.Deadline, pct(r.DutyTarget)); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "stage\tprocessed\tskipped\texpired\tfailed\tcpu\t\tbaseline processed\tbaseline cpu\t")
	for i, s := range r.Personas.Stages {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\t\t", s.Name, s.Processed, s.Skipped, s.Expired, s.Failed, ms(s.CPU))
		if hasBase && i < len(r.Baseline.Stages) {
			b := r.Baseline.Stages[i]
			fmt.Fprintf(tw, "%d\t%s\t", b.Processed, ms(b.CPU))
		} else {
			fmt.Fprint(tw, "\t\t")
		}
		fmt.Fprintln(tw)
	}
	fmt.Fprintf(tw, "total\t\t\t\t\t%s\t\t\t%s\t\n\n", ms(r.Personas.StageCPU), ms(r.Baseline.StageCPU))
	if err := tw.Flush(); err != nil {
		return err
	}

	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	p, b, c := r.Personas, r.Baseline, r.Comparison
	fmt.Fprintf(tw, "\tpersonas\tbaseline\t\n")
	fmt.Fprintf(tw, "stage CPU (%s)\t%s\t%s\tratio %.2f\n", r.StageClock, ms(p.StageCPU), ms(b.StageCPU), c.CPURatio)
	fmt.Fprintf(tw, "process CPU\t%s\t%s\tratio %.2f\n", ms(p.ProcessCPU), ms(b.ProcessCPU), c.ProcessCPURatio)
	fmt.Fprintf(tw, "duty at %d fps (stage / process)\t%s / %s\t%s / %s\ttarget %s, busiest %v window %s\n",
		r.FPS, pct(p.Duty), pct(p.CPUDuty), pct(b.Duty), pct(b.CPUDuty), pct(r.DutyTarget), time.Second, pct(p.PeakCPU))
	fmt.Fprintf(tw, "latency p50 / p95 (capture to semantic)\t%s / %s\t%s / %s\tp95 of processed frames %s\n",
		ms(p.LatencyP50), ms(p.LatencyP95), ms(b.LatencyP50), ms(b.LatencyP95), ms(p.FreshLatencyP95))
	fmt.Fprintf(tw, "line quality, every frame as shown\t%s\t%s\t\n", pct(p.LineQuality), pct(b.LineQuality))
	fmt.Fprintf(tw, "label quality, every frame as shown\t%s\t%s\t\n", pct(p.LabelQuality), pct(b.LabelQuality))
	if hasBase {
		fmt.Fprintf(tw, "line quality, %d frames both processed\t%s\t%s\t\n", c.BothProcessed, pct(c.LineQuality), pct(c.BaselineLineQuality))
		fmt.Fprintf(tw, "label quality, %d frames both processed\t%s\t%s\t\n", c.BothProcessed, pct(c.LabelQuality), pct(c.BaselineLabelQuality))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	tt := r.ThermalTime()
	if _, err := fmt.Fprintf(w, "\ngovernor: nominal %.1f s, fair %.1f s, serious %.1f s, critical %.1f s; frames left at shutdown: %d\n",
		tt[govern.Nominal].Seconds(), tt[govern.Fair].Seconds(), tt[govern.Serious].Seconds(), tt[govern.Critical].Seconds(), r.Leftover); err != nil {
		return err
	}
	var share float64
	if p.Delivered > 0 {
		share = float64(p.PassedEveryStage) / float64(p.Delivered)
	}
	_, err := fmt.Fprintf(w, "frames passing every stage (none expired or failed): %d of %d (%s); expired while the duty measured was under the target: %d\n",
		p.PassedEveryStage, p.Delivered, pct(share), p.ExpiredUnderTarget)
	return err
}
