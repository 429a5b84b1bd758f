package sim

import (
	"context"
	"testing"
)

// million is a scenario of about a million deliveries (20 personas, 10
// messages a second for 90 minutes, replies fed back): the speed
// target is a million deliveries in under 30 s of wall time.
const million = `
name: million
seed: 1
duration: 90m
cores: 4
# coordination: unsaid, chat.DefaultSettings().Stream, as the chat daemon
personas:
  - {name: helper, count: 8, expertise: [go, code], handle: {median: 2s, p95: 6s}}
  - {name: teacher, count: 6, expertise: [learn], handle: {median: 2s, p95: 6s}}
  - {name: forecaster, count: 6, expertise: [weather], handle: {median: 2s, p95: 6s}}
traffic:
  rate: 10/s
  rooms: 16
  mention: 0.02
  topics: {go: 0.3, code: 0.2, learn: 0.2, weather: 0.3}
  human: 0.6
  replies_feed_back: true
`

// BenchmarkMillion runs the million-delivery scenario once per iteration
// and policy and reports deliveries per wall second. It takes a few
// seconds per policy: run it on its own, e.g.
//
//	go test ./sim -run '^$' -bench Million -benchtime 1x
func BenchmarkMillion(b *testing.B) {
	sc, err := ParseScenario("million.yaml", []byte(million))
	if err != nil {
		b.Fatal(err)
	}
	for _, p := range Policies() {
		b.Run(string(p), func(b *testing.B) {
			b.ReportAllocs()
			var delivered, wall float64
			for b.Loop() {
				r, err := Run(context.Background(), sc, p, Options{})
				if err != nil {
					b.Fatal(err)
				}
				delivered += float64(r.Delivered)
				wall += r.WallSeconds
			}
			b.ReportMetric(delivered/float64(b.N), "deliveries/run")
			b.ReportMetric(delivered/wall, "deliveries/s")
		})
	}
}

func BenchmarkEventHeap(b *testing.B) {
	var h eventHeap
	for i := range 1024 {
		h.push(event{at: int64(i * 7919 % 1024)})
	}
	b.ReportAllocs()
	i := int64(0)
	for b.Loop() {
		e := h.pop()
		i++
		h.push(event{at: e.at + 1024 + i%17})
	}
}
