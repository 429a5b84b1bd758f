package vision

import (
	"context"
	"sync"
	"time"

	"github.com/personaos/persona"
	"github.com/personaos/persona/govern"
)

// Stage names: the personas of the pipeline, in the order of the graph.
const (
	StageNovelty  = "novelty"
	StageLines    = "lines"
	StagePlanes   = "planes"
	StageSemantic = "semantic"
	StageLighting = "lighting"
)

// stage indexes the per-stage arrays of a trace.
type stage int

const (
	stNovelty stage = iota
	stLines
	stPlanes
	stSemantic
	stLighting
	numStages
)

var stageNames = [numStages]string{StageNovelty, StageLines, StagePlanes, StageSemantic, StageLighting}

func (s stage) String() string { return stageNames[s] }

// Priorities and shedding. A vision stage wants every frame: a frame that
// waits in a stage's inbox past its deadline is lost work, and a frame left
// there while the machine has headroom is the failure issue 10 names ("no
// stage lets a frame expire while the duty is under its target"). So the
// camera delivers every frame at framePriority, above the urgent line (0.8,
// the seed's), and every stage keeps it: the runtime engages every frame at
// once at every stage, whatever the mood, energy, thresholds, bandwidth
// share or cadence, and each stage judges the frame itself. What a stage
// chooses not to work on it declines (persona.ErrDecline, accounted as
// skipped: the last results stand), at once, never by letting it wait.
//
// The governor sheds work through those judgements, at the head of the
// expensive chain, in the states it enters once it measures the duty at its
// target (serious and critical; fair, entered at three quarters of the
// target, sheds nothing; it leaves them one state per sample, so shedding
// may go on, by declining, for a second after the duty fell back): the
// line finder then waits for more drift (linesHotGate)
// and the lighting estimator declines every frame. Planes and semantic
// always follow through on fresh lines rather than waste them. Relying on
// the runtime's thresholds instead (a frame priority below the urgent
// line, not engaged when the governor raises the bar) let frames expire
// while the duty was under the target: the governor steps down one state
// per sample, so it stays serious for a second after a hot one, and a
// still frame's priority sat exactly at the fair threshold.
const (
	framePriority = 0.85
	// lightingMaxAge is how many frames a lighting estimate stands when
	// the view does not change: light may change without the view (a lamp
	// switched on), so it is refreshed once a second at 30 fps anyway.
	lightingMaxAge = 30
)

// linesHotGate is the novelty against the last frame the line finder
// processed from which it works on a frame, by thermal state, when above
// Options.NoveltyGate: at serious a view that drifted by a tenth, at
// critical by a quarter. New territory (novelty 0.45 and more after a turn)
// is worked on in every state. These are the bars the runtime's thresholds
// used to set for a priority of 0.35 plus the novelty (0.3 for an active
// persona, plus the governor's shift of 0.15 or 0.3).
var linesHotGate = [...]float64{govern.Nominal: 0, govern.Fair: 0, govern.Serious: 0.10, govern.Critical: 0.25}

// hot reports whether the governor sheds at heat: serious or critical, the
// duty at or past its target.
func hot(heat func() govern.Thermal) bool { return heat != nil && heat() >= govern.Serious }

// thermalOf reads heat, nominal when there is none (the baseline).
func thermalOf(heat func() govern.Thermal) govern.Thermal {
	if heat == nil {
		return govern.Nominal
	}
	return min(max(heat(), govern.Nominal), govern.Critical)
}

// noveltyOut is the novelty persona's output: the frame's thumbnail, which
// the stages downstream compare with the thumbnail of the last frame they
// worked on, and its change from the previous frame.
type noveltyOut struct {
	Seq   int
	Score float64 // against the previous frame
	thumb []float64
}

// linesOut is the line finder's output for a frame it processed.
type linesOut struct {
	Seq   int
	Lines []Line
}

// planesOut is the plane segmenter's output for a frame it processed.
type planesOut struct {
	Seq    int
	Planes []Plane
}

// upstream returns the value of type V that the prerequisite from produced
// for it. It is false when the prerequisite declined (no value), timed out
// (no entry) or produced something else.
func upstream[V any](it persona.Item[Frame], from string) (V, bool) {
	for _, o := range it.Upstream {
		if o.From == from {
			v, ok := o.Value.(V)
			return v, ok
		}
	}
	var zero V
	return zero, false
}

// noveltyStage is the cheap detector on every frame. Its handler is called
// by one goroutine at a time (the persona's), so prev needs no lock.
type noveltyStage struct {
	tr   *trace
	prev []float64
}

func (s *noveltyStage) Handle(_ context.Context, it persona.Item[Frame]) (any, error) {
	var out noveltyOut
	cpu := timeStage(func() {
		th := thumbnail(it.Payload.Img)
		out = noveltyOut{Seq: it.Payload.Seq, Score: thumbNovelty(s.prev, th), thumb: th}
	})
	s.prev = out.thumb
	s.tr.ran(stNovelty, it.Payload.Seq, cpu, func(r *frameResult) { r.Novelty = out.Score })
	return out, nil
}

// gate decides, for the line finder and the lighting estimator, whether a
// frame shows enough that the stage has not seen: its thumbnail against the
// one of the last frame the stage worked on. It is shared by the stage's
// scorer (called on the goroutine that releases the frame) and its handler,
// hence the lock.
type gate struct {
	mu      sync.Mutex
	key     []float64
	keySeq  int
	started bool
}

// novelty returns how new frame seq is to the stage: 1 before the first
// frame or without a thumbnail, and -1 for a frame older than the last one
// the stage worked on (the display never goes back in time).
func (g *gate) novelty(seq int, th []float64) (n float64, age int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case !g.started || th == nil:
		return 1, 0
	case seq <= g.keySeq:
		return -1, 0
	}
	return thumbNovelty(g.key, th), seq - g.keySeq
}

func (g *gate) set(seq int, th []float64) {
	g.mu.Lock()
	g.key, g.keySeq, g.started = th, seq, true
	g.mu.Unlock()
}

// linesStage is the line finder: it works on a frame only when there is
// new territory, novelty against the last frame it processed at or above
// the gate (raised when the governor runs hot: linesHotGate); otherwise it
// declines, and its dependents are released Skipped.
type linesStage struct {
	tr       *trace
	gateAt   float64
	heat     func() govern.Thermal // nil: always nominal
	g        gate
	lineOpts LineOptions
}

func (s *linesStage) Handle(_ context.Context, it persona.Item[Frame]) (any, error) {
	seq := it.Payload.Seq
	nv, _ := upstream[noveltyOut](it, StageNovelty)
	var out *linesOut
	cpu := timeStage(func() {
		if n, _ := s.g.novelty(seq, nv.thumb); n < max(s.gateAt, linesHotGate[thermalOf(s.heat)]) {
			return
		}
		out = &linesOut{Seq: seq, Lines: FindLines(it.Payload.Img, s.lineOpts)}
		s.g.set(seq, nv.thumb)
	})
	if out == nil {
		s.tr.skipped(stLines, cpu)
		return nil, persona.ErrDecline
	}
	s.tr.ran(stLines, seq, cpu, func(r *frameResult) { r.Lines, r.LinesFresh = out.Lines, true })
	return *out, nil
}

// planesStage is the plane segmenter: it works on the frames the line
// finder processed and declines the rest, whose planes are the last ones.
type planesStage struct {
	tr  *trace
	cam Camera
}

func (s *planesStage) Handle(_ context.Context, it persona.Item[Frame]) (any, error) {
	lo, ok := upstream[linesOut](it, StageLines)
	if !ok {
		s.tr.skipped(stPlanes, 0)
		return nil, persona.ErrDecline
	}
	var out planesOut
	cpu := timeStage(func() {
		// The horizon comes from the pose's pitch: what a phone's IMU
		// knows from gravity without looking at the image.
		out = planesOut{Seq: lo.Seq, Planes: SegmentPlanes(it.Payload.Img, lo.Lines,
			PlaneOptions{Horizon: s.cam.Horizon(it.Payload.Pose)})}
	})
	s.tr.ran(stPlanes, it.Payload.Seq, cpu, func(r *frameResult) { r.Planes = out.Planes })
	return out, nil
}

// semanticStage is the semantic segmenter; it is the end of the pipeline,
// so it records each frame's latency, processed or not.
type semanticStage struct {
	tr *trace
}

func (s *semanticStage) Handle(_ context.Context, it persona.Item[Frame]) (any, error) {
	seq := it.Payload.Seq
	po, ok := upstream[planesOut](it, StagePlanes)
	if !ok {
		s.tr.skipped(stSemantic, 0)
		s.tr.served(seq, time.Since(it.Created), false)
		return nil, persona.ErrDecline
	}
	var lab Labels
	cpu := timeStage(func() { lab = Semantic(it.Payload.Img, po.Planes) })
	s.tr.ran(stSemantic, seq, cpu, func(r *frameResult) { r.Labels, r.LabelsFresh = lab, true })
	s.tr.served(seq, time.Since(it.Created), true)
	return lab, nil
}

// lightingStage is the lighting estimator: it refreshes its estimate when
// the view changed or the estimate is a second old, and not at all while
// the governor runs hot: lighting is what a phone running hot can do
// without first.
type lightingStage struct {
	tr     *trace
	gateAt float64
	heat   func() govern.Thermal // nil: always nominal
	g      gate
}

func (s *lightingStage) Handle(_ context.Context, it persona.Item[Frame]) (any, error) {
	seq := it.Payload.Seq
	nv, _ := upstream[noveltyOut](it, StageNovelty)
	var out *Lighting
	cpu := timeStage(func() {
		if hot(s.heat) {
			return
		}
		if n, age := s.g.novelty(seq, nv.thumb); n < 0 || (n < s.gateAt && age < lightingMaxAge) {
			return
		}
		l := EstimateLighting(it.Payload.Img)
		out = &l
		s.g.set(seq, nv.thumb)
	})
	if out == nil {
		s.tr.skipped(stLighting, cpu)
		return nil, persona.ErrDecline
	}
	s.tr.ran(stLighting, seq, cpu, func(r *frameResult) { r.Lighting, r.LightingFresh = *out, true })
	return *out, nil
}

var (
	_ persona.Handler[Frame] = (*noveltyStage)(nil)
	_ persona.Handler[Frame] = (*linesStage)(nil)
	_ persona.Handler[Frame] = (*planesStage)(nil)
	_ persona.Handler[Frame] = (*semanticStage)(nil)
	_ persona.Handler[Frame] = (*lightingStage)(nil)
)
