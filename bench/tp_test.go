package bench

import (
	"testing"
	"time"
)

// The Go benchmarks behind `persona bench`. Each reports its figure as a
// custom metric; compare runs with benchstat, and always against the
// baseline benchmark next to it.

func BenchmarkThroughput(b *testing.B) {
	for b.Loop() {
		v, err := Throughput(1000, 2, 500_000)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(v, "items/s")
	}
}

func BenchmarkThroughputFIFOBaseline(b *testing.B) {
	for b.Loop() {
		b.ReportMetric(FIFOBaseline(1000, 2, 500_000), "items/s")
	}
}

func BenchmarkUrgentWake(b *testing.B) {
	for b.Loop() {
		l, err := UrgentWake(10_000, -1)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(l.P50, "p50-us")
		b.ReportMetric(l.P99, "p99-us")
	}
}

func BenchmarkUrgentWakePollingBaseline(b *testing.B) {
	for b.Loop() {
		l := PollingWake(50, 100*time.Millisecond)
		b.ReportMetric(l.P50, "p50-us")
		b.ReportMetric(l.P99, "p99-us")
	}
}

func BenchmarkIdlePersonas(b *testing.B) {
	for b.Loop() {
		r, err := IdlePersonas(10_000, time.Second)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(r.WakeupsPerSec, "wakeups/s")
		b.ReportMetric(r.BytesPerPersona, "B/persona")
	}
}

func BenchmarkIdleParkedBaseline(b *testing.B) {
	for b.Loop() {
		r := ParkedBaseline(10_000, 100*time.Millisecond, time.Second)
		b.ReportMetric(r.WakeupsPerSec, "wakeups/s")
		b.ReportMetric(r.BytesPerPersona, "B/persona")
	}
}
