package llm

import (
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
			self: "Helper", msgs: []ChatLine{{"alice", "old"}, {"bob", "abcdefghij"}}, maxChars: 5,
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
