package sim

import (
	"slices"
	"testing"
)

func TestMaxMinFair(t *testing.T) {
	for _, c := range []struct {
		demands  []float64
		capacity float64
		want     []float64
	}{
		{[]float64{1, 2, 3}, 6, []float64{1, 2, 3}},   // everyone served
		{[]float64{1, 10, 10}, 9, []float64{1, 4, 4}}, // the small one whole, the rest split
		{[]float64{5, 5}, 4, []float64{2, 2}},
		{[]float64{0, 8}, 4, []float64{0, 4}},
	} {
		if got := maxMinFair(c.demands, c.capacity); !slices.Equal(got, c.want) {
			t.Errorf("maxMinFair(%v, %v) = %v, want %v", c.demands, c.capacity, got, c.want)
		}
	}
}
