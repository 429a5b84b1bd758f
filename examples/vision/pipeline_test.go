package vision

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/personaos/persona"
	"github.com/personaos/persona/govern"
)

// testPose looks at a corner of the default room with its door, slightly
// down, from the middle.
var testPose = Pose{Yaw: 30 * deg, Pitch: -12 * deg, Position: Vec3{0, 1.5, 0}}

// stillPath holds testPose for two seconds.
func stillPath() Path {
	return Path{Segments: []Segment{{Kind: Still, Duration: 2 * time.Second, From: testPose, To: testPose}}}
}

// movingPath pans for a second at the default path's fastest rate, turns
// 100° to new territory in 0.8 s and pans back for a second: 84 frames.
func movingPath() Path {
	p1 := testPose
	p1.Yaw += 12 * deg
	p2 := p1
	p2.Yaw += 100 * deg
	p3 := p2
	p3.Yaw -= 12 * deg
	return Path{Segments: []Segment{
		{Kind: Pan, Start: 0, Duration: time.Second, From: testPose, To: p1},
		{Kind: Turn, Start: time.Second, Duration: 800 * time.Millisecond, From: p1, To: p2},
		{Kind: Pan, Start: 1800 * time.Millisecond, Duration: time.Second, From: p2, To: p3},
	}}
}

// Frames are rendered once per path for the whole test binary: rendering is
// the slowest part of these tests, and frames are immutable.
var (
	framesMu    sync.Mutex
	framesCache = map[string][]*Frame{}
)

func framesOf(t *testing.T, name string, path Path) []*Frame {
	t.Helper()
	framesMu.Lock()
	defer framesMu.Unlock()
	if f, ok := framesCache[name]; ok {
		return f
	}
	f, err := New(Options{Path: path}).Frames(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	framesCache[name] = f
	return f
}

// coolCPU is a CPU clock that never moves: the governor stays nominal.
func coolCPU() (time.Duration, error) { return 0, nil }

// testOptions are quiet and cool; tests change what they are about.
func testOptions(path Path) Options {
	return Options{Path: path, CPUTime: coolCPU, Logger: slog.New(slog.DiscardHandler)}
}

// personaRun runs the personas on the frames of path in a synctest bubble,
// where the 30 fps camera's time passes instantly and each frame goes
// through the whole pipeline before the next one is captured.
func personaRun(t *testing.T, name string, o Options) *runResult {
	t.Helper()
	frames := framesOf(t, name, o.Path)
	var res *runResult
	synctest.Test(t, func(t *testing.T) {
		p := New(o)
		var err error
		res, err = p.personas(t.Context(), frames)
		if err != nil {
			t.Fatal(err)
		}
	})
	return res
}

// coolMoving is the persona run on movingPath, nominal throughout. It is
// deterministic (each frame goes through the pipeline alone), so the tests
// that only read it share one run.
var coolMoving = struct {
	sync.Mutex
	res *runResult
}{}

func coolMovingRun(t *testing.T) *runResult {
	t.Helper()
	coolMoving.Lock()
	defer coolMoving.Unlock()
	if coolMoving.res == nil {
		coolMoving.res = personaRun(t, "moving", testOptions(movingPath()))
	}
	return coolMoving.res
}

func TestStagesRunInDependencyOrder(t *testing.T) {
	res := coolMovingRun(t)
	tr := res.tr
	for _, edge := range []struct{ dep, pre stage }{
		{stLines, stNovelty}, {stPlanes, stLines}, {stSemantic, stPlanes}, {stLighting, stNovelty},
	} {
		for i := range tr.frames {
			dep, pre := tr.events[edge.dep][i], tr.events[edge.pre][i]
			if pre.Final == 0 || dep.Delivered <= pre.Final {
				t.Fatalf("frame %d reached %v (event %d) before %v had finished it (event %d)",
					i, edge.dep, dep.Delivered, edge.pre, pre.Final)
			}
		}
	}
	// Work flows only behind fresh work: planes only on frames the line
	// finder processed, semantics only on frames with fresh planes, and
	// with nothing expiring, on all of them.
	for i, f := range tr.frames {
		if (f.Planes != nil) != f.LinesFresh || f.LabelsFresh != f.LinesFresh {
			t.Errorf("frame %d: fresh lines %v, planes %v, labels %v: want all or none",
				i, f.LinesFresh, f.Planes != nil, f.LabelsFresh)
		}
	}
	if tr.runs[stLines] == 0 || tr.runs[stPlanes] != tr.runs[stLines] || tr.runs[stSemantic] != tr.runs[stLines] {
		t.Errorf("runs: lines %d, planes %d, semantic %d: want equal and positive",
			tr.runs[stLines], tr.runs[stPlanes], tr.runs[stSemantic])
	}
}

func TestEveryFrameIsAccountedAtEveryStage(t *testing.T) {
	res := coolMovingRun(t)
	n := len(res.tr.frames)
	r := res.report
	if r.Delivered != n || res.leftover != 0 {
		t.Fatalf("delivered %d of %d frames, %d left at shutdown", r.Delivered, n, res.leftover)
	}
	for _, s := range r.Stages {
		if !s.Balanced || s.Delivered != n || s.Processed+s.Skipped+s.Expired+s.Failed != n || s.Pending != 0 {
			t.Errorf("%s: %+v: want %d frames delivered, each processed, skipped, expired or failed", s.Name, s, n)
		}
		if s.Failed != 0 {
			t.Errorf("%s: %d frames failed", s.Name, s.Failed)
		}
		st := stageIndex[s.Name]
		if s.Processed != res.tr.runs[st] || s.Skipped != res.tr.declines[st] {
			t.Errorf("%s: runtime counts %d processed, %d skipped; the stage ran %d times and declined %d",
				s.Name, s.Processed, s.Skipped, res.tr.runs[st], res.tr.declines[st])
		}
	}
	if nv, _ := r.Stage(StageNovelty); nv.Processed != n {
		t.Errorf("novelty processed %d of %d frames: it must see every frame", nv.Processed, n)
	}
	// Nothing is hot and nothing waits: every frame reaches the end.
	if r.Served != n {
		t.Errorf("semantic finished %d of %d frames", r.Served, n)
	}
}

func TestStillCameraCostsAFractionOfAMovingOne(t *testing.T) {
	still := personaRun(t, "still", testOptions(stillPath())).tr
	moving := coolMovingRun(t).tr
	expensive := func(tr *trace) int { return tr.runs[stLines] + tr.runs[stPlanes] + tr.runs[stSemantic] }
	// A still camera: the first frame is new, the rest show nothing new.
	if still.runs[stLines] != 1 || expensive(still) != 3 {
		t.Errorf("still camera: lines ran %d times, the expensive stages %d: want 1 and 3",
			still.runs[stLines], expensive(still))
	}
	// Per frame, so that paths of different lengths compare.
	perFrame := func(tr *trace) float64 { return float64(expensive(tr)) / float64(len(tr.frames)) }
	if ratio := perFrame(still) / perFrame(moving); ratio > 0.2 {
		t.Errorf("still camera costs %.2f of a moving one per frame (%d of %d vs %d of %d stage runs): want <= 0.2",
			ratio, expensive(still), len(still.frames), expensive(moving), len(moving.frames))
	}
	// The cheap detector runs on every frame either way; lighting is
	// refreshed once a second when the view holds.
	if still.runs[stNovelty] != len(still.frames) || moving.runs[stNovelty] != len(moving.frames) {
		t.Errorf("novelty ran on %d of %d still and %d of %d moving frames: want all",
			still.runs[stNovelty], len(still.frames), moving.runs[stNovelty], len(moving.frames))
	}
	if got, want := still.runs[stLighting], len(still.frames)/lightingMaxAge; got != want {
		t.Errorf("still camera: lighting ran %d times, want %d (once a second)", got, want)
	}
}

func TestLineFinderRunsOnNewTerritory(t *testing.T) {
	path := movingPath()
	res := coolMovingRun(t)
	frames := framesOf(t, "moving", path)
	turn := path.Segments[1]
	first, last := int(turn.Start*30/time.Second), int(turn.End()*30/time.Second)
	ran := 0
	for i := first; i < last; i++ {
		if res.tr.frames[i].LinesFresh {
			ran++
		}
	}
	// A turn of 100° in 24 frames moves 10 px a frame at its fastest: the
	// view is new on most frames, far more than the one in five of a pan.
	if ran < (last-first)/2 {
		t.Errorf("during the turn the line finder ran on %d of %d frames: want at least half", ran, last-first)
	}
	// Whatever it shows is fresh enough: the lines on screen match the
	// room's edges on every frame, before, during and after the turn, as
	// well as the baseline's, which finds every edge on these frames.
	for i, q := range res.lineQ {
		if q < 1 && LineQuality(FindLines(frames[i].Img, LineOptions{}), frames[i].Truth.Lines) == 1 {
			if q < 0.75 {
				t.Errorf("frame %d (%v): lines shown match %.0f%% of the room's edges", i, path.SegmentAt(frames[i].At).Kind, 100*q)
			}
		}
	}
	if m := mean(res.lineQ); m < 0.9 {
		t.Errorf("mean line quality as shown %.3f, want >= 0.9", m)
	}
}

// hotCPU is a CPU clock in the synctest bubble that burns half a core: ten
// times the default target, so the governor goes critical at its first
// sample and stays there.
func hotCPU() func() (time.Duration, error) {
	start := time.Now()
	return func() (time.Duration, error) { return time.Since(start) / 2, nil }
}

func TestGovernorShedsLowPriorityWorkWhenHot(t *testing.T) {
	path := movingPath()
	cool := coolMovingRun(t)
	frames := framesOf(t, "moving", path)
	var hot *runResult
	synctest.Test(t, func(t *testing.T) {
		o := testOptions(path)
		o.CPUTime = hotCPU()
		o.SampleInterval = 100 * time.Millisecond
		var err error
		hot, err = New(o).personas(t.Context(), frames)
		if err != nil {
			t.Fatal(err)
		}
	})
	var critical time.Duration
	for _, s := range hot.thermal {
		if s.State == govern.Critical {
			critical += s.Duration
		}
	}
	if critical < path.Duration()-200*time.Millisecond {
		t.Fatalf("critical for %v of %v: %+v", critical, path.Duration(), hot.thermal)
	}
	light, _ := hot.report.Stage(StageLighting)
	lines, _ := hot.report.Stage(StageLines)
	coolLines, _ := cool.report.Stage(StageLines)
	// Lighting is shed first: it runs only before the first sample and
	// declines every frame after. Shed, not left to expire: a vision
	// stage judges every frame at once.
	if light.Processed > 4 || light.Skipped < len(frames)-4 || light.Expired != 0 {
		t.Errorf("lighting while critical: %+v: want (almost) all frames declined, none expired", light)
	}
	// The line finder runs only where the view changed a lot, so less
	// often than when cool; the frames it does not work on it declines,
	// none expires, and planes and semantics follow through on all it
	// found.
	if lines.Processed >= coolLines.Processed || lines.Skipped <= len(frames)-coolLines.Processed || lines.Expired != 0 {
		t.Errorf("lines while critical: %+v; cool it processed %d: want fewer, the rest declined", lines, coolLines.Processed)
	}
	// Every frame is engaged at once, hot or not: none waits, none is
	// deferred, and the accounts add up.
	for _, s := range hot.report.Stages {
		if !s.Balanced || s.Processed+s.Skipped+s.Expired+s.Failed != len(frames) || s.Deferrals != 0 || s.Expired != 0 {
			t.Errorf("%s: %+v: want accounts adding up to %d frames, none expired or deferred", s.Name, s, len(frames))
		}
	}
	if sem, _ := hot.report.Stage(StageSemantic); sem.Processed != lines.Processed {
		t.Errorf("semantic processed %d frames of the %d with fresh lines", sem.Processed, lines.Processed)
	}
	// Once critical, the line finder works on a frame only if its novelty
	// against the last frame processed reaches linesHotGate[Critical].
	var key []float64
	for i, f := range hot.tr.frames {
		if !f.LinesFresh {
			continue
		}
		th := thumbnail(frames[i].Img)
		if n := thumbNovelty(key, th); frames[i].At > 200*time.Millisecond && n < linesHotGate[govern.Critical] {
			t.Errorf("frame %d: lines ran while critical on novelty %.3f, want >= %.2f", i, n, linesHotGate[govern.Critical])
		}
		key = th
	}
}

func TestRunComparesWithBaselineAndWritesFrames(t *testing.T) {
	// Half a second still, then a turn: a short walk, because the
	// baseline runs every stage on every frame.
	path := stillPath()
	path.Segments[0].Duration = 500 * time.Millisecond
	to := testPose
	to.Yaw += 100 * deg
	path.Segments = append(path.Segments, Segment{Kind: Turn, Start: 500 * time.Millisecond, Duration: 500 * time.Millisecond, From: testPose, To: to})
	frames := framesOf(t, "still+turn", path)
	dir := t.TempDir()
	var rep Report
	synctest.Test(t, func(t *testing.T) {
		o := testOptions(path)
		o.Out, o.OutFrames = dir, 3
		p := New(o)
		p.once.Do(func() { p.frames = frames })
		var err error
		rep, err = p.Run(t.Context())
		if err != nil {
			t.Fatal(err)
		}
	})
	c := rep.Comparison
	if b, _ := rep.Baseline.Stage(StageSemantic); b.Processed != len(frames) {
		t.Errorf("baseline semantic processed %d of %d frames", b.Processed, len(frames))
	}
	if sem, _ := rep.Personas.Stage(StageSemantic); c.BothProcessed == 0 || c.BothProcessed != sem.Processed || c.BothProcessed == len(frames) {
		t.Errorf("both processed %d of %d frames, persona semantic %d: want those, some but not all", c.BothProcessed, len(frames), sem.Processed)
	}
	// The stages are deterministic: on the frames both runs processed,
	// the results are the same.
	if c.LineQuality != c.BaselineLineQuality || c.LabelQuality != c.BaselineLabelQuality {
		t.Errorf("quality on frames both processed: lines %.3f vs %.3f, labels %.3f vs %.3f: want equal",
			c.LineQuality, c.BaselineLineQuality, c.LabelQuality, c.BaselineLabelQuality)
	}
	// Stage CPU is measured on the thread, so it is real even in the
	// bubble; skipping the still frames must cost less.
	if !(c.CPURatio > 0 && c.CPURatio < 1) {
		t.Errorf("CPU ratio %.2f: want in (0, 1)", c.CPURatio)
	}
	pngs, _ := filepath.Glob(filepath.Join(dir, "frame-*.png"))
	if len(pngs) != 3 {
		t.Errorf("%d PNGs written, want 3: %v", len(pngs), pngs)
	}
	b, err := os.ReadFile(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil || back.Frames != len(frames) {
		t.Errorf("report.json: %v, %d frames", err, back.Frames)
	}
	if _, err := os.Stat(filepath.Join(dir, "summary.txt")); err != nil {
		t.Error(err)
	}
}

func TestRunStopsWhenCancelled(t *testing.T) {
	frames := framesOf(t, "moving", movingPath())
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		o := testOptions(movingPath())
		o.NoBaseline = true
		p := New(o)
		p.once.Do(func() { p.frames = frames })
		time.AfterFunc(time.Second, cancel)
		rep, err := p.Run(ctx)
		if err == nil {
			t.Fatal("cancelled run: no error")
		}
		if d := rep.Personas.Delivered; d < 25 || d > 35 {
			t.Errorf("delivered %d frames in the second before the cancel, want ~30", d)
		}
		for _, s := range rep.Personas.Stages {
			if !s.Balanced {
				t.Errorf("%s: accounts do not balance: %+v", s.Name, s)
			}
		}
	})
}

func TestFrameIDs(t *testing.T) {
	for _, seq := range []int{0, 7, 599} {
		if got, ok := frameSeq(frameID(seq)); !ok || got != seq {
			t.Errorf("frameSeq(frameID(%d)) = %d, %v", seq, got, ok)
		}
	}
	for _, id := range []string{"", "frame-", "frame-x", "f1"} {
		if _, ok := frameSeq(id); ok {
			t.Errorf("frameSeq(%q) ok", id)
		}
	}
}

var _ persona.Observer = (*trace)(nil)
