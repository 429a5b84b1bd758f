package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// roomBudgets is the rooms' reply budget counted for the whole cluster:
// one key budget.<room> in the replies bucket holds the times of the
// room's last replies, and a reply is taken by a compare-and-set that adds
// its time while fewer than budget fall within the window. N daemons
// sharing a cluster keep the limit of one. The daemon's own budget
// (chat.Budget: the per-persona pacing, the owed replies' wait) is
// checked first; this one only says whether the room has room.
type roomBudgets struct {
	kv     jetstream.KeyValue
	budget int
	window time.Duration
}

// budgetAttempts bounds the compare-and-set retries of one take: each
// conflict is another daemon's reply in the same room at the same moment.
const budgetAttempts = 16

func budgetKey(room string) string { return "budget." + room }

// take takes one reply of room's budget at now. With over (a reply owed
// to a person that has waited its pacing interval) it is taken even when
// the budget is spent, and still counted. It returns a func that gives it
// back (the reply was not sent), or, when refused, when the budget has
// room again. A bus error is returned as a transient error.
func (b *roomBudgets) take(ctx context.Context, room string, now time.Time, over bool) (give func(), ok bool, next time.Time, _ error) {
	key := budgetKey(room)
	for range budgetAttempts {
		times, rev, err := b.read(ctx, key)
		if err != nil {
			return nil, false, time.Time{}, transient(fmt.Errorf("room budget %s: %w", room, err))
		}
		times = slices.DeleteFunc(times, func(t int64) bool { return time.Unix(0, t).Add(b.window).Before(now) })
		if len(times) >= b.budget && !over {
			slices.Sort(times)
			return nil, false, time.Unix(0, times[len(times)-b.budget]).Add(b.window), nil
		}
		at := now.UnixNano()
		times = append(times, at)
		if len(times) > 4*b.budget { // owed replies over the budget: the newest count
			slices.Sort(times)
			times = times[len(times)-4*b.budget:]
		}
		if err := b.write(ctx, key, times, rev); err != nil {
			if conflict(err) {
				continue
			}
			return nil, false, time.Time{}, transient(fmt.Errorf("room budget %s: %w", room, err))
		}
		return func() { b.give(key, at) }, true, time.Time{}, nil
	}
	return nil, false, time.Time{}, transient(fmt.Errorf("room budget %s: %d conflicting updates in a row", room, budgetAttempts))
}

// give takes a reply's time out of the key, best effort: a reply not given
// back only costs the room one reply of its window.
func (b *roomBudgets) give(key string, at int64) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for range budgetAttempts {
		times, rev, err := b.read(ctx, key)
		if err != nil {
			return
		}
		i := slices.Index(times, at)
		if i < 0 {
			return
		}
		if err := b.write(ctx, key, slices.Delete(times, i, i+1), rev); err == nil || !conflict(err) {
			return
		}
	}
}

// read returns the times stored under key and its revision (0: none).
func (b *roomBudgets) read(ctx context.Context, key string) ([]int64, uint64, error) {
	e, err := b.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	var times []int64
	if err := json.Unmarshal(e.Value(), &times); err != nil {
		return nil, e.Revision(), nil // unreadable: start afresh
	}
	return times, e.Revision(), nil
}

// write stores times under key if it is still at revision rev.
func (b *roomBudgets) write(ctx context.Context, key string, times []int64, rev uint64) error {
	data, _ := json.Marshal(times)
	var err error
	if rev == 0 {
		_, err = b.kv.Create(ctx, key, data)
	} else {
		_, err = b.kv.Update(ctx, key, data, rev)
	}
	return err
}

// conflict reports whether a compare-and-set lost to another writer.
func conflict(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, jetstream.ErrKeyExists) ||
		(errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant))
}
