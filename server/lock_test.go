package server

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestOneDaemonPerDataDirectory(t *testing.T) {
	cfg := testConfig(t)
	cfg.Specs = solo()
	first, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := first.Start(ctx); err != nil {
		t.Fatal(err)
	}

	// A second daemon on the same directory is refused at once, and the
	// error names the directory and the holder.
	second, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = second.Start(ctx)
	if !errors.Is(err, ErrDataLocked) {
		t.Fatalf("second daemon on %s: %v, want ErrDataLocked", cfg.Data, err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("refused after %v, want at once", took)
	}
	if msg := err.Error(); !strings.Contains(msg, cfg.Data) || !strings.Contains(msg, "process "+strconv.Itoa(os.Getpid())) {
		t.Errorf("error %q does not name the directory and the holder's pid", msg)
	}

	// Once the first stops, the directory is free again.
	if err := first.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	third, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := third.Start(ctx); err != nil {
		t.Fatalf("after the first daemon stopped: %v", err)
	}
	if err := third.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}
