package persona

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"

	"github.com/personaos/persona/deps"
)

// held reports how many items the runtime's pipelines hold and how many
// keys their trackers keep open.
func (rt *Runtime) held() (items, keys int) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	for _, pp := range rt.pipes {
		p := pp.(*pipeline[int])
		p.mu.Lock()
		items += len(p.items)
		p.mu.Unlock()
		keys += p.tr.Pending()
	}
	return items, keys
}

func TestPipelineStateIsBoundedAndCleanedUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const maxKeys = 4
		rt := NewRuntime(RuntimeOptions{Logger: slog.New(slog.DiscardHandler), MaxPipelineKeys: maxKeys, DependencyTimeout: time.Minute})
		stall := make(chan struct{})
		src, err := Spawn(rt, "src", HandlerFunc[int](func(ctx context.Context, it Item[int]) (any, error) {
			if it.Payload == 0 {
				<-stall
			}
			return it.Payload, nil
		}), Options{Notifies: []string{"sink"}, Capacity: 100})
		if err != nil {
			t.Fatal(err)
		}
		var got []Item[int]
		if _, err := Spawn(rt, "sink", HandlerFunc[int](func(_ context.Context, it Item[int]) (any, error) {
			got = append(got, it)
			return nil, nil
		}), Options{}); err != nil {
			t.Fatal(err)
		}
		rt.Start()
		// The source stalls on the first item while 20 more enter: the
		// tracker keeps at most maxKeys open, releasing the oldest early.
		for i := range 21 {
			if err := src.Deliver(Item[int]{ID: fmt.Sprint(i), Priority: 0.9, Payload: i}); err != nil {
				t.Fatal(err)
			}
			if items, keys := rt.held(); keys > maxKeys || items > 2*maxKeys {
				t.Fatalf("after %d items: %d held, %d keys open; bounds %d and %d", i+1, items, keys, 2*maxKeys, maxKeys)
			}
		}
		synctest.Wait()
		close(stall)
		time.Sleep(time.Hour)
		synctest.Wait()
		if items, keys := rt.held(); items != 0 || keys != 0 {
			t.Fatalf("after the pipeline drained: %d items held, %d keys open", items, keys)
		}
		seen := map[string]deps.Status{}
		for _, it := range got {
			if _, dup := seen[it.ID]; dup {
				t.Fatalf("sink got %s twice", it.ID)
			}
			seen[it.ID] = it.Status
		}
		if len(seen) != 21 {
			t.Fatalf("sink got %d items, want each of the 21 once", len(seen))
		}
		// The 17 oldest were released early, incomplete, to keep the
		// pipeline bounded; the last four waited for the source.
		for i := range 21 {
			want := deps.Incomplete
			if i >= 21-maxKeys {
				want = deps.Done
			}
			if s := seen[fmt.Sprint(i)]; s != want {
				t.Errorf("item %d reached the sink %v, want %v", i, s, want)
			}
		}
		rt.Shutdown(context.Background())
	})
}
