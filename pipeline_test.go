package persona_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/personaos/persona"
	"github.com/personaos/persona/deps"
)

// trace is the shared log of a pipeline test: a sequence number for every
// stage's start and end on every item.
type trace struct {
	mu    sync.Mutex
	seq   int
	start map[string]int // "stage/item"
	done  map[string]int
	seen  map[string][]persona.Item[string] // stage -> items it was handed
}

func newTrace() *trace {
	return &trace{start: map[string]int{}, done: map[string]int{}, seen: map[string][]persona.Item[string]{}}
}

func (tr *trace) mark(m map[string]int, stage, id string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.seq++
	m[stage+"/"+id] = tr.seq
}

func (tr *trace) items(stage string) []persona.Item[string] {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return slices.Clone(tr.seen[stage])
}

// after checks that, for every item dep was handed, pre had finished it
// before dep started.
func (tr *trace) after(t *testing.T, dep, pre string) {
	t.Helper()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for _, it := range tr.seen[dep] {
		if it.Status != deps.Done {
			continue // released without pre
		}
		d, ok := tr.done[pre+"/"+it.ID]
		if s := tr.start[dep+"/"+it.ID]; !ok || d > s {
			t.Errorf("%s started %s (seq %d) before %s finished it (seq %d, %v)", dep, it.ID, s, pre, d, ok)
		}
	}
}

// stage is a pipeline stage: its output is its name applied to its inputs'
// outputs, so the chain of outputs shows what was passed along.
type stage struct {
	name    string
	tr      *trace
	block   map[string]chan struct{} // items to stall on
	decline map[string]bool
}

func (s *stage) Handle(ctx context.Context, it persona.Item[string]) (any, error) {
	s.tr.mark(s.tr.start, s.name, it.ID)
	s.tr.mu.Lock()
	s.tr.seen[s.name] = append(s.tr.seen[s.name], it)
	s.tr.mu.Unlock()
	if ch := s.block[it.ID]; ch != nil {
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if s.decline[it.ID] {
		return nil, persona.ErrDecline
	}
	in := []string{}
	for _, u := range it.Upstream {
		in = append(in, fmt.Sprint(u.Value))
	}
	if len(it.Upstream) == 0 && it.Status == deps.Done {
		in = append(in, it.Payload)
	}
	s.tr.mark(s.tr.done, s.name, it.ID)
	return s.name + "(" + strings.Join(in, ",") + ")", nil
}

func spawnStage(t *testing.T, rt *persona.Runtime, tr *trace, name string, o persona.Options) (*persona.Persona[string], *stage) {
	t.Helper()
	s := &stage{name: name, tr: tr, block: map[string]chan struct{}{}, decline: map[string]bool{}}
	return mustSpawn(t, rt, name, s, o), s
}

func frame(id string) persona.Item[string] {
	return persona.Item[string]{ID: id, Key: "camera-1", Priority: 0.5, Payload: id}
}

// cvPipeline is the seed's mobile CV pipeline: line finder -> plane
// segmenter -> semantic segmentation, declared from both ends.
func cvPipeline(t *testing.T, rt *persona.Runtime, tr *trace) (lines, planes, semantic *persona.Persona[string], linesStage *stage) {
	lines, linesStage = spawnStage(t, rt, tr, "lines", persona.Options{Notifies: []string{"planes"}})
	planes, _ = spawnStage(t, rt, tr, "planes", persona.Options{})
	semantic, _ = spawnStage(t, rt, tr, "semantic", persona.Options{WaitsFor: []string{"planes"}})
	return lines, planes, semantic, linesStage
}

func TestPipelineThreeStages(t *testing.T) {
	t.Run("each stage sees an item only after the one before finished it, with its output", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			rt := persona.NewRuntime(persona.RuntimeOptions{Logger: quiet})
			tr := newTrace()
			lines, planes, semantic, _ := cvPipeline(t, rt, tr)
			if err := lines.Deliver(frame("f0")); err != nil { // before Start: enters at Start
				t.Fatal(err)
			}
			if err := rt.Start(); err != nil {
				t.Fatal(err)
			}
			for i := 1; i < 6; i++ {
				if err := lines.Deliver(frame(fmt.Sprint("f", i))); err != nil {
					t.Fatal(err)
				}
				time.Sleep(time.Second)
			}
			time.Sleep(time.Minute)
			synctest.Wait()
			got := tr.items("semantic")
			if len(got) != 6 {
				t.Fatalf("semantic saw %d frames, want 6", len(got))
			}
			for _, it := range got {
				want := []deps.Output{{From: "planes", Status: deps.Done, Value: "planes(lines(" + it.ID + "))"}}
				if it.Status != deps.Done || !slices.Equal(it.Upstream, want) || it.Payload != it.ID || it.Key != "camera-1" {
					t.Errorf("semantic got %s with status %v upstream %v", it.ID, it.Status, it.Upstream)
				}
			}
			tr.after(t, "planes", "lines")
			tr.after(t, "semantic", "planes")
			for _, p := range []*persona.Persona[string]{planes, semantic} {
				s := p.Snapshot()
				if s.Wakes.Dependency == 0 || s.Wakes.Demand != 0 || s.Counts.Handled != 6 || !s.Counts.Balanced() {
					t.Errorf("%s: wakes %+v counts %+v; want only dependency triggers and 6 handled", p.Name(), s.Wakes, s.Counts)
				}
			}
			if err := planes.Deliver(frame("direct")); !errors.Is(err, persona.ErrNotSource) {
				t.Errorf("direct delivery to a dependent: %v, want ErrNotSource", err)
			}
			if err := semantic.Deliver(frame("direct")); !errors.Is(err, persona.ErrNotSource) {
				t.Errorf("direct delivery to a dependent: %v, want ErrNotSource", err)
			}
			shutdown(t, rt)
		})
	})

	t.Run("a stalled stage releases the rest after the timeout, incomplete", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			const timeout = 5 * time.Second
			rt := persona.NewRuntime(persona.RuntimeOptions{Logger: quiet, DependencyTimeout: timeout})
			tr := newTrace()
			lines, _, _, ls := cvPipeline(t, rt, tr)
			stall := make(chan struct{})
			ls.block["f1"] = stall
			rt.Start()
			t0 := time.Now()
			lines.Deliver(frame("f1"))
			time.Sleep(timeout - time.Nanosecond)
			synctest.Wait()
			if got := tr.items("planes"); len(got) != 0 {
				t.Fatalf("planes got %v before the timeout", got)
			}
			time.Sleep(time.Nanosecond)
			synctest.Wait()
			planes, semantic := tr.items("planes"), tr.items("semantic")
			if len(planes) != 1 || planes[0].Status != deps.Incomplete || len(planes[0].Upstream) != 0 || planes[0].Payload != "f1" {
				t.Fatalf("at the timeout planes got %+v, want f1 incomplete without inputs", planes)
			}
			if tr.start["planes/f1"] == 0 || time.Since(t0) != timeout {
				t.Fatal("planes did not start at the timeout")
			}
			want := []deps.Output{{From: "planes", Status: deps.Incomplete, Value: "planes()"}}
			if len(semantic) != 1 || semantic[0].Status != deps.Incomplete || !slices.Equal(semantic[0].Upstream, want) {
				t.Fatalf("semantic got %+v, want f1 incomplete with planes' output", semantic)
			}
			// The line finder recovers: its late result is ignored, and the
			// next frame flows normally.
			close(stall)
			lines.Deliver(frame("f2"))
			time.Sleep(time.Minute)
			synctest.Wait()
			if got := tr.items("semantic"); len(got) != 2 || got[1].ID != "f2" || got[1].Status != deps.Done {
				t.Fatalf("after recovery semantic saw %+v", got)
			}
			shutdown(t, rt)
		})
	})

	t.Run("a declined item reaches the rest skipped", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			rt := persona.NewRuntime(persona.RuntimeOptions{Logger: quiet})
			tr := newTrace()
			lines, _, _, ls := cvPipeline(t, rt, tr)
			ls.decline["blurred"] = true
			rt.Start()
			lines.Deliver(frame("blurred"))
			synctest.Wait()
			p, s := tr.items("planes"), tr.items("semantic")
			if len(p) != 1 || p[0].Status != deps.Skipped || !slices.Equal(p[0].Upstream, []deps.Output{{From: "lines", Status: deps.Skipped}}) {
				t.Fatalf("planes got %+v", p)
			}
			if len(s) != 1 || s[0].Status != deps.Skipped {
				t.Fatalf("semantic got %+v", s)
			}
			shutdown(t, rt)
		})
	})
}

func TestPipelineDiamondRunsJoinOncePerItem(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The source takes ten frames a slice and then rests: give the
		// frames waiting for its next slice time enough not to time out.
		rt := persona.NewRuntime(persona.RuntimeOptions{Logger: quiet, DependencyTimeout: time.Minute})
		tr := newTrace()
		a, _ := spawnStage(t, rt, tr, "a", persona.Options{Notifies: []string{"b", "c"}})
		spawnStage(t, rt, tr, "b", persona.Options{})
		spawnStage(t, rt, tr, "c", persona.Options{})
		spawnStage(t, rt, tr, "d", persona.Options{WaitsFor: []string{"c", "b"}})
		if err := rt.Start(); err != nil {
			t.Fatal(err)
		}
		const n = 20
		for i := range n {
			a.Deliver(frame(fmt.Sprint("f", i)))
		}
		time.Sleep(5 * time.Minute)
		synctest.Wait()
		runs := map[string]int{}
		for _, it := range tr.items("d") {
			runs[it.ID]++
			want := []deps.Output{
				{From: "b", Status: deps.Done, Value: "b(a(" + it.ID + "))"},
				{From: "c", Status: deps.Done, Value: "c(a(" + it.ID + "))"},
			}
			if it.Status != deps.Done || !slices.Equal(it.Upstream, want) {
				t.Errorf("d got %s with %v %v", it.ID, it.Status, it.Upstream)
			}
		}
		if len(runs) != n {
			t.Fatalf("d ran on %d items, want %d", len(runs), n)
		}
		for id, k := range runs {
			if k != 1 {
				t.Errorf("d ran %d times on %s", k, id)
			}
		}
		for _, e := range [][2]string{{"b", "a"}, {"c", "a"}, {"d", "b"}, {"d", "c"}} {
			tr.after(t, e[0], e[1])
		}
		shutdown(t, rt)
	})
}

func TestStartRejectsBadGraphs(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, rt *persona.Runtime)
		is    error
		msg   string
	}{
		{"a cycle is named", func(t *testing.T, rt *persona.Runtime) {
			mustSpawn(t, rt, "a", newRecorder(0), persona.Options{WaitsFor: []string{"c"}})
			mustSpawn(t, rt, "b", newRecorder(0), persona.Options{WaitsFor: []string{"a"}})
			mustSpawn(t, rt, "c", newRecorder(0), persona.Options{Notifies: []string{"a"}, WaitsFor: []string{"b"}})
		}, deps.ErrCycle, "a -> b -> c -> a"},
		{"an unknown name is named", func(t *testing.T, rt *persona.Runtime) {
			mustSpawn(t, rt, "a", newRecorder(0), persona.Options{Notifies: []string{"ghost"}})
		}, deps.ErrUnknown, `"a" notifies "ghost"`},
		{"mixed payload types are refused", func(t *testing.T, rt *persona.Runtime) {
			mustSpawn(t, rt, "frames", newRecorder(0), persona.Options{Notifies: []string{"counts"}})
			if _, err := persona.Spawn(rt, "counts", persona.HandlerFunc[int](func(context.Context, persona.Item[int]) (any, error) {
				return nil, nil
			}), persona.Options{}); err != nil {
				t.Fatal(err)
			}
		}, nil, `"frames" carries string but "counts" carries int`},
		{"items delivered to a dependent are refused", func(t *testing.T, rt *persona.Runtime) {
			mustSpawn(t, rt, "a", newRecorder(0), persona.Options{Notifies: []string{"b"}})
			b := mustSpawn(t, rt, "b", newRecorder(0), persona.Options{})
			if err := b.Deliver(frame("x")); err != nil {
				t.Fatal(err) // before Start b does not know it is a dependent
			}
		}, persona.ErrNotSource, "persona b waits for [a]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rt := persona.NewRuntime(persona.RuntimeOptions{Logger: quiet})
				tc.setup(t, rt)
				err := rt.Start()
				if err == nil || (tc.is != nil && !errors.Is(err, tc.is)) || !strings.Contains(err.Error(), tc.msg) {
					t.Fatalf("Start: %v; want an error naming %s", err, tc.msg)
				}
				synctest.Wait()
				for _, s := range rt.Snapshots() {
					if w := s.Wakes; w.Demand+w.Dependency+w.Scan != 0 || s.Counts.Handled != 0 {
						t.Errorf("%s started after a failed Start: %+v", s.Name, s)
					}
				}
				shutdown(t, rt)
			})
		})
	}
}

func TestPipelinesOfDifferentPayloadsShareARuntime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := persona.NewRuntime(persona.RuntimeOptions{Logger: quiet})
		tr := newTrace()
		a, _ := spawnStage(t, rt, tr, "a", persona.Options{Notifies: []string{"b"}})
		spawnStage(t, rt, tr, "b", persona.Options{})
		var got []persona.Item[int]
		n, _ := persona.Spawn(rt, "n", persona.HandlerFunc[int](func(context.Context, persona.Item[int]) (any, error) {
			return 42, nil
		}), persona.Options{})
		persona.Spawn(rt, "m", persona.HandlerFunc[int](func(_ context.Context, it persona.Item[int]) (any, error) {
			got = append(got, it)
			return nil, nil
		}), persona.Options{WaitsFor: []string{"n"}})
		if err := rt.Start(); err != nil {
			t.Fatal(err)
		}
		a.Deliver(frame("f"))
		n.Deliver(persona.Item[int]{ID: "i", Priority: 0.5, Payload: 7})
		synctest.Wait()
		if len(tr.items("b")) != 1 || len(got) != 1 || got[0].Payload != 7 || got[0].Upstream[0].Value != 42 {
			t.Fatalf("b saw %v, m saw %+v", tr.items("b"), got)
		}
		shutdown(t, rt)
	})
}

func TestShutdownWithItemsInFlightThroughAPipeline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := persona.NewRuntime(persona.RuntimeOptions{Logger: quiet})
		tr := newTrace()
		lines, _, _, ls := cvPipeline(t, rt, tr)
		ls.block["f1"] = make(chan struct{}) // never closed: only shutdown ends it
		rt.Start()
		for i := range 4 {
			lines.Deliver(persona.Item[string]{ID: fmt.Sprint("f", i), Priority: 0.9 - 0.01*float64(i), Payload: "x"})
		}
		time.Sleep(time.Second) // f0 is through, f1 stalls, f2 and f3 wait
		synctest.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		rep, err := rt.Shutdown(ctx)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("shutdown: %v", err)
		}
		// f1's handler was cancelled by the shutdown: left over, not failed.
		if l := rep.Leftovers[0]; !slices.Equal(l.Queued, []string{"f1", "f2", "f3"}) || l.Counts.Failed != 0 || !l.Counts.Balanced() {
			t.Fatalf("lines left %+v", l)
		}
		if got := tr.items("semantic"); len(got) != 1 || got[0].ID != "f0" {
			t.Fatalf("semantic saw %v", got)
		}
		// Past shutdown no timer releases anything.
		time.Sleep(time.Hour)
		synctest.Wait()
		if got := tr.items("planes"); len(got) != 1 {
			t.Fatalf("planes got items after shutdown: %v", got)
		}
	})
}
