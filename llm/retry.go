package llm

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// retryable reports whether an attempt that ended with status may be tried
// again. Status 0 stands for no HTTP answer at all (connection refused, reset,
// per-attempt timeout): a local server that is still loading its model looks
// exactly like that. 408 and 429 say "later"; 5xx says "not you". Every other
// 4xx is our mistake (bad request, bad key, unknown model) and repeating it
// only burns budget.
func retryable(status int) bool {
	switch {
	case status == 0, status == http.StatusRequestTimeout, status == http.StatusTooManyRequests:
		return true
	default:
		return status >= 500
	}
}

// backoff is the wait before retry number retry (0 for the first retry):
// minB doubled per retry, capped at maxB, with "equal jitter": half of it
// fixed and half scaled by r in [0, 1). The fixed half keeps a floor under the
// wait; the random half spreads personas that failed together so they do not
// retry in lockstep.
func backoff(retry int, minB, maxB time.Duration, r float64) time.Duration {
	base := maxB
	if retry < 62 {
		if d := minB << retry; d > 0 && d < maxB && d>>retry == minB {
			base = d
		}
	}
	half := base / 2
	return half + time.Duration(r*float64(base-half))
}

// retryAfter reads the server's own wait hint from h: retry-after-ms
// (milliseconds, OpenAI's precise form) first, then Retry-After as seconds or
// as an HTTP date relative to now. A date in the past means "now" (0, true).
// Missing, negative or unparsable hints report false.
func retryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	if v := strings.TrimSpace(h.Get("Retry-After-Ms")); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms >= 0 && !math.IsInf(ms, 0) {
			return durationOf(ms, time.Millisecond), true
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		if s < 0 || math.IsNaN(s) {
			return 0, false
		}
		return durationOf(s, time.Second), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// durationOf converts v units to a Duration, saturating instead of
// overflowing: a server asking for 1e30 seconds gets "very long", which the
// caller then caps.
func durationOf(v float64, unit time.Duration) time.Duration {
	d := v * float64(unit)
	if d >= math.MaxInt64 || math.IsInf(d, 1) {
		return math.MaxInt64
	}
	return time.Duration(d)
}

// retryDelay is the wait before retry number retry after a response with
// headers h (nil when there was no response). A server hint wins over our
// own backoff because the server knows when its window reopens; both are
// capped at maxB so a hostile or broken hint cannot park a persona for hours.
func retryDelay(h http.Header, retry int, minB, maxB time.Duration, now time.Time, r float64) time.Duration {
	if d, ok := retryAfter(h, now); ok {
		return min(d, maxB)
	}
	return backoff(retry, minB, maxB, r)
}
