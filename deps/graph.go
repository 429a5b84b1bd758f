package deps

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Errors returned by NewGraph, wrapped with the names involved. Test for them
// with errors.Is; a cycle is also a *CycleError, whose Path says which nodes
// form it (errors.As), so callers never need to parse the message.
var (
	ErrEmptyName      = errors.New("empty name")
	ErrDuplicate      = errors.New("duplicate name")
	ErrUnknown        = errors.New("unknown name")
	ErrSelfDependency = errors.New("self-dependency")
	ErrCycle          = errors.New("cycle")
)

// CycleError is NewGraph's error for a cycle. Path is the cycle in the
// direction work flows (each node is a prerequisite of the next), closed (its
// first name repeated last) and starting at the cycle's earliest-declared
// node, so it is the same for the same declaration. It matches ErrCycle with
// errors.Is.
type CycleError struct {
	Path []string
}

// Error spells the cycle out: "deps: cycle: a -> b -> a".
func (e *CycleError) Error() string {
	return "deps: " + ErrCycle.Error() + ": " + strings.Join(e.Path, " -> ")
}

// Is makes errors.Is(err, ErrCycle) true for a *CycleError.
func (e *CycleError) Is(target error) bool { return target == ErrCycle }

// Node declares one persona's place in the graph (seed: "Process Dependency
// Graph", waitingFor / notify).
//
// WaitsFor names the personas whose output this one needs. Notifies is sugar
// for the reverse edge: "x notifies y" means exactly "y waits for x", so a
// pipeline can be declared from either end. Declaring the same edge both ways
// is allowed and counts once.
type Node struct {
	Name     string
	WaitsFor []string
	Notifies []string
}

// Graph is a validated, immutable dependency graph: names are unique, every
// edge names a declared node, and there is no cycle. Build it with NewGraph.
//
// Wherever a Graph returns several names they are in declaration order (the
// order of the nodes passed to NewGraph), so results are deterministic.
//
// The zero value is an empty graph. A Graph is safe for concurrent use.
type Graph struct {
	names      []string
	index      map[string]int
	prereqs    [][]int // by node, ascending declaration index
	dependents [][]int // by node, ascending declaration index
	order      []int   // topological, ties broken by declaration index
	sources    []int
}

// NewGraph validates nodes and builds the graph. It returns the first problem
// found, checking in this order: empty or duplicate names, edges to unknown
// names (the error names both the node and the unknown name), a node that
// waits for or notifies itself, and cycles (a *CycleError, which spells the
// cycle out in the direction work flows, e.g. "deps: cycle: a -> b -> c -> a").
func NewGraph(nodes []Node) (*Graph, error) {
	g := &Graph{index: make(map[string]int, len(nodes))}
	for i, n := range nodes {
		if n.Name == "" {
			return nil, fmt.Errorf("deps: %w: node %d", ErrEmptyName, i)
		}
		if j, dup := g.index[n.Name]; dup {
			return nil, fmt.Errorf("deps: %w: %q (nodes %d and %d)", ErrDuplicate, n.Name, j, i)
		}
		g.index[n.Name] = i
		g.names = append(g.names, n.Name)
	}

	type edge struct{ from, to int } // from is the prerequisite
	edges := make(map[edge]struct{})
	add := func(node, verb string, from, to int) error {
		if from == to {
			return fmt.Errorf("deps: %w: node %q %s itself", ErrSelfDependency, node, verb)
		}
		edges[edge{from, to}] = struct{}{}
		return nil
	}
	for i, n := range nodes {
		for _, w := range n.WaitsFor {
			j, ok := g.index[w]
			if !ok {
				return nil, fmt.Errorf("deps: %w: node %q waits for %q", ErrUnknown, n.Name, w)
			}
			if err := add(n.Name, "waits for", j, i); err != nil {
				return nil, err
			}
		}
		for _, y := range n.Notifies {
			j, ok := g.index[y]
			if !ok {
				return nil, fmt.Errorf("deps: %w: node %q notifies %q", ErrUnknown, n.Name, y)
			}
			if err := add(n.Name, "notifies", i, j); err != nil {
				return nil, err
			}
		}
	}

	g.prereqs = make([][]int, len(nodes))
	g.dependents = make([][]int, len(nodes))
	for e := range edges {
		g.prereqs[e.to] = append(g.prereqs[e.to], e.from)
		g.dependents[e.from] = append(g.dependents[e.from], e.to)
	}
	for i := range nodes {
		slices.Sort(g.prereqs[i])
		slices.Sort(g.dependents[i])
		if len(g.prereqs[i]) == 0 {
			g.sources = append(g.sources, i)
		}
	}

	if err := g.sort(); err != nil {
		return nil, err
	}
	return g, nil
}

// sort fills g.order with Kahn's algorithm, always taking the ready node that
// was declared first, so the order is a pure function of the declaration.
// Graphs are persona-sized (tens of nodes), so the sorted ready list is fine.
func (g *Graph) sort() error {
	indeg := make([]int, len(g.names))
	for i, p := range g.prereqs {
		indeg[i] = len(p)
	}
	ready := slices.Clone(g.sources)
	g.order = make([]int, 0, len(g.names))
	for len(ready) > 0 {
		n := ready[0]
		ready = ready[1:]
		g.order = append(g.order, n)
		for _, d := range g.dependents[n] {
			indeg[d]--
			if indeg[d] == 0 {
				pos, _ := slices.BinarySearch(ready, d)
				ready = slices.Insert(ready, pos, d)
			}
		}
	}
	if len(g.order) == len(g.names) {
		return nil
	}
	return &CycleError{Path: g.cycle(indeg)}
}

// cycle returns one cycle among the nodes Kahn's algorithm could not order
// (indeg > 0), as names in flow direction, closed (first name repeated last),
// starting at its earliest-declared node. Every unordered node has an
// unordered prerequisite, so walking prerequisites backwards from any of them
// must revisit a node; the revisited stretch is a cycle.
func (g *Graph) cycle(indeg []int) []string {
	start := slices.IndexFunc(indeg, func(d int) bool { return d > 0 })
	seen := map[int]int{start: 0}
	path := []int{start}
	for cur := start; ; {
		next := -1
		for _, p := range g.prereqs[cur] {
			if indeg[p] > 0 {
				next = p
				break
			}
		}
		if at, ok := seen[next]; ok {
			path = path[at:]
			break
		}
		seen[next] = len(path)
		path = append(path, next)
		cur = next
	}
	slices.Reverse(path) // walked against the flow
	m := slices.Index(path, slices.Min(path))
	path = append(path[m:], path[:m]...)
	names := make([]string, 0, len(path)+1)
	for _, n := range path {
		names = append(names, g.names[n])
	}
	return append(names, names[0])
}

// Has reports whether name is a node of the graph.
func (g *Graph) Has(name string) bool {
	_, ok := g.index[name]
	return ok
}

// Prereqs returns the nodes name waits for, directly (both its own WaitsFor
// and every node that notifies it), or nil if it has none or is unknown.
func (g *Graph) Prereqs(name string) []string {
	i, ok := g.index[name]
	if !ok {
		return nil
	}
	return g.namesOf(g.prereqs[i])
}

// Dependents returns the nodes that wait for name directly, or nil if none
// or unknown.
func (g *Graph) Dependents(name string) []string {
	i, ok := g.index[name]
	if !ok {
		return nil
	}
	return g.namesOf(g.dependents[i])
}

// Sources returns the nodes that wait for nobody: the entry points of a key.
func (g *Graph) Sources() []string { return g.namesOf(g.sources) }

// Order returns every node in a topological order (each node after all its
// prerequisites), breaking ties by declaration order, so it is deterministic.
func (g *Graph) Order() []string { return g.namesOf(g.order) }

// Len returns the number of nodes.
func (g *Graph) Len() int { return len(g.names) }

func (g *Graph) namesOf(idx []int) []string {
	if len(idx) == 0 {
		return nil
	}
	out := make([]string, len(idx))
	for k, i := range idx {
		out[k] = g.names[i]
	}
	return out
}
