package deps

import (
	"errors"
	"slices"
	"testing"
)

func TestNewGraphRejects(t *testing.T) {
	tests := []struct {
		name    string
		nodes   []Node
		wantErr error
		wantMsg string
		path    []string // for a cycle: the *CycleError's Path
	}{
		{
			name:    "cycle named in flow order",
			nodes:   []Node{{Name: "a", Notifies: []string{"b"}}, {Name: "b", Notifies: []string{"c"}}, {Name: "c", Notifies: []string{"a"}}},
			wantErr: ErrCycle,
			wantMsg: "deps: cycle: a -> b -> c -> a",
			path:    []string{"a", "b", "c", "a"},
		},
		{
			name:    "cycle declared with waitsFor starts at first declared node",
			nodes:   []Node{{Name: "x"}, {Name: "c", WaitsFor: []string{"b"}}, {Name: "a", WaitsFor: []string{"c", "x"}}, {Name: "b", WaitsFor: []string{"a"}}},
			wantErr: ErrCycle,
			wantMsg: "deps: cycle: c -> a -> b -> c",
			path:    []string{"c", "a", "b", "c"},
		},
		{
			name: "cycle found behind a node downstream of it",
			nodes: []Node{
				{Name: "sink", WaitsFor: []string{"q"}},
				{Name: "p", WaitsFor: []string{"q"}},
				{Name: "q", WaitsFor: []string{"p"}},
			},
			wantErr: ErrCycle,
			wantMsg: "deps: cycle: p -> q -> p",
			path:    []string{"p", "q", "p"},
		},
		{
			name:    "unknown name in waitsFor names both",
			nodes:   []Node{{Name: "a"}, {Name: "b", WaitsFor: []string{"ghost"}}},
			wantErr: ErrUnknown,
			wantMsg: `deps: unknown name: node "b" waits for "ghost"`,
		},
		{
			name:    "unknown name in notifies names both",
			nodes:   []Node{{Name: "a", Notifies: []string{"ghost"}}},
			wantErr: ErrUnknown,
			wantMsg: `deps: unknown name: node "a" notifies "ghost"`,
		},
		{
			name:    "self-dependency",
			nodes:   []Node{{Name: "a", WaitsFor: []string{"a"}}},
			wantErr: ErrSelfDependency,
			wantMsg: `deps: self-dependency: node "a" waits for itself`,
		},
		{
			name:    "self-notification",
			nodes:   []Node{{Name: "a", Notifies: []string{"a"}}},
			wantErr: ErrSelfDependency,
			wantMsg: `deps: self-dependency: node "a" notifies itself`,
		},
		{
			name:    "duplicate name",
			nodes:   []Node{{Name: "a"}, {Name: "b"}, {Name: "a"}},
			wantErr: ErrDuplicate,
			wantMsg: `deps: duplicate name: "a" (nodes 0 and 2)`,
		},
		{
			name:    "empty name",
			nodes:   []Node{{Name: "a"}, {Name: ""}},
			wantErr: ErrEmptyName,
			wantMsg: "deps: empty name: node 1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := NewGraph(tt.nodes)
			if err == nil {
				t.Fatalf("NewGraph = %v, nil; want error %q", g, tt.wantMsg)
			}
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("error %v is not %v", err, tt.wantErr)
			}
			if err.Error() != tt.wantMsg {
				t.Errorf("error = %q, want %q", err, tt.wantMsg)
			}
			var ce *CycleError
			if isCycle := errors.As(err, &ce); isCycle != (tt.path != nil) {
				t.Fatalf("errors.As(%v, *CycleError) = %v, want %v", err, isCycle, tt.path != nil)
			}
			if ce != nil && !slices.Equal(ce.Path, tt.path) {
				t.Errorf("CycleError.Path = %q, want %q", ce.Path, tt.path)
			}
		})
	}
}

func mustGraph(t testing.TB, nodes ...Node) *Graph {
	t.Helper()
	g, err := NewGraph(nodes)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestGraphQueries(t *testing.T) {
	// Diamond, declared in a scrambled order and mixing both edge styles,
	// plus an isolated node and an edge declared twice.
	g := mustGraph(t,
		Node{Name: "d", WaitsFor: []string{"c", "b"}},
		Node{Name: "lone"},
		Node{Name: "b", WaitsFor: []string{"a"}, Notifies: []string{"d"}},
		Node{Name: "a", Notifies: []string{"c"}},
		Node{Name: "c"},
	)
	checkNames(t, "Prereqs(d)", g.Prereqs("d"), []string{"b", "c"})
	checkNames(t, "Prereqs(c)", g.Prereqs("c"), []string{"a"})
	checkNames(t, "Prereqs(a)", g.Prereqs("a"), nil)
	checkNames(t, "Prereqs(unknown)", g.Prereqs("zz"), nil)
	checkNames(t, "Dependents(a)", g.Dependents("a"), []string{"b", "c"})
	checkNames(t, "Dependents(d)", g.Dependents("d"), nil)
	checkNames(t, "Sources", g.Sources(), []string{"lone", "a"})
	checkNames(t, "Order", g.Order(), []string{"lone", "a", "b", "c", "d"})
	if !g.Has("lone") || g.Has("zz") {
		t.Errorf("Has(lone), Has(zz) = %v, %v; want true, false", g.Has("lone"), g.Has("zz"))
	}
	if g.Len() != 5 {
		t.Errorf("Len = %d, want 5", g.Len())
	}
}

func TestNotifiesIsSugarForWaitsFor(t *testing.T) {
	waits := mustGraph(t, Node{Name: "a"}, Node{Name: "b", WaitsFor: []string{"a"}}, Node{Name: "c", WaitsFor: []string{"b"}})
	notifies := mustGraph(t, Node{Name: "a", Notifies: []string{"b"}}, Node{Name: "b", Notifies: []string{"c"}}, Node{Name: "c"})
	for _, n := range []string{"a", "b", "c"} {
		checkNames(t, "Prereqs("+n+")", notifies.Prereqs(n), waits.Prereqs(n))
		checkNames(t, "Dependents("+n+")", notifies.Dependents(n), waits.Dependents(n))
	}
	checkNames(t, "Order", notifies.Order(), waits.Order())
}

func TestOrderIsTopological(t *testing.T) {
	g := mustGraph(t,
		Node{Name: "sem", WaitsFor: []string{"plane", "lines"}},
		Node{Name: "plane", WaitsFor: []string{"lines"}},
		Node{Name: "report", WaitsFor: []string{"sem", "depth"}},
		Node{Name: "depth"},
		Node{Name: "lines"},
	)
	order := g.Order()
	if len(order) != g.Len() {
		t.Fatalf("Order has %d names, want %d", len(order), g.Len())
	}
	for _, n := range order {
		for _, p := range g.Prereqs(n) {
			if slices.Index(order, p) > slices.Index(order, n) {
				t.Errorf("Order %v puts %s after its dependent %s", order, p, n)
			}
		}
	}
	checkNames(t, "Order", order, []string{"depth", "lines", "plane", "sem", "report"})
}

func TestZeroGraphIsEmpty(t *testing.T) {
	var g Graph
	if g.Has("a") || g.Len() != 0 || g.Order() != nil || g.Sources() != nil || g.Prereqs("a") != nil {
		t.Error("zero Graph is not empty")
	}
}

func checkNames(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}
