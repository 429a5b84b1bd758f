package sim

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/personaos/persona/chat"
)

// Scripted traffic (Traffic.Script): the given messages instead of random
// arrivals, decoded as the daemon's intake decodes a room message, and the
// replies the personas post (Options.OnReply), so that a conversation can
// be replayed and the same script fed to the daemon and to the simulator.

// Reply is one reply a persona posted, as Options.OnReply reports it.
// Messages are named by Label: "#3" is the fourth message of the script,
// "ava>#3" ava's reply to it (delivered back with RepliesFeedBack), and
// "m17" the message with item ID m17 of random traffic.
type Reply struct {
	At      time.Duration // virtual time since the start: when the reply was posted
	Persona string
	Room    string   // the room's script name ("room0"... without a script)
	To      string   // the message it answers: the trigger of the persona's item
	Covers  []string // the older messages merged into the item, oldest first
}

// scripted is a script message resolved against the run.
type scripted struct {
	At                    time.Duration
	room, author, mention int32 // author and mention: -1 for a human, none
	topics                uint64
	src                   int32 // its index in Traffic.Script
}

// scriptRooms are the script's room names in order of first appearance.
func scriptRooms(script []ScriptMessage) []string {
	var rooms []string
	for _, m := range script {
		if !slices.Contains(rooms, m.Room) {
			rooms = append(rooms, m.Room)
		}
	}
	return rooms
}

// initScript resolves Traffic.Script: rooms (the first rooms are the
// script's, named as it names them), authors, the one persona a message
// @mentions (its author aside, as the daemon's decode), and topics: every
// expertise word of the scenario and every traffic topic is a topic word,
// set on a message whose text contains it as a word (chat.MatchesExpertise,
// the daemon's own test), so that the simulator's expertise test on topics
// gives the daemon's on the text.
func (r *run) initScript() {
	sc := &r.sc
	if len(sc.Traffic.Script) == 0 {
		return
	}
	for _, ps := range sc.Personas {
		for _, w := range ps.Expertise {
			if !slices.Contains(r.topicWords, w) && len(r.topicWords) < maxTopics {
				r.topicWords = append(r.topicWords, w)
			}
		}
	}
	rooms := scriptRooms(sc.Traffic.Script)
	copy(r.roomKeys, rooms)
	actor := func(name string) int32 {
		for _, a := range r.actors {
			if strings.EqualFold(a.name, name) {
				return a.idx
			}
		}
		return -1
	}
	for i, m := range sc.Traffic.Script {
		s := scripted{At: m.At, room: int32(slices.Index(rooms, m.Room)), author: actor(m.Author), mention: -1, src: int32(i)}
		for _, n := range chat.Mentions(m.Text) {
			if p := actor(n); p >= 0 && p != s.author {
				s.mention = p
				break
			}
		}
		for i, w := range r.topicWords {
			if chat.MatchesExpertise(m.Text, []string{w}) {
				s.topics |= 1 << i
			}
		}
		r.script = append(r.script, s)
	}
	// Equal times keep the script's order (the event queue is first in,
	// first out at equal times).
	slices.SortStableFunc(r.script, func(a, b scripted) int { return cmp.Compare(a.At, b.At) })
}

// arriveScripted posts script message i (in time order).
func (r *run) arriveScripted(i int32) {
	s := &r.script[i]
	if s.author >= 0 {
		// Another runtime's persona wrote it, as a random persona message.
		r.budget.Saw(s.room, r.t(r.now))
	}
	r.posting = s.src
	r.post(s.room, s.author, s.mention, 0, s.topics)
	r.posting = -1
}

// label names message mi for Options.OnReply (Reply).
func (r *run) label(mi int32) string {
	m := &r.msgs[mi]
	switch {
	case m.src >= 0:
		return "#" + strconv.Itoa(int(m.src))
	case m.replyTo >= 0 && m.author >= 0:
		return r.actors[m.author].name + ">" + r.label(m.replyTo)
	}
	return m.id
}

// reportReply tells Options.OnReply of persona p's reply to mi, which
// covers the merged messages covers.
func (r *run) reportReply(p, mi int32, covers []int32) {
	f := r.opts.OnReply
	if f == nil {
		return
	}
	rep := Reply{At: time.Duration(r.now), Persona: r.actors[p].name, Room: r.roomKeys[r.msgs[mi].room], To: r.label(mi)}
	for _, c := range covers {
		rep.Covers = append(rep.Covers, r.label(c))
	}
	f(rep)
}
