package govern

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

func TestBudgetLevelAt(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	b := NewBudget(10, 10)
	if l := b.LevelAt(t0); l != 1 {
		t.Fatalf("new budget level = %v, want 1 (starts full)", l)
	}
	for i := range 10 {
		if !b.AllowAt(t0) {
			t.Fatalf("call %d refused within the burst", i)
		}
	}
	if b.AllowAt(t0) {
		t.Fatal("call past the burst allowed")
	}
	for _, tc := range []struct {
		name  string
		after time.Duration
		want  float64
	}{
		{"drained bucket is empty", 0, 0},
		{"refills at the rate", 500 * time.Millisecond, 0.5},
		{"never above full", 5 * time.Second, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if l := b.LevelAt(t0.Add(tc.after)); l < tc.want-1e-9 || l > tc.want+1e-9 {
				t.Errorf("LevelAt(+%v) = %v, want %v", tc.after, l, tc.want)
			}
		})
	}
}

func TestBudgetBurstBelowOneIsOne(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	b := NewBudget(1, 0)
	if !b.AllowAt(t0) || b.AllowAt(t0) {
		t.Error("burst 0 should admit exactly one call at once")
	}
}

func TestBudgetWait(t *testing.T) {
	t.Run("waits for the next token", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := NewBudget(2, 1)
			if !b.Allow() {
				t.Fatal("first call refused")
			}
			start := time.Now()
			if err := b.Wait(t.Context()); err != nil {
				t.Fatalf("Wait: %v", err)
			}
			if d := time.Since(start); d != 500*time.Millisecond {
				t.Errorf("waited %v, want 500ms at 2 calls/s", d)
			}
		})
	})
	t.Run("fails at once when the deadline is too close", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := NewBudget(1, 1)
			b.Allow()
			ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
			defer cancel()
			start := time.Now()
			if err := b.Wait(ctx); err == nil {
				t.Fatal("Wait succeeded past its deadline")
			}
			if d := time.Since(start); d != 0 {
				t.Errorf("failed after %v, want at once", d)
			}
		})
	})
	t.Run("cancel ends the wait", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := NewBudget(0.1, 1)
			b.Allow()
			ctx, cancel := context.WithCancel(t.Context())
			time.AfterFunc(time.Second, cancel)
			start := time.Now()
			err := b.Wait(ctx)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Wait = %v, want context.Canceled", err)
			}
			if d := time.Since(start); d != time.Second {
				t.Errorf("returned after %v, want at the cancel (1s)", d)
			}
		})
	})
}

func TestUnlimitedBudget(t *testing.T) {
	var nilb *Budget
	for name, b := range map[string]*Budget{"rate 0": NewBudget(0, 5), "zero value": {}, "nil": nilb} {
		t.Run(name+" never refuses", func(t *testing.T) {
			if !b.Unlimited() {
				t.Error("Unlimited() = false")
			}
			for range 1000 {
				if !b.Allow() {
					t.Fatal("Allow() = false")
				}
			}
			if l := b.LevelAt(time.Now()); l != 1 {
				t.Errorf("LevelAt = %v, want 1", l)
			}
			if err := b.Wait(t.Context()); err != nil {
				t.Errorf("Wait = %v", err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			if err := b.Wait(ctx); !errors.Is(err, context.Canceled) {
				t.Errorf("Wait on a canceled context = %v, want context.Canceled", err)
			}
		})
	}
}
