package llm

import (
	"net/http"
	"testing"
	"time"
)

func TestRetryable(t *testing.T) {
	for status, want := range map[int]bool{
		0: true, 408: true, 429: true, 500: true, 502: true, 503: true, 504: true,
		400: false, 401: false, 403: false, 404: false, 409: false, 422: false,
	} {
		if got := retryable(status); got != want {
			t.Errorf("retryable(%d) = %v, want %v", status, got, want)
		}
	}
}

func TestBackoff(t *testing.T) {
	const minB, maxB = 500 * time.Millisecond, 20 * time.Second
	tests := []struct {
		name  string
		retry int
		r     float64
		want  time.Duration
	}{
		{"first retry no jitter is half the minimum", 0, 0, 250 * time.Millisecond},
		{"first retry full jitter is the minimum", 0, 0.999999999, 500 * time.Millisecond},
		{"doubles per retry", 3, 0, 2 * time.Second},
		{"capped at the maximum", 10, 0, 10 * time.Second},
		{"huge retry count does not overflow", 200, 0.5, 15 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := backoff(tt.retry, minB, maxB, tt.r)
			if d := got - tt.want; d < -time.Microsecond || d > time.Microsecond {
				t.Errorf("backoff(%d, r=%v) = %v, want %v", tt.retry, tt.r, got, tt.want)
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2025, 11, 25, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		header map[string]string
		want   time.Duration
		wantOK bool
	}{
		{"absent", nil, 0, false},
		{"seconds", map[string]string{"Retry-After": "7"}, 7 * time.Second, true},
		{"fractional seconds", map[string]string{"Retry-After": "1.5"}, 1500 * time.Millisecond, true},
		{"http date", map[string]string{"Retry-After": now.Add(30 * time.Second).Format(http.TimeFormat)}, 30 * time.Second, true},
		{"http date in the past means now", map[string]string{"Retry-After": now.Add(-time.Minute).Format(http.TimeFormat)}, 0, true},
		{"milliseconds win over seconds", map[string]string{"Retry-After-Ms": "250", "Retry-After": "9"}, 250 * time.Millisecond, true},
		{"bad milliseconds fall back to seconds", map[string]string{"Retry-After-Ms": "soon", "Retry-After": "2"}, 2 * time.Second, true},
		{"negative ignored", map[string]string{"Retry-After": "-3"}, 0, false},
		{"garbage ignored", map[string]string{"Retry-After": "tomorrow"}, 0, false},
		{"absurd value saturates", map[string]string{"Retry-After": "1e30"}, 1<<63 - 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.header {
				h.Set(k, v)
			}
			got, ok := retryAfter(h, now)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("retryAfter = %v, %v; want %v, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestRetryDelayHintWinsButIsCapped(t *testing.T) {
	now := time.Unix(0, 0)
	h := http.Header{"Retry-After": {"3600"}}
	if got := retryDelay(h, 0, time.Second, 20*time.Second, now, 0); got != 20*time.Second {
		t.Errorf("hour-long hint = %v, want capped at 20s", got)
	}
	h = http.Header{"Retry-After": {"3"}}
	if got := retryDelay(h, 5, time.Second, 20*time.Second, now, 0.9); got != 3*time.Second {
		t.Errorf("hint = %v, want exactly 3s whatever the retry count and jitter", got)
	}
	if got := retryDelay(nil, 1, time.Second, 20*time.Second, now, 0); got != time.Second {
		t.Errorf("no hint = %v, want backoff 1s", got)
	}
}
