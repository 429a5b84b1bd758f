package govern

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/time/rate"
)

// Budget is the compute budget for model calls: a token bucket that refills
// at a steady rate up to a burst. Take one token per model call with Wait
// (most callers) or Allow; the governor reads LevelAt to see how much is
// left.
//
// The zero value and a nil *Budget are unlimited: Allow is always true, Wait
// returns at once (unless ctx is done) and the level is always 1. Safe for
// concurrent use.
type Budget struct {
	lim *rate.Limiter // nil: unlimited
}

// NewBudget returns a budget of perSecond model calls per second with bursts
// of up to burst calls; the bucket starts full. perSecond <= 0 (or NaN)
// means unlimited. A burst below 1 is taken as 1, since a bucket that holds
// no token could never admit a call.
func NewBudget(perSecond float64, burst int) *Budget {
	if !(perSecond > 0) {
		return &Budget{}
	}
	return &Budget{lim: rate.NewLimiter(rate.Limit(perSecond), max(burst, 1))}
}

// Unlimited reports whether the budget never refuses a call.
func (b *Budget) Unlimited() bool { return b == nil || b.lim == nil }

// Wait blocks until one model call may proceed or ctx is done. If ctx has a
// deadline the token cannot be had by, Wait fails at once rather than
// waiting in vain. The error wraps ctx's error when ctx ends the wait.
func (b *Budget) Wait(ctx context.Context) error {
	if b.Unlimited() {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("govern: budget wait: %w", err)
		}
		return nil
	}
	if err := b.lim.Wait(ctx); err != nil {
		return fmt.Errorf("govern: budget wait: %w", err)
	}
	return nil
}

// Allow takes one token now if there is one and reports whether it did.
func (b *Budget) Allow() bool { return b.AllowAt(time.Now()) }

// AllowAt is Allow at time now, for drivers in virtual time.
func (b *Budget) AllowAt(now time.Time) bool {
	if b.Unlimited() {
		return true
	}
	return b.lim.AllowN(now, 1)
}

// LevelAt returns the fill of the bucket at now, tokens/burst clamped to
// 0..1: 1 is full, 0 is empty (or owed, when waiters have reserved tokens
// ahead). It does not take a token.
func (b *Budget) LevelAt(now time.Time) float64 {
	if b.Unlimited() {
		return 1
	}
	l := b.lim.TokensAt(now) / float64(b.lim.Burst())
	return min(max(l, 0), 1)
}
