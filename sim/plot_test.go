package sim

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestWritePlotsDrawsThreePictures(t *testing.T) {
	reps := runAll(t, tiny(), Options{Series: true})
	dir := filepath.Join(t.TempDir(), "plots")
	files, err := WritePlots(dir, reps)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 3 {
		t.Fatalf("wrote %v, want 3 files", files)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil || !bytes.HasPrefix(b, []byte("\x89PNG\r\n")) {
			t.Errorf("%s: not a PNG (%v, %d bytes)", f, err, len(b))
		}
	}
}

func TestWritePlotsOfDirectAloneSkipsEnergy(t *testing.T) {
	r, err := Run(context.Background(), tiny(), Direct, Options{Series: true})
	if err != nil {
		t.Fatal(err)
	}
	files, err := WritePlots(t.TempDir(), []*Report{r})
	if err != nil || len(files) != 2 {
		t.Errorf("files %v, err %v: want wait and depth pictures only", files, err)
	}
}

func TestWritePlotsNeedsSeries(t *testing.T) {
	r, err := Run(context.Background(), tiny(), Seed, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := WritePlots(t.TempDir(), []*Report{r}); !errors.Is(err, ErrNoSeries) {
		t.Errorf("err = %v, want ErrNoSeries", err)
	}
}
