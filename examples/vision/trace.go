package vision

import (
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/personaos/persona"
)

// frameResult is what one run produced for one frame. Fresh results are
// those computed on this very frame; a frame without them is served the
// last fresh ones before it.
type frameResult struct {
	Novelty       float64 // against the previous frame
	Lines         []Line
	LinesFresh    bool
	Planes        []Plane // set only when the plane segmenter ran on this frame
	Labels        Labels
	LabelsFresh   bool
	Lighting      Lighting
	LightingFresh bool
	// Latency is from delivery to the semantic segmenter's finishing the
	// frame (processed or declined); Served says it finished it at all.
	Latency time.Duration
	Served  bool
}

// stageEvents is the life of one frame at one stage, in the observer's
// order: sequence numbers of the delivery and of the final account (0 when
// it did not happen) and that account.
type stageEvents struct {
	Delivered, Final int
	Account          persona.EventKind
	At               time.Time // of the final account
}

// trace records one run: per frame and per stage, from the stage handlers
// (CPU time, results) and from the runtime's observer (deliveries and final
// accounts, in order). Safe for concurrent use.
type trace struct {
	mu       sync.Mutex
	frames   []frameResult
	cpu      [numStages]time.Duration
	runs     [numStages]int // stage function executions
	declines [numStages]int // handler declines
	events   [numStages][]stageEvents
	captured []time.Time // per frame: its delivery to the first stage
	finals   [numStages]int
	seq      int
	done     chan struct{} // closed when every stage has accounted every frame
	closed   bool
}

func newTrace(n int) *trace {
	tr := &trace{frames: make([]frameResult, n), captured: make([]time.Time, n), done: make(chan struct{})}
	for s := range tr.events {
		tr.events[s] = make([]stageEvents, n)
	}
	return tr
}

// ran records an execution of stage s on frame seq.
func (tr *trace) ran(s stage, seq int, cpu time.Duration, set func(*frameResult)) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.cpu[s] += cpu
	tr.runs[s]++
	if seq >= 0 && seq < len(tr.frames) && set != nil {
		set(&tr.frames[seq])
	}
}

// skipped records a decline by stage s and the time it took to decide.
func (tr *trace) skipped(s stage, cpu time.Duration) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.cpu[s] += cpu
	tr.declines[s]++
}

// served records that the end of the pipeline finished frame seq.
func (tr *trace) served(seq int, latency time.Duration, fresh bool) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if seq >= 0 && seq < len(tr.frames) {
		tr.frames[seq].Latency, tr.frames[seq].Served = latency, true
	}
}

// frameID is the item ID of frame seq; frameSeq parses it back.
func frameID(seq int) string { return "frame-" + strconv.Itoa(seq) }

func frameSeq(id string) (int, bool) {
	s, ok := strings.CutPrefix(id, "frame-")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

var stageIndex = map[string]stage{
	StageNovelty: stNovelty, StageLines: stLines, StagePlanes: stPlanes,
	StageSemantic: stSemantic, StageLighting: stLighting,
}

// Observe is the runtime's observer: it is called synchronously from the
// persona loops, so it only counts.
func (tr *trace) Observe(e persona.Event) {
	switch e.Kind {
	case persona.EventDelivered, persona.EventHandled, persona.EventDeclined,
		persona.EventExpired, persona.EventFailed:
	default:
		return
	}
	s, ok := stageIndex[e.Persona]
	if !ok {
		return
	}
	seq, ok := frameSeq(e.ItemID)
	if !ok {
		return
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if seq < 0 || seq >= len(tr.frames) {
		return
	}
	tr.seq++
	ev := &tr.events[s][seq]
	if e.Kind == persona.EventDelivered {
		ev.Delivered = tr.seq
		if s == stNovelty {
			tr.captured[seq] = e.At
		}
		return
	}
	if ev.Final == 0 {
		tr.finals[s]++
	}
	ev.Final, ev.Account, ev.At = tr.seq, e.Kind, e.At
	for _, n := range tr.finals {
		if n < len(tr.frames) {
			return
		}
	}
	if !tr.closed {
		tr.closed = true
		close(tr.done)
	}
}

// accounted returns, per stage, how many frames have their final account.
func (tr *trace) accounted() map[string]int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	m := make(map[string]int, numStages)
	for s, n := range tr.finals {
		m[stageNames[s]] = n
	}
	return m
}
