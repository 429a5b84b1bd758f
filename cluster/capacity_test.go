package cluster

import (
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkClusterCapacity measures what one, two and three daemons
// sharing a three-node cluster (R3) take: accepted POSTs a second, spread
// evenly over the daemons by 32 concurrent clients over 60 rooms (a
// quarter of them @mentions), and the persona replies a second stored
// while the POSTs went on and for 5 s after. Each run sets up its own
// cluster, so give it a fixed count:
//
//	go test -run '^$' -bench ClusterCapacity -benchtime 4000x ./cluster
func BenchmarkClusterCapacity(b *testing.B) {
	for _, n := range []int{1, 2, 3} {
		b.Run("daemons="+strconv.Itoa(n), func(b *testing.B) {
			c := startCluster(b, 3)
			urls := c.URLs()
			var ds []*daemon
			for i := range n {
				ds = append(ds, startDaemon(b, string(rune('a'+i)), urls, "--reply-budget", "100"))
			}
			poll(b, 60*time.Second, "personas running", func() bool {
				o := ds[0].owners()
				for _, p := range personas {
					if o[p] == "" {
						return false
					}
				}
				return true
			})
			before := countReplies(b, urls)
			var next, failed atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for w := range 32 {
				wg.Go(func() {
					for {
						i := next.Add(1) - 1
						if i >= int64(b.N) {
							return
						}
						content := fmt.Sprintf("how do I plan the release, case %d?", i)
						if i%4 == 0 {
							content = "@" + personas[int(i/4)%len(personas)] + " " + content
						}
						if _, err := ds[int(i)%n].post(fmt.Sprintf("r%d", i%60), fmt.Sprintf("user%d", w), content); err != nil {
							failed.Add(1)
						}
					}
				})
			}
			wg.Wait()
			posting := time.Since(start)
			b.StopTimer()
			<-time.After(5 * time.Second)
			replies := countReplies(b, urls) - before
			b.ReportMetric(float64(int64(b.N)-failed.Load())/posting.Seconds(), "accepted/s")
			b.ReportMetric(float64(failed.Load()), "refused")
			b.ReportMetric(float64(replies)/(posting+5*time.Second).Seconds(), "replies/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// countReplies counts the persona messages in the room stream.
func countReplies(t testing.TB, urls string) int {
	n := 0
	for _, m := range readRooms(t, urls) {
		if m.Kind == "persona" {
			n++
		}
	}
	return n
}
