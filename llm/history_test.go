package llm

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestBuildHistory(t *testing.T) {
	room := []ChatLine{
		{Author: "alice", Content: "hi all"},
		{Author: "Helper", Content: "hello alice"},
		{Author: "bob", Content: "   "},
		{Author: "Planner", Content: "shall we plan the release?"},
		{Author: "alice", Content: "yes, what first?"},
	}
	tests := []struct {
		name     string
		self     string
		msgs     []ChatLine
		maxMsgs  int
		maxChars int
		want     []Message
	}{
		{
			name: "own lines are assistant, others named users, blanks skipped",
			self: "helper", msgs: room,
			want: []Message{
				{RoleUser, "alice", "hi all"},
				{RoleAssistant, "Helper", "hello alice"},
				{RoleUser, "Planner", "shall we plan the release?"},
				{RoleUser, "alice", "yes, what first?"},
			},
		},
		{
			name: "message bound keeps the newest",
			self: "Helper", msgs: room, maxMsgs: 2,
			want: []Message{
				{RoleUser, "Planner", "shall we plan the release?"},
				{RoleUser, "alice", "yes, what first?"},
			},
		},
		{
			name: "char bound stops before the line that does not fit",
			self: "Helper", msgs: room, maxChars: len("shall we plan the release?") + len("yes, what first?") + 5,
			want: []Message{
				{RoleUser, "Planner", "shall we plan the release?"},
				{RoleUser, "alice", "yes, what first?"},
			},
		},
		{
			name: "newest line alone over the char bound is cut, not dropped",
			self: "Helper", msgs: []ChatLine{{Author: "alice", Content: "old"}, {Author: "bob", Content: "abcdefghij"}}, maxChars: 5,
			want: []Message{{RoleUser, "bob", "abcd…"}},
		},
		{
			name: "no self means everyone is a user",
			msgs: room[:2],
			want: []Message{{RoleUser, "alice", "hi all"}, {RoleUser, "Helper", "hello alice"}},
		},
		{
			name: "empty room gives empty history",
			self: "Helper",
			want: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := BuildHistory(tt.self, tt.msgs, tt.maxMsgs, tt.maxChars)
			if !slices.Equal(got, tt.want) {
				t.Errorf("BuildHistory:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestBuildHistoryDefaultsBoundLongRooms(t *testing.T) {
	var room []ChatLine
	for range 100 {
		room = append(room, ChatLine{Author: "alice", Content: strings.Repeat("x", 100)})
	}
	got := BuildHistory("Helper", room, 0, 0)
	if len(got) != DefaultMaxHistory {
		t.Errorf("len = %d, want DefaultMaxHistory %d", len(got), DefaultMaxHistory)
	}
	room = append(room, ChatLine{Author: "bob", Content: strings.Repeat("é", DefaultMaxHistoryChars-50)})
	got = BuildHistory("Helper", room, 0, 0)
	if len(got) != 1 || got[0].Name != "bob" {
		t.Errorf("got %d messages (first by %q), want only bob's: 6000-char bound counts runes", len(got), got[0].Name)
	}
}

func TestStableHistoryKeepsItsStartWhileItFits(t *testing.T) {
	var room []ChatLine
	add := func(i int) {
		room = append(room, ChatLine{Author: "ann", Content: fmt.Sprintf("line %d", i), ID: fmt.Sprint(i)})
	}
	for i := range 3 {
		add(i)
	}
	h, from := StableHistory("bot", room, 6, 0, "")
	if len(h) != 3 || from != "0" {
		t.Fatalf("first window: %d lines from %q, want all 3 from 0", len(h), from)
	}
	var prev Request
	var reuse []float64
	for i := 3; i < 20; i++ {
		add(i)
		var msgs []Message
		msgs, from = StableHistory("bot", room, 6, 0, from)
		if len(msgs) < 3 || len(msgs) > 6 {
			t.Fatalf("after line %d: %d lines kept, want 3..6", i, len(msgs))
		}
		if msgs[len(msgs)-1].Content != fmt.Sprintf("line %d", i) {
			t.Fatalf("after line %d: the newest line is missing", i)
		}
		req := Request{System: "you are bot", History: msgs}
		if i > 3 {
			reuse = append(reuse, SharedPrefix(prev, req))
		}
		prev = req
	}
	// Most calls reuse all but the newest line; the sliding window of
	// BuildHistory reuses only the system prompt once it is full.
	high := 0
	for _, r := range reuse {
		if r > 0.7 {
			high++
		}
	}
	if high < len(reuse)*2/3 {
		t.Fatalf("prefix reuse %v: want most calls above 0.7", reuse)
	}
	slid := SharedPrefix(Request{System: "you are bot", History: BuildHistory("bot", room[:19], 6, 0)}, Request{System: "you are bot", History: BuildHistory("bot", room, 6, 0)})
	if slid > 0.3 {
		t.Fatalf("a sliding window shares %.2f of its prompt: the comparison shows nothing", slid)
	}
}
