package cluster

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestClusterKeepsKAndTheRoomBudgetOfOneDaemon runs two, then three
// daemons, each with K=1, then K=2, and the default reply budget (6 persona messages a
// room-minute) and posts a question nobody is named in every 200 ms,
// alternating between them, to two rooms for 40 s. The rooms must get at
// most 6 replies a minute each, as from one daemon, and no message may
// have more than K responder slots taken. (At this load each daemon's own
// budget, which counts the peers' replies it reads in the room stream,
// keeps the limit too: it holds with the shared count switched off. The
// shared count is what holds when daemons reply at the same moment:
// TestRoomBudgetHoldsAcrossDaemons in package server.)
func TestClusterKeepsKAndTheRoomBudgetOfOneDaemon(t *testing.T) {
	for _, n := range []int{2, 3} {
		for _, k := range []int{1, 2} {
			t.Run(fmt.Sprintf("daemons=%d/K=%d", n, k), func(t *testing.T) { keepsKAndBudget(t, n, k) })
		}
	}
}

func keepsKAndBudget(t *testing.T, daemons, k int) {
	c := startCluster(t, 3)
	urls := c.URLs()
	kf := strconv.Itoa(k)
	var ds []*daemon
	for _, name := range []string{"a", "b", "c"}[:daemons] {
		ds = append(ds, startDaemon(t, name, urls, "--k", kf))
	}
	waitSpread(t, ds...)

	topics := []string{"deploy a docker image", "review this goroutine leak", "explain raft elections", "plan the release"}
	var ids []string
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for i := range 200 {
		<-tick.C
		id, err := ds[i%len(ds)].post(fmt.Sprintf("r%d", i%2), fmt.Sprintf("user%d", i%5),
			fmt.Sprintf("how do I %s, case %d?", topics[i%len(topics)], i))
		if err != nil {
			t.Fatalf("POST %d: %v", i, err)
		}
		ids = append(ids, id)
	}
	<-time.After(5 * time.Second) // the last replies

	msgs := readRooms(t, urls)
	times := map[string][]time.Time{}
	replies := 0
	for _, m := range msgs {
		if m.Kind == "persona" {
			replies++
			times[m.Room] = append(times[m.Room], m.At)
		}
	}
	if replies == 0 {
		t.Fatal("no persona answered anything")
	}
	for room, ts := range times {
		slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
		for i := range ts {
			n := 0
			for _, u := range ts[i:] {
				if u.Sub(ts[i]) < time.Minute {
					n++
				}
			}
			if n > 6 {
				t.Errorf("room %s: %d persona messages within a minute from %v, want at most the budget's 6", room, n, ts[i].Format(time.TimeOnly))
			}
		}
	}
	slots := slotHolders(t, urls)
	for _, id := range ids {
		if n := len(slots[id]); n > k {
			t.Errorf("message %s has %d responder slots taken, want at most K=%d: %v", id, n, k, slots[id])
		}
	}
	var per []string
	for room, ts := range times {
		per = append(per, fmt.Sprintf("%s: %d", room, len(ts)))
	}
	slices.Sort(per)
	t.Logf("200 questions over 40 s on %d daemons (K=%d): %d persona replies (%s), the budget's 6 a room-minute kept", daemons, k, replies, strings.Join(per, ", "))
}
