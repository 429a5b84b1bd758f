package sim

import (
	"errors"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/personaos/persona/govern"
	"github.com/personaos/persona/state"
)

// ErrNoSeries is returned by WritePlots for reports run without
// Options.Series.
var ErrNoSeries = errors.New("sim: report has no time series (run with Options.Series)")

// Policy colours, the same in every picture.
var policyColor = map[Policy]color.Color{
	Direct:  color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}, // red
	Seed:    color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}, // orange
	Persona: color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}, // blue
}

// WritePlots draws the reports into dir (created if needed) as PNG files
// and returns their paths:
//
//   - wait-cdf.png: the cumulative distribution of waits, one panel per
//     class, one line per policy, on a log time axis;
//   - depth-duty.png: queued work and the duty cycle over time, a row per
//     policy, with the governor's ceiling;
//   - energy-mood.png: for the persona and seed policies, mean and minimum
//     energy, personas per mood, and (persona) the thermal state.
func WritePlots(dir string, reps []*Report) ([]string, error) {
	// The lower bound is a yardstick for urgent waits, not a design with
	// queues, energy or a governor: it has no panels of its own.
	reps = slices.DeleteFunc(slices.Clone(reps), func(r *Report) bool { return r.Policy == Bound })
	for _, r := range reps {
		if r.Series == nil {
			return nil, fmt.Errorf("%w: %s", ErrNoSeries, r.Policy)
		}
	}
	if len(reps) == 0 {
		return nil, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("sim: plots: %w", err)
	}
	var files []string
	for _, p := range []struct {
		name string
		draw func([]*Report) ([][]*plot.Plot, vg.Length, vg.Length)
	}{
		{"wait-cdf.png", waitCDF},
		{"depth-duty.png", depthDuty},
		{"energy-mood.png", energyMood},
	} {
		plots, w, h := p.draw(reps)
		if plots == nil {
			continue
		}
		path := filepath.Join(dir, p.name)
		if err := savePNG(path, plots, w, h); err != nil {
			return files, err
		}
		files = append(files, path)
	}
	return files, nil
}

func savePNG(path string, plots [][]*plot.Plot, w, h vg.Length) (err error) {
	defer func() {
		// gonum/plot panics on data it cannot draw; a picture is not
		// worth a crash.
		if v := recover(); v != nil {
			err = fmt.Errorf("sim: plots: %s: %v", path, v)
		}
	}()
	img := vgimg.New(w, h)
	dc := draw.New(img)
	// Each row is tiled on its own, so that a row with fewer panels
	// spreads them over its width instead of leaving one empty.
	rows := draw.Tiles{Rows: len(plots), Cols: 1}
	for i, row := range plots {
		row = slices.DeleteFunc(slices.Clone(row), func(p *plot.Plot) bool { return p == nil })
		if len(row) == 0 {
			continue
		}
		tiles := draw.Tiles{Rows: 1, Cols: len(row), PadX: vg.Millimeter * 4,
			PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
		rc := rows.At(dc, 0, i)
		for j, p := range row {
			p.Draw(tiles.At(rc, j, 0))
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("sim: plots: %w", err)
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("sim: plots: %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("sim: plots: %w", err)
	}
	return nil
}

func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	return p
}

// legendBand makes room for the legend above the data: the y axis runs to
// top, its ticks stop at max (the data's range), and the legend sits in
// the band between, so it never covers a line.
func legendBand(p *plot.Plot, lo, hi float64, ticks []float64) {
	p.Y.Min, p.Y.Max = lo, hi+(hi-lo)*0.45
	var ts []plot.Tick
	for _, v := range ticks {
		ts = append(ts, plot.Tick{Value: v, Label: fmt.Sprintf("%g", v)})
	}
	p.Y.Tick.Marker = plot.ConstantTicks(ts)
	p.Legend.Top, p.Legend.Left = true, true
	p.Legend.XOffs = vg.Millimeter * 2
}

// timeAxis gives every panel over time the same x axis: the whole run.
func timeAxis(p *plot.Plot, minutes []float64) {
	p.X.Min = 0
	if n := len(minutes); n > 0 {
		p.X.Max = minutes[n-1]
	}
}

func addLine(p *plot.Plot, name string, xys plotter.XYs, c color.Color, dashed bool) {
	if len(xys) == 0 {
		return
	}
	l, err := plotter.NewLine(xys)
	if err != nil {
		return // only NaN or Inf values, which the callers never pass
	}
	l.Color = c
	l.Width = vg.Points(1.5)
	if dashed {
		l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	}
	p.Add(l)
	if name != "" {
		p.Legend.Add(name, l)
	}
}

// waitFloor is where the log axis starts: waits shorter than 10 ms are
// drawn at 10 ms.
const waitFloor = 0.01

func waitCDF(reps []*Report) ([][]*plot.Plot, vg.Length, vg.Length) {
	row := make([]*plot.Plot, numClasses)
	for c := range numClasses {
		p := newPlot("wait, "+classNames[c], "seconds (log)", "fraction waited at most")
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = plot.LogTicks{Prec: -1}
		legendBand(p, 0, 1, []float64{0, 0.5, 1})
		for _, r := range reps {
			s := r.Series.Waits[c]
			if len(s) == 0 {
				continue
			}
			addLine(p, string(r.Policy), cdf(s), policyColor[r.Policy], false)
		}
		// A log axis needs positive bounds, also for a class no policy saw.
		if math.IsInf(p.X.Min, 0) || math.IsInf(p.X.Max, 0) || p.X.Max <= waitFloor {
			p.X.Min, p.X.Max = waitFloor, 1
		}
		p.X.Min = max(p.X.Min, waitFloor)
		row[c] = p
	}
	return [][]*plot.Plot{row}, 30 * vg.Centimeter, 11 * vg.Centimeter
}

// cdf turns a sorted sample into at most 400 steps of its empirical
// distribution.
func cdf(sorted []float64) plotter.XYs {
	n := len(sorted)
	step := max(1, n/400)
	var xys plotter.XYs
	for i := 0; i < n; i += step {
		xys = append(xys, plotter.XY{X: max(sorted[i], waitFloor), Y: float64(i+1) / float64(n)})
	}
	xys = append(xys, plotter.XY{X: max(sorted[n-1], waitFloor), Y: 1})
	return xys
}

// bucket averages a per-second series over windows of w seconds.
func bucket(minutes, v []float64, w int) plotter.XYs {
	var xys plotter.XYs
	for i := 0; i < len(v) && i < len(minutes); i += w {
		end := min(i+w, len(v))
		var sum float64
		for _, x := range v[i:end] {
			sum += x
		}
		xys = append(xys, plotter.XY{X: minutes[end-1], Y: sum / float64(end-i)})
	}
	return xys
}

// bucketWidth keeps a plot near 720 points however long the run.
func bucketWidth(n int) int { return max(1, n/720) }

func depthDuty(reps []*Report) ([][]*plot.Plot, vg.Length, vg.Length) {
	// Queued work on one log scale for every policy, so that rows compare
	// at a glance; an empty inbox is drawn at 1.
	most := 10.0
	for _, r := range reps {
		for _, v := range r.Series.Depth {
			most = max(most, v)
		}
	}
	var rows [][]*plot.Plot
	for _, r := range reps {
		s := r.Series
		w := bucketWidth(len(s.Minutes))
		depth := newPlot(string(r.Policy)+": queued work", "minutes", "deliveries queued (log)")
		depth.Y.Scale = plot.LogScale{}
		depth.Y.Tick.Marker = plot.LogTicks{Prec: -1}
		depth.Y.Min, depth.Y.Max = 1, most*1.2
		xys := bucket(s.Minutes, s.Depth, w)
		for i := range xys {
			xys[i].Y = max(xys[i].Y, 1)
		}
		addLine(depth, "", xys, policyColor[r.Policy], false)
		timeAxis(depth, s.Minutes)
		duty := newPlot(string(r.Policy)+": duty cycle", "minutes", "busy model slots / cores")
		legendBand(duty, 0, 1, []float64{0, 0.5, 1})
		timeAxis(duty, s.Minutes)
		addLine(duty, fmt.Sprintf("mean over %d s", w), bucket(s.Minutes, s.Duty, w), policyColor[r.Policy], false)
		addLine(duty, "1-min mean", rolling(s.Minutes, s.Duty, dutyWindow, w), color.Gray{Y: 0x40}, false)
		if r.Policy == Persona && len(s.Minutes) > 0 {
			ceil := govern.DefaultCeiling
			if r.Ceiling > 0 {
				ceil = r.Ceiling
			}
			addLine(duty, fmt.Sprintf("governor ceiling %.2f", ceil),
				plotter.XYs{{X: 0, Y: ceil}, {X: s.Minutes[len(s.Minutes)-1], Y: ceil}}, color.Black, true)
		}
		rows = append(rows, []*plot.Plot{depth, duty})
	}
	return rows, 30 * vg.Centimeter, vg.Length(len(reps)) * 9 * vg.Centimeter
}

// rolling is the trailing mean over win samples, drawn every w samples.
func rolling(minutes, v []float64, win, w int) plotter.XYs {
	var xys plotter.XYs
	var sum float64
	for i := range v {
		sum += v[i]
		if i >= win {
			sum -= v[i-win]
		}
		if i%w == w-1 || i == len(v)-1 {
			xys = append(xys, plotter.XY{X: minutes[i], Y: sum / float64(min(i+1, win))})
		}
	}
	return xys
}

var moodColor = [...]color.Color{
	state.Idle:        color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	state.Active:      color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	state.Tired:       color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff},
	state.Overwhelmed: color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
}

func energyMood(reps []*Report) ([][]*plot.Plot, vg.Length, vg.Length) {
	var rows [][]*plot.Plot
	for _, r := range reps {
		s := r.Series
		if len(s.Energy) == 0 {
			continue // direct has no state
		}
		w := bucketWidth(len(s.Minutes))
		en := newPlot(string(r.Policy)+": energy", "minutes", "energy")
		legendBand(en, 0, 1, []float64{0, 0.5, 1})
		timeAxis(en, s.Minutes)
		addLine(en, "mean", bucket(s.Minutes, s.Energy, w), policyColor[r.Policy], false)
		addLine(en, "lowest persona", bucket(s.Minutes, s.EnergyMin, w), color.Gray{Y: 0x60}, true)
		mood := newPlot(string(r.Policy)+": mood", "minutes", "personas")
		n := float64(r.Personas)
		legendBand(mood, 0, n, []float64{0, math.Round(n / 2), n})
		timeAxis(mood, s.Minutes)
		for m := state.Idle; m <= state.Overwhelmed; m++ {
			addLine(mood, m.String(), bucket(s.Minutes, s.Moods[m], w), moodColor[m], false)
		}
		row := []*plot.Plot{en, mood}
		if len(s.Thermal) > 0 {
			th := newPlot(string(r.Policy)+": governor", "minutes", "thermal state")
			th.Y.Min, th.Y.Max = -0.1, 3.1
			timeAxis(th, s.Minutes)
			th.Y.Tick.Marker = plot.ConstantTicks{{Value: 0, Label: "nominal"}, {Value: 1, Label: "fair"},
				{Value: 2, Label: "serious"}, {Value: 3, Label: "critical"}}
			addLine(th, "", maxBucket(s.Minutes, s.Thermal, w), color.Black, false)
			row = append(row, th)
		}
		rows = append(rows, row)
	}
	if len(rows) == 0 {
		return nil, 0, 0
	}
	return rows, 36 * vg.Centimeter, vg.Length(len(rows)) * 9 * vg.Centimeter
}

// maxBucket keeps the hottest state of each window, so a short excursion
// stays visible.
func maxBucket(minutes, v []float64, w int) plotter.XYs {
	var xys plotter.XYs
	for i := 0; i < len(v) && i < len(minutes); i += w {
		end := min(i+w, len(v))
		m := math.Inf(-1)
		for _, x := range v[i:end] {
			m = max(m, x)
		}
		xys = append(xys, plotter.XY{X: minutes[end-1], Y: m})
	}
	return xys
}
