package server

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/personaos/persona"
)

// What a dashboard needs to open where it left off, kept in memory and
// lost at restart: each room's recent thoughts and decisions (the trail),
// each persona's recent samples (the chart), and the outcome counts of the
// persona cards.

const (
	// trailKeep and trailAge bound a room's trail: its last 200 thoughts
	// and decisions of the last hour, a few screens of a busy room.
	trailKeep = 200
	trailAge  = time.Hour
	// trailRooms bounds the rooms with a trail: a new room beyond it
	// forgets the rooms silent for trailAge, then the stalest.
	trailRooms = 256
	// sampleEvery and sampleKeep shape the chart's history: the
	// dashboard's 5-minute window, one point per 5 s.
	sampleEvery = 5 * time.Second
	sampleKeep  = 5 * time.Minute
)

// trail keeps, per room, the last trailKeep thought and decision events
// emitted within trailAge, oldest first. The zero value is ready; it is
// not safe for concurrent use (rooms locks it). Its methods take now, so
// its policy is tested with fixed times.
type trail struct {
	by map[string][]trailEvent
}

type trailEvent struct {
	at time.Time // when it was emitted
	ev Event
}

// keeps reports whether the trail keeps events of this type.
func (*trail) keeps(ev Event) bool { return ev.Type == "thought" || ev.Type == "decision" }

// add records ev, emitted at now, when it is a thought or a decision.
func (t *trail) add(now time.Time, ev Event) {
	if !t.keeps(ev) {
		return
	}
	if t.by == nil {
		t.by = make(map[string][]trailEvent)
	}
	evs, ok := t.by[ev.Room]
	if !ok && len(t.by) >= trailRooms {
		t.forget(now)
	}
	evs = append(evs, trailEvent{at: now, ev: ev})
	if n := len(evs) - trailKeep; n > 0 {
		clear(evs[:n]) // let the dropped events go before the array is reallocated
		evs = evs[n:]
	}
	t.by[ev.Room] = evs
}

// forget drops the trails of rooms silent for trailAge and, if every room
// spoke since, the stalest one, to make room for another.
func (t *trail) forget(now time.Time) {
	stalest, at := "", time.Time{}
	for room, evs := range t.by {
		last := evs[len(evs)-1].at
		if now.Sub(last) > trailAge {
			delete(t.by, room)
			continue
		}
		if stalest == "" || last.Before(at) {
			stalest, at = room, last
		}
	}
	if len(t.by) >= trailRooms {
		delete(t.by, stalest)
	}
}

// list returns the room's events emitted within trailAge before now,
// oldest first.
func (t *trail) list(room string, now time.Time) []Event {
	evs := t.by[room]
	i, _ := slices.BinarySearchFunc(evs, now.Add(-trailAge), func(e trailEvent, cut time.Time) int {
		return e.at.Compare(cut)
	})
	out := make([]Event, 0, len(evs)-i)
	for _, e := range evs[i:] {
		out = append(out, e.ev)
	}
	return out
}

// trailOf returns the room's trail at now (rooms.trail under the lock).
func (rs *rooms) trailOf(room string, now time.Time) []Event {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.trail.list(room, now)
}

// Trail returns the room's thoughts and decisions of the last hour, at
// most the last 200, oldest first. They are kept in memory: a restart
// forgets them.
func (d *Daemon) Trail(room string) []Event {
	if d.rooms == nil {
		return []Event{}
	}
	return d.rooms.trailOf(room, time.Now())
}

// samples keeps each persona's samples of the last sampleKeep, one per
// sampleEvery, oldest first. The zero value is ready; it is safe for
// concurrent use. Its methods take now.
type samples struct {
	mu   sync.Mutex
	last time.Time
	by   map[string][]Sample
}

// record takes a sample of each persona from snapshot at now, if one is
// due, and forgets those older than sampleKeep. A tick up to a tenth of
// sampleEvery early still counts: the caller's ticker does not tick
// exactly on the sample's time.
func (s *samples) record(now time.Time, snapshot func() []persona.Snapshot) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.last.IsZero() && now.Sub(s.last) < sampleEvery-sampleEvery/10 {
		return
	}
	s.last = now
	if s.by == nil {
		s.by = make(map[string][]Sample)
	}
	cut := now.Add(-sampleKeep)
	for _, snap := range snapshot() {
		h := s.by[snap.Name]
		i := 0
		for i < len(h) && h[i].At.Before(cut) {
			i++
		}
		h = append(h[i:], Sample{At: now, Energy: snap.Energy, Attention: snap.Attention,
			Queued: snap.Counts.Queued, InFlight: snap.Counts.InFlight})
		s.by[snap.Name] = h
	}
}

// of returns the persona's samples taken within sampleKeep before now,
// oldest first.
func (s *samples) of(name string, now time.Time) []Sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	cut := now.Add(-sampleKeep)
	var out []Sample
	for _, smp := range s.by[name] {
		if !smp.At.Before(cut) {
			out = append(out, smp)
		}
	}
	return out
}

// sample records each persona's sample when one is due; the governor's
// sampler calls it on every tick, so no goroutine of its own ticks.
func (d *Daemon) sample(now time.Time) {
	d.history.record(now, func() []persona.Snapshot {
		out := make([]persona.Snapshot, 0, len(d.members))
		for _, m := range d.members {
			out = append(out, m.p.Snapshot())
		}
		return out
	})
}

// Samples returns the persona's samples of the last 5 minutes, one per
// 5 s, oldest first; nil for an unknown persona or before the first.
func (d *Daemon) Samples(name string) []Sample {
	m, ok := d.byName[strings.ToLower(name)]
	if !ok {
		return nil
	}
	return d.history.of(m.spec.Name, time.Now())
}

// tally counts a persona's messages by the note of their account
// ("replied", "reply budget", ...). The zero value is ready; it is safe
// for concurrent use.
type tally struct {
	mu sync.Mutex
	n  map[[2]string]uint64 // lower-case persona name, note
}

func (t *tally) add(persona, note string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.n == nil {
		t.n = make(map[[2]string]uint64)
	}
	t.n[[2]string{strings.ToLower(persona), note}]++
}

func (t *tally) get(persona, note string) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.n[[2]string{strings.ToLower(persona), note}]
}

// outcomes is what became of the messages of the persona whose snapshot
// is s: the replies it posted (noted "replied"), the messages left to a
// peer (not granted here, or a responder slot another daemon's persona
// claimed first), those the room's reply budget held back, and the
// runtime's own counts of the rest.
func (d *Daemon) outcomes(name string, s persona.Snapshot) Outcomes {
	return Outcomes{
		Answered:   d.tally.get(name, noteReplied),
		LeftToPeer: s.NotGranted + d.tally.get(name, noteTaken),
		HeldBack:   d.tally.get(name, noteBudget),
		Declined:   s.Counts.Declined,
		Deferred:   s.Counts.Deferrals,
		Expired:    s.Counts.Expired,
		Failed:     s.Counts.Failed,
	}
}
