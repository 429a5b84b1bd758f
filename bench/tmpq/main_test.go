package bt
import ("testing";"github.com/personaos/persona/bench")
func BenchmarkTP(b *testing.B){ for b.Loop(){ v,_:=bench.Throughput(1000,2,500000); b.ReportMetric(v,"items/s") } }
