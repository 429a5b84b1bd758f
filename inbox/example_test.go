package inbox_test

import (
	"fmt"
	"time"

	"github.com/personaos/persona/inbox"
)

// A full inbox defers its lowest entry instead of dropping it, an urgent
// entry comes out first, and the counts always add up.
func Example() {
	q := inbox.New[string](inbox.Options{Capacity: 2})
	now := time.Date(2025, 1, 1, 9, 0, 0, 0, time.UTC)
	outcome := map[inbox.Outcome]string{
		inbox.Accepted:          "accepted",
		inbox.AcceptedEvicting:  "accepted, lowest deferred",
		inbox.DeferredOnArrival: "deferred on arrival",
	}
	push := func(id string, p float64) {
		out, err := q.Push(inbox.Entry[string]{ID: id, Priority: p, Enqueued: now, Value: id})
		if err != nil {
			fmt.Println(id, err)
			return
		}
		fmt.Println(id, outcome[out])
	}
	push("chat", 0.4)
	push("digest", 0.2)
	push("mention", 0.9) // full: digest is deferred, not lost

	for {
		e, ok := q.TakeTop()
		if !ok {
			break
		}
		fmt.Println("took", e.ID)
		q.Finish(e.ID, inbox.Handled)
	}
	fmt.Println("readmitted", q.Readmit(now.Add(time.Minute), 0))
	c := q.Counts()
	fmt.Println("queued", c.Queued, "handled", c.Handled, "balanced", c.Balanced())
	// Output:
	// chat accepted
	// digest accepted
	// mention accepted, lowest deferred
	// took mention
	// took chat
	// readmitted 1
	// queued 1 handled 2 balanced true
}
