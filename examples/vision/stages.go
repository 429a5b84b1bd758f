package vision

import (
	"context"
	"sync"
	"time"

	"github.com/personaos/persona"
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

// Priorities. The camera delivers every frame at framePriority, above the
// urgent line (0.8, the seed's), because the novelty detector must see every
// frame and costs ~50 µs; planes and semantic inherit it, so they always
// follow through on fresh lines rather than waste them. The governor sheds
// work at the head of the expensive chain instead: the line finder's
// priority grows with the novelty of the frame, and the lighting estimator's
// is low.
const (
	framePriority = 0.85
	// linesBase + novelty is the line finder's priority for a frame: a
	// view that drifted by the novelty gate (0.05) scores 0.40, which a
	// governor at serious (threshold 0.3 + 0.15 for an active persona) no
	// longer engages, drift of 0.25 scores 0.60, the bar at critical, and
	// new territory (novelty 0.45 and more) is urgent and always engaged.
	linesBase = 0.35
	// lightingPriority is engaged at nominal and fair (thresholds 0.30 and
	// 0.35 for an active persona) and shed from serious on.
	lightingPriority = 0.4
	// lightingMaxAge is how many frames a lighting estimate stands when
	// the view does not change: light may change without the view (a lamp
	// switched on), so it is refreshed once a second at 30 fps anyway.
	lightingMaxAge = 30
)

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

// linesStage is the line finder: it engages only when there is new
// territory, novelty against the last frame it processed at or above the
// gate; otherwise it declines, and its dependents are released Skipped.
type linesStage struct {
	tr       *trace
	gateAt   float64
	g        gate
	lineOpts LineOptions
}

// Score is the line finder's priority for a frame (see linesBase): the more
// the view changed since the lines were found, the more it matters.
func (s *linesStage) Score(_ string, it persona.Item[Frame], _ time.Time) float64 {
	nv, ok := upstream[noveltyOut](it, StageNovelty)
	if !ok {
		return framePriority // nothing to judge by: treat it as new
	}
	n, _ := s.g.novelty(it.Payload.Seq, nv.thumb)
	return min(0.95, linesBase+max(0, n))
}

func (s *linesStage) Handle(_ context.Context, it persona.Item[Frame]) (any, error) {
	seq := it.Payload.Seq
	nv, _ := upstream[noveltyOut](it, StageNovelty)
	var out *linesOut
	cpu := timeStage(func() {
		if n, _ := s.g.novelty(seq, nv.thumb); n < s.gateAt {
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

// lightingStage is the low-priority lighting estimator: it refreshes its
// estimate when the view changed or the estimate is a second old.
type lightingStage struct {
	tr     *trace
	gateAt float64
	g      gate
}

// Score gives every frame the same low priority: lighting is what a phone
// running hot can do without first.
func (s *lightingStage) Score(string, persona.Item[Frame], time.Time) float64 {
	return lightingPriority
}

func (s *lightingStage) Handle(_ context.Context, it persona.Item[Frame]) (any, error) {
	seq := it.Payload.Seq
	nv, _ := upstream[noveltyOut](it, StageNovelty)
	var out *Lighting
	cpu := timeStage(func() {
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
	_ persona.Scorer[Frame]  = (*linesStage)(nil)
	_ persona.Handler[Frame] = (*planesStage)(nil)
	_ persona.Handler[Frame] = (*semanticStage)(nil)
	_ persona.Handler[Frame] = (*lightingStage)(nil)
	_ persona.Scorer[Frame]  = (*lightingStage)(nil)
)
