package vision

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/personaos/persona"
	"github.com/personaos/persona/govern"
	"github.com/personaos/persona/state"
)

// Options configures a Pipeline. The zero value is valid: every zero field
// takes the default written beside it, which is the `persona vision`
// command's.
type Options struct {
	// Camera renders the frames (default: the zero Camera, 160x120 at 30
	// frames a second, the rate).
	Camera Camera
	// Room is walked through (nil means DefaultRoom()).
	Room *Room
	// Path is the camera's walk (default NewPath(Seed, PathOptions{Duration:
	// Duration})). Frames are captured over its whole duration.
	Path Path
	// Seed selects the default path (default 1).
	Seed uint64
	// Duration is the length of the default path (default 20 s).
	Duration time.Duration
	// Deadline is how long a frame stays worth processing after capture
	// (default 3 frame times, 100 ms at 30 fps): past it every stage
	// expires the frame instead of working on it, so stale frames never
	// pile up. It is also the runtime's dependency timeout: a stage that
	// holds a frame that long releases its dependents without it.
	Deadline time.Duration
	// NoveltyGate is the novelty, against the last frame the line finder
	// processed, from which a frame shows new territory (default 0.05:
	// with the governor nominal the line finder then runs on about one
	// frame in five of the default walk, and the lines shown, often found
	// on an earlier frame, match 99% of the room's edges).
	NoveltyGate float64
	// DutyTarget is the CPU the governor holds the persona run under, as a
	// fraction of one core (default 0.05). The baseline, which runs every
	// stage on every frame, needs about 7.5% of a core for 160x120 frames
	// at 30 fps on the machine this was written on: the target is below
	// it, as a phone's thermal budget for AR is below what running
	// everything always would take.
	DutyTarget float64
	// SampleInterval is the governor's sample window (default 1 s, as
	// govern.DefaultInterval: heat builds over seconds).
	SampleInterval time.Duration
	// CPUTime is the cumulative CPU time the governor measures against
	// DutyTarget (default: the process's user plus system time). Tests in
	// testing/synctest bubbles substitute a function of the fake clock.
	CPUTime func() (time.Duration, error)
	// Observer, if set, also receives every event of the personas.
	Observer persona.Observer
	// Logger receives the runtime's warnings (default: slog.Default()).
	Logger *slog.Logger
	// Out, if set, is a directory to write OutFrames overlay PNGs of
	// processed frames into (lines in red, planes tinted), with
	// summary.txt and report.json. It is created if missing.
	Out string
	// OutFrames is how many PNGs to write (default 10).
	OutFrames int
	// NoBaseline skips the baseline run; the comparison is then empty.
	NoBaseline bool
}

func (o Options) withDefaults() Options {
	o.Camera = o.Camera.withDefaults()
	if o.Room == nil {
		r := DefaultRoom()
		o.Room = &r
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.Duration <= 0 {
		o.Duration = 20 * time.Second
	}
	if len(o.Path.Segments) == 0 {
		o.Path = NewPath(o.Seed, PathOptions{Duration: o.Duration})
	}
	if o.Deadline <= 0 {
		o.Deadline = 3 * time.Second / time.Duration(o.Camera.FPS)
	}
	if o.NoveltyGate <= 0 {
		o.NoveltyGate = 0.05
	}
	if o.DutyTarget <= 0 {
		o.DutyTarget = 0.05
	}
	if o.SampleInterval <= 0 {
		o.SampleInterval = govern.DefaultInterval
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.OutFrames <= 0 {
		o.OutFrames = 10
	}
	return o
}

func (o Options) frameTime() time.Duration {
	return time.Second / time.Duration(o.Camera.withDefaults().FPS)
}

// Pipeline is the seed's mobile AR pipeline on the frames of a synthetic
// camera, run twice on the same frames: as personas in a persona.Runtime,
// fed at the camera's frame rate in real time and governed, and as a
// baseline that runs every stage on every frame. The zero value is not
// usable: create one with New. Most callers want Run.
//
// A Pipeline renders its frames once, on first use, and shares them between
// the runs. Its methods are safe for concurrent use, but runs measure CPU
// time, so run them one at a time.
type Pipeline struct {
	opts Options

	once   sync.Once
	frames []*Frame
	err    error
}

// New returns a pipeline; nothing is rendered or started yet.
func New(opts Options) *Pipeline { return &Pipeline{opts: opts.withDefaults()} }

// Run runs New(opts): see Pipeline.Run.
func Run(ctx context.Context, opts Options) (Report, error) { return New(opts).Run(ctx) }

// Options returns the options in force, defaults filled in.
func (p *Pipeline) Options() Options { return p.opts }

// Frames renders the frames of the path, once, on every core: frame i is
// captured at i/FPS.
func (p *Pipeline) Frames(ctx context.Context) ([]*Frame, error) {
	p.once.Do(func() { p.frames, p.err = render(ctx, p.opts) })
	return p.frames, p.err
}

func render(ctx context.Context, o Options) ([]*Frame, error) {
	n := int(o.Path.Duration() * time.Duration(o.Camera.FPS) / time.Second)
	frames := make([]*Frame, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				frames[i] = o.Camera.Capture(*o.Room, o.Path, i)
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("vision: render: %w", err)
	}
	return frames, nil
}

// Run renders the frames, runs the baseline and then the personas on them
// (one after the other, so that neither takes CPU from the other), and
// compares them. With Options.Out set it writes the overlay PNGs and the
// summary. Cancelling ctx stops the persona run early; the report then
// covers the frames delivered so far and the error wraps ctx's.
func (p *Pipeline) Run(ctx context.Context) (Report, error) {
	frames, err := p.Frames(ctx)
	if err != nil {
		return Report{}, err
	}
	o := p.opts
	rep := Report{
		Frames: len(frames), FPS: o.Camera.FPS, Width: o.Camera.W, Height: o.Camera.H,
		Path: o.Path.Duration(), Deadline: o.Deadline, NoveltyGate: o.NoveltyGate,
		DutyTarget: o.DutyTarget, StageClock: stageClock,
	}
	var base *runResult
	if !o.NoBaseline {
		base = p.baseline(ctx, frames)
		rep.Baseline = base.report
	}
	pers, runErr := p.personas(ctx, frames)
	if pers != nil {
		rep.Personas = pers.report
		rep.Thermal = pers.thermal
		rep.Leftover = pers.leftover
		if base != nil {
			rep.Comparison = compare(frames, pers, base)
		}
	}
	if runErr != nil {
		return rep, runErr
	}
	if o.Out != "" && pers != nil {
		if err := writeOut(o.Out, o.OutFrames, frames, pers, rep); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// runResult is one run: its report and what it produced per frame.
type runResult struct {
	report   RunReport
	tr       *trace
	thermal  []ThermalSpan
	leftover int
	// quality per frame of the results computed on it (baseline) or
	// served for it (personas): the last fresh results at or before it.
	lineQ, labelQ []float64
}

// stageCapacity is each stage's inbox: two seconds of frames. Every frame
// is urgent and engaged at once (see framePriority), so an inbox holds only
// the frames a stage has not reached yet; it must hold them should a stage
// fall behind for a moment (a garbage collection, another process on the
// core), because a full inbox defers, and the runtime does not report a
// deferred frame that expires on readmission to the pipeline, which would
// then wait for its dependency timeout.
const stageCapacity = 64

// personaState is the policy of every stage persona: cadences on the
// camera's clock. The seed's 3 s to 10 s are the rhythm of a chat; a
// camera's is its frame. Frames are urgent (framePriority), so a stage
// never rests while one waits and neither its cadence nor its mood,
// energy or thresholds decide whether it takes a frame: the cadence only
// paces its sweep of the inbox. A stage scans every frame time while idle
// or active, every two when tired and every three when overwhelmed.
// Cadences are not negative ("scan again at once") because a persona with
// a zero cadence and nothing it takes would spin.
func personaState(frame time.Duration) state.Config {
	return state.Config{
		CadenceIdle: frame, CadenceActive: frame, CadenceTired: 2 * frame, CadenceOverwhelmed: 3 * frame,
		// Three quarters of the inbox (48 frames, 1.6 s) queued is
		// overwhelmed, rather than the default 5%, three frames, which a
		// stage that falls behind by 100 ms would reach.
		OverwhelmedLoad: 0.75,
	}
}

// personas runs the stages as personas on frames delivered in real time.
func (p *Pipeline) personas(ctx context.Context, frames []*Frame) (*runResult, error) {
	o := p.opts
	frame := o.frameTime()
	tr := newTrace(len(frames))
	if len(frames) == 0 {
		return &runResult{tr: tr}, nil
	}

	gov := govern.New(govern.Policy{Ceiling: o.DutyTarget})
	var obs persona.Observer = tr
	if o.Observer != nil {
		obs = persona.ObserverFunc(func(e persona.Event) { tr.Observe(e); o.Observer.Observe(e) })
	}
	rt := persona.NewRuntime(persona.RuntimeOptions{
		Logger:            o.Logger,
		Observer:          obs,
		Governor:          gov,
		DependencyTimeout: o.Deadline,
		// Two seconds of frames: frames leave the pipeline within the
		// deadline plus a sweep (a second) at most.
		MaxPipelineKeys: 2 * o.Camera.FPS,
	})
	opts := func(waits ...string) persona.Options {
		return persona.Options{Capacity: stageCapacity, State: personaState(frame), WaitsFor: waits}
	}
	// No Scorer: every stage keeps the frame's urgent priority, so the
	// runtime engages every frame at once, and the stages that shed under
	// heat read the governor's state themselves (see framePriority).
	lines := &linesStage{tr: tr, gateAt: o.NoveltyGate, heat: gov.State}
	light := &lightingStage{tr: tr, gateAt: o.NoveltyGate, heat: gov.State}
	src, err := persona.Spawn[Frame](rt, StageNovelty, &noveltyStage{tr: tr}, opts())
	if err == nil {
		_, err = persona.Spawn[Frame](rt, StageLines, lines, opts(StageNovelty))
	}
	if err == nil {
		_, err = persona.Spawn[Frame](rt, StagePlanes, &planesStage{tr: tr, cam: o.Camera}, opts(StageLines))
	}
	if err == nil {
		_, err = persona.Spawn[Frame](rt, StageSemantic, &semanticStage{tr: tr}, opts(StagePlanes))
	}
	if err == nil {
		_, err = persona.Spawn[Frame](rt, StageLighting, light, opts(StageNovelty))
	}
	if err == nil {
		err = rt.Start()
	}
	if err != nil {
		_, _ = rt.Shutdown(context.Background())
		return nil, fmt.Errorf("vision: start personas: %w", err)
	}

	meter := &cpuMeter{read: o.CPUTime}
	if meter.read == nil {
		meter.read = processCPU
	}
	therm := &thermalLog{}
	sampler := govern.NewSampler(gov, govern.SamplerOptions{
		Interval: o.SampleInterval,
		// Each sample judged alone: frames live 100 ms, so ten seconds
		// of memory (the chat daemon's window) would answer a hot stage
		// long after its frames expired.
		Window: o.SampleInterval,
		// One core is the unit of DutyTarget. No Meter: its InFlight
		// against one core would call two overlapping stages
		// oversubscription.
		Cores:   1,
		CPUTime: meter.sample,
		Source: func(time.Time) govern.Sample {
			var queued, capacity int
			for _, s := range rt.Snapshots() {
				queued += s.Counts.Queued
				capacity += stageCapacity
			}
			return govern.Sample{Load: float64(queued) / float64(max(capacity, 1))}
		},
		OnChange: func(_, to govern.Thermal) { therm.change(time.Now(), to) },
		Logger:   o.Logger,
	})

	runtime.GC() // the baseline's garbage is not the personas' CPU
	cpu0, cpuErr := processCPU()
	start := time.Now()
	therm.change(start, govern.Nominal)
	rctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { _ = sampler.Run(rctx) })
	camDone := make(chan int, 1)
	wg.Go(func() { camDone <- camera(rctx, src, frames, start, o.Deadline) })

	// Wait until every stage has accounted every frame, or until the last
	// frames have had all the time they can need: the deadline at each
	// stage and a persona's inbox sweep (once a second) with a margin.
	var delivered int
	var runErr error
	select {
	case delivered = <-camDone:
	case <-ctx.Done():
		delivered = <-camDone
	}
	if delivered == len(frames) {
		grace := time.NewTimer(time.Duration(numStages)*o.Deadline + 2*time.Second)
		select {
		case <-tr.done:
		case <-grace.C:
			o.Logger.Warn("vision: frames still in the pipeline at the end", "frames", len(frames), "accounted", tr.accounted())
		case <-ctx.Done():
		}
		grace.Stop()
	}
	if err := ctx.Err(); err != nil {
		runErr = fmt.Errorf("vision: persona run: %w", err)
	}
	wall := time.Since(start)
	stop()
	wg.Wait()
	cpu1, cpu1Err := processCPU()
	left, err := rt.Shutdown(context.Background())
	if err != nil {
		runErr = errors.Join(runErr, fmt.Errorf("vision: shutdown: %w", err))
	}
	therm.change(time.Now(), -1)

	res := &runResult{tr: tr, thermal: therm.spans, leftover: left.Pending()}
	r := &res.report
	r.Wall = wall
	r.Delivered = delivered
	if cpuErr == nil && cpu1Err == nil {
		r.ProcessCPU = cpu1 - cpu0
	}
	r.PeakCPU = meter.peak()
	snaps := make(map[string]persona.Snapshot)
	for _, l := range left.Leftovers {
		snaps[l.Persona] = persona.Snapshot{Counts: l.Counts}
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for s := range numStages {
		c := snaps[stageNames[s]].Counts
		r.Stages = append(r.Stages, StageReport{
			Name: stageNames[s], Processed: int(c.Handled), Skipped: int(c.Declined), Expired: int(c.Expired),
			Failed: int(c.Failed), Pending: c.Queued + c.Deferred + c.InFlight, Deferrals: int(c.Deferrals),
			Balanced:  c.Balanced(),
			Delivered: int(c.Delivered), CPU: tr.cpu[s],
		})
		r.StageCPU += tr.cpu[s]
	}
	r.finish(wall, tr.frames)
	r.PassedEveryStage, r.ExpiredUnderTarget = passed(tr, meter, o.DutyTarget)
	res.lineQ, res.labelQ = servedQuality(frames, tr.frames)
	r.LineQuality, r.LabelQuality = mean(res.lineQ), mean(res.labelQ)
	return res, runErr
}

// passed counts the frames every stage handled or declined, and those some
// stage let expire while the duty meter read under target, at the frame's
// capture and at its expiry. The caller holds tr.mu.
func passed(tr *trace, meter *cpuMeter, target float64) (all, expiredUnder int) {
	for i := range tr.frames {
		ok, under := true, false
		for s := range numStages {
			ev := tr.events[s][i]
			switch ev.Account {
			case persona.EventHandled, persona.EventDeclined:
				continue
			case persona.EventExpired:
				under = under || meter.under(target, tr.captured[i], ev.At)
			}
			ok = false
		}
		if ok {
			all++
		}
		if under {
			expiredUnder++
		}
	}
	return all, expiredUnder
}

// camera delivers frame i at start + i/FPS, each with its deadline, and
// returns how many it delivered. A delivery never blocks: a full inbox
// defers, it does not push back on the camera.
func camera(ctx context.Context, src *persona.Persona[Frame], frames []*Frame, start time.Time, deadline time.Duration) int {
	t := time.NewTimer(0)
	defer t.Stop()
	<-t.C
	for i, f := range frames {
		if d := time.Until(start.Add(f.At)); d > 0 {
			t.Reset(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				return i
			}
		} else if ctx.Err() != nil {
			return i
		}
		// The stages see the image and the pose, never the ground truth.
		pf := *f
		pf.Truth = Truth{}
		now := time.Now()
		err := src.Deliver(persona.Item[Frame]{
			ID: frameID(i), Key: "camera", Priority: framePriority,
			Created: now, Deadline: now.Add(deadline), Payload: pf,
		})
		if err != nil {
			return i
		}
	}
	return len(frames)
}

// baseline runs every stage on every frame, synchronously on one goroutine
// and as fast as it can: the CPU it takes is what it would take at the frame
// rate, and at 30 fps each frame is done long before the next one comes, so
// its latency is its processing time.
func (p *Pipeline) baseline(ctx context.Context, frames []*Frame) *runResult {
	o := p.opts
	tr := newTrace(len(frames))
	res := &runResult{tr: tr}
	runtime.GC()
	cpu0, cpuErr := processCPU()
	start := time.Now()
	var prev []float64
	for i, f := range frames {
		if ctx.Err() != nil {
			break
		}
		t0 := time.Now()
		var th []float64
		tr.ran(stNovelty, i, timeStage(func() { th = thumbnail(f.Img); _ = thumbNovelty(prev, th) }), nil)
		prev = th
		var lines []Line
		tr.ran(stLines, i, timeStage(func() { lines = FindLines(f.Img, LineOptions{}) }),
			func(r *frameResult) { r.Lines, r.LinesFresh = lines, true })
		var planes []Plane
		tr.ran(stPlanes, i, timeStage(func() {
			planes = SegmentPlanes(f.Img, lines, PlaneOptions{Horizon: o.Camera.Horizon(f.Pose)})
		}), nil)
		var lab Labels
		tr.ran(stSemantic, i, timeStage(func() { lab = Semantic(f.Img, planes) }),
			func(r *frameResult) { r.Labels, r.LabelsFresh = lab, true })
		var light Lighting
		tr.ran(stLighting, i, timeStage(func() { light = EstimateLighting(f.Img) }),
			func(r *frameResult) { r.Lighting, r.LightingFresh = light, true })
		tr.served(i, time.Since(t0), true)
	}
	wall := time.Since(start)
	cpu1, cpu1Err := processCPU()
	r := &res.report
	r.Wall = wall
	if cpuErr == nil && cpu1Err == nil {
		r.ProcessCPU = cpu1 - cpu0
	}
	for s := range numStages {
		r.Stages = append(r.Stages, StageReport{
			Name: stageNames[s], Delivered: tr.runs[s], Processed: tr.runs[s], CPU: tr.cpu[s], Balanced: true,
		})
		r.StageCPU += tr.cpu[s]
		r.Delivered = max(r.Delivered, tr.runs[s])
	}
	// Duty is measured against the time the frames span at the camera's
	// rate, the wall time it would have run for in real time.
	r.finish(time.Duration(r.Delivered)*o.frameTime(), tr.frames)
	r.PassedEveryStage = r.Delivered
	res.lineQ, res.labelQ = servedQuality(frames, tr.frames)
	r.LineQuality, r.LabelQuality = mean(res.lineQ), mean(res.labelQ)
	// Drop the per-frame lines and labels: the qualities are kept, and
	// the baseline's results are never drawn.
	for i := range tr.frames {
		tr.frames[i].Lines, tr.frames[i].Labels = nil, Labels{}
	}
	return res
}

// servedQuality scores, for every frame, the results the display would show
// on it: the last fresh lines and labels at or before it.
func servedQuality(frames []*Frame, res []frameResult) (lineQ, labelQ []float64) {
	lineQ, labelQ = make([]float64, len(frames)), make([]float64, len(frames))
	var lines []Line
	var labels Labels
	for i, f := range frames {
		if res[i].LinesFresh {
			lines = res[i].Lines
		}
		if res[i].LabelsFresh {
			labels = res[i].Labels
		}
		lineQ[i] = LineQuality(lines, f.Truth.Lines)
		labelQ[i] = Quality(labels, f.Truth.Labels)
	}
	return lineQ, labelQ
}

// cpuMeter wraps the governor's CPU clock to remember its readings, for the
// busiest window in the report and for what the governor had measured when
// a frame expired.
type cpuMeter struct {
	read    func() (time.Duration, error)
	mu      sync.Mutex
	last    time.Duration
	lastAt  time.Time
	maxDuty float64
	windows []meterWindow // one per sample after the first, in order
}

// meterWindow is the duty measured over the sample window that ended at end.
type meterWindow struct {
	end  time.Time
	duty float64
}

func (m *cpuMeter) sample() (time.Duration, error) {
	c, err := m.read()
	if err != nil {
		return c, err
	}
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.lastAt.IsZero() {
		if dt := now.Sub(m.lastAt); dt > 0 {
			d := float64(c-m.last) / float64(dt)
			m.maxDuty = max(m.maxDuty, d)
			m.windows = append(m.windows, meterWindow{end: now, duty: d})
		}
	}
	m.last, m.lastAt = c, now
	return c, nil
}

// under reports whether, at each of times, the duty the governor had last
// measured was under target (nothing measured yet counts as under). A
// window that ended at the very instant t may have been measured before or
// after what happened at t, so then the window before it must be under too.
func (m *cpuMeter) under(target float64, times ...time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, t := range times {
		// i is the last window that ended at or before t: the one in force.
		i := sort.Search(len(m.windows), func(i int) bool { return m.windows[i].end.After(t) }) - 1
		if i >= 0 && m.windows[i].duty >= target {
			return false
		}
		if i >= 1 && m.windows[i].end.Equal(t) && m.windows[i-1].duty >= target {
			return false
		}
	}
	return true
}

func (m *cpuMeter) peak() float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.maxDuty
}

// thermalLog records the governor's states over a run. The first change
// sets the origin that spans are measured from.
type thermalLog struct {
	mu     sync.Mutex
	spans  []ThermalSpan
	origin time.Time
	at     time.Time
	state  govern.Thermal
	on     bool
}

// change closes the current span at now and opens one in state to; a
// negative state only closes.
func (l *thermalLog) change(now time.Time, to govern.Thermal) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.origin.IsZero() {
		l.origin = now
	}
	if l.on {
		l.spans = append(l.spans, ThermalSpan{State: l.state, Start: l.at.Sub(l.origin), Duration: now.Sub(l.at)})
	}
	l.on = to >= 0
	l.state, l.at = to, now
}
