package server

import (
	"context"
	"fmt"
	"os"
	"slices"
	"time"

	"golang.org/x/time/rate"

	"github.com/personaos/persona/llm"
)

// The model backends and the compute budget: which model answers for each
// persona, and one metered, counted call.

// buildModels picks the model backend and the compute budget.
func (d *Daemon) buildModels() error {
	if d.cfg.BudgetPerSec > 0 {
		d.limiter = rate.NewLimiter(rate.Limit(d.cfg.BudgetPerSec), d.cfg.BudgetBurst)
	}
	d.models = map[string]llm.Model{}
	useOpenAI := d.cfg.ModelBaseURL != "" || os.Getenv(llm.EnvBaseURL) != "" || os.Getenv(llm.EnvAPIKey) != ""
	names := []string{""}
	for _, s := range d.specs {
		if s.Model != "" && !slices.Contains(names, s.Model) {
			names = append(names, s.Model)
		}
	}
	for _, name := range names {
		switch {
		case d.cfg.Model != nil:
			d.models[name] = budgeted{d.cfg.Model, d.limiter}
		case useOpenAI:
			o := d.cfg.ModelOptions
			o.BaseURL, o.APIKey, o.Model = d.cfg.ModelBaseURL, d.cfg.ModelAPIKey, d.cfg.ModelName
			if name != "" {
				o.Model = name
			}
			o.Limiter = d.limiter
			if o.Logger == nil {
				o.Logger = d.log
			}
			c, err := llm.NewOpenAI(o)
			if err != nil {
				return fmt.Errorf("model: %w", err)
			}
			d.models[name] = c
		default:
			d.models[name] = budgeted{llm.Scripted{}, d.limiter}
		}
	}
	return nil
}

func (d *Daemon) modelFor(name string) llm.Model {
	if m, ok := d.models[name]; ok {
		return m
	}
	return d.models[""]
}

// modelName is what the dashboard shows as a persona's model.
func (d *Daemon) modelName(spec PersonaSpec) string {
	switch m := d.modelFor(spec.Model).(type) {
	case *llm.OpenAI:
		return m.Model()
	case budgeted:
		if _, ok := m.Model.(llm.Scripted); ok {
			return llm.ScriptedModel
		}
	}
	if spec.Model != "" {
		return spec.Model
	}
	return "custom"
}

// budgeted takes a compute-budget token before each call of a model that
// does not take one itself (the OpenAI client takes one per attempt).
type budgeted struct {
	llm.Model
	lim *rate.Limiter
}

func (b budgeted) Complete(ctx context.Context, req llm.Request) (llm.Reply, error) {
	if b.lim != nil {
		if err := b.lim.Wait(ctx); err != nil {
			return llm.Reply{}, fmt.Errorf("compute budget: %w", err)
		}
	}
	return b.Model.Complete(ctx, req)
}

// complete makes one model call for persona with its model: metered for
// the governor and counted in the metrics (modelCaller).
func (d *Daemon) complete(ctx context.Context, persona, model string, req llm.Request) (llm.Reply, error) {
	start := time.Now()
	d.meter.Begin(start)
	reply, err := d.modelFor(model).Complete(ctx, req)
	end := time.Now()
	d.meter.End(end)
	d.metrics.ModelCall(persona, outcome(err), end.Sub(start))
	return reply, err
}
