package bench

import "testing"

func BenchmarkThroughput(b *testing.B) {
	for b.Loop() {
		v, err := Throughput(1000, 2, 500000)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(v, "items/s")
	}
}

func BenchmarkFIFOBaseline(b *testing.B) {
	for b.Loop() {
		b.ReportMetric(FIFOBaseline(1000, 2, 500000), "items/s")
	}
}
