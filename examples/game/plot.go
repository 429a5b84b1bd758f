package game

import (
	"bufio"
	"fmt"
	"image/color"
	"io"
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Size of the plot PlotPNG draws.
const (
	plotWidth  = 8 * vg.Inch
	plotHeight = 7 * vg.Inch
)

// WritePlot draws rep's time series as PNG to dst, in two panels over game time: the total score of
// the persona game and of the baseline, then every player's energy (in PlayerColor) and their mean.
func WritePlot(rep Report, dst io.Writer) error {
	top := plot.New()
	top.Title.Text = fmt.Sprintf("score: persona players vs thinking every tick (%d ticks)", rep.Ticks)
	top.X.Label.Text = "game time (s)"
	top.Y.Label.Text = "total score"
	top.Legend.Top, top.Legend.Left = true, true
	for _, sd := range []struct {
		side Side
		name string
		col  color.RGBA
		dash bool
	}{
		{rep.Persona, "persona", color.RGBA{0x1f, 0x6f, 0xd0, 0xff}, false},
		{rep.Baseline, "baseline", color.RGBA{0x70, 0x70, 0x70, 0xff}, true},
	} {
		l, err := plotter.NewLine(seriesXY(sd.side.Series, func(s Sample) float64 { return float64(s.Total) }))
		if err != nil {
			return fmt.Errorf("plot: %w", err)
		}
		l.Color, l.Width = sd.col, vg.Points(2)
		if sd.dash {
			l.Dashes = []vg.Length{vg.Points(6), vg.Points(3)}
		}
		top.Add(l)
		top.Legend.Add(sd.name, l)
	}

	bottom := plot.New()
	bottom.Title.Text = "persona energy (falls with thinking, recovers with rest)"
	bottom.X.Label.Text = "game time (s)"
	bottom.Y.Label.Text = "energy"
	bottom.Y.Min, bottom.Y.Max = 0, 1.05
	bottom.Legend.Top, bottom.Legend.Left = false, true
	names := make([]string, len(rep.Persona.Players))
	for i, p := range rep.Persona.Players {
		names[i] = p.Name
	}
	for i, name := range names {
		l, err := plotter.NewLine(seriesXY(rep.Persona.Series, func(s Sample) float64 {
			if i < len(s.Energy) {
				return s.Energy[i]
			}
			return 0
		}))
		if err != nil {
			return fmt.Errorf("plot: %w", err)
		}
		l.Color, l.Width = PlayerColor(i), vg.Points(1)
		bottom.Add(l)
		bottom.Legend.Add(name, l)
	}
	mean, err := plotter.NewLine(seriesXY(rep.Persona.Series, func(s Sample) float64 { return s.MeanEnergy }))
	if err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	mean.Color, mean.Width = color.RGBA{0x10, 0x10, 0x10, 0xff}, vg.Points(2.5)
	bottom.Add(mean)
	bottom.Legend.Add("mean", mean)

	img := vgimg.New(plotWidth, plotHeight)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadX: vg.Millimeter, PadY: 4 * vg.Millimeter,
		PadTop: 2 * vg.Millimeter, PadBottom: 2 * vg.Millimeter, PadLeft: 2 * vg.Millimeter, PadRight: 4 * vg.Millimeter}
	plots := [][]*plot.Plot{{top}, {bottom}}
	canvases := plot.Align(plots, tiles, dc)
	top.Draw(canvases[0][0])
	bottom.Draw(canvases[1][0])
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(dst); err != nil {
		return fmt.Errorf("plot: encode png: %w", err)
	}
	return nil
}

// PlotPNG writes WritePlot's image to the file at path, replacing it.
func PlotPNG(rep Report, path string) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("plot png: %w", err)
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("plot png: %w", cerr)
		}
	}()
	bw := bufio.NewWriter(f)
	if err := WritePlot(rep, bw); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("plot png: %w", err)
	}
	return nil
}

// seriesXY maps samples to (game seconds, y).
func seriesXY(ss []Sample, y func(Sample) float64) plotter.XYs {
	xy := make(plotter.XYs, len(ss))
	for i, s := range ss {
		xy[i].X = float64(s.Tick) / TickRate
		xy[i].Y = y(s)
	}
	return xy
}
