package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/personaos/persona/llm"
	"github.com/personaos/persona/slots"
)

// The model backends and the compute budget: which model answers for each
// persona, and one metered, counted call.

// buildModels picks the model backend, its slots and the compute budget.
func (d *Daemon) buildModels() error {
	if d.cfg.BudgetPerSec > 0 {
		d.limiter = rate.NewLimiter(rate.Limit(d.cfg.BudgetPerSec), d.cfg.BudgetBurst)
	}
	k, why := d.modelSlots()
	// A waiting @mention takes the slot of the lowest call running: its
	// persona puts that work back (errPutBack), as for its own urgent work.
	d.slots = slots.NewScheduler(k, slots.SchedulerOptions{Preempt: true})
	d.slotsWhy = why
	d.models = map[string]llm.Model{}
	useOpenAI := d.cfg.ModelBaseURL != "" || os.Getenv(llm.EnvBaseURL) != "" || os.Getenv(llm.EnvAPIKey) != ""
	backends := []PersonaSpec{{}} // the daemon's own, then each persona's overrides
	for _, s := range d.specs {
		if backendKey(s) != backendKey(PersonaSpec{}) {
			backends = append(backends, s)
		}
	}
	for _, s := range backends {
		key := backendKey(s)
		if d.models[key] != nil {
			continue
		}
		switch {
		case d.cfg.Model != nil:
			d.models[key] = budgeted{d.cfg.Model, d.limiter}
		case useOpenAI || s.ModelURL != "":
			o := d.cfg.ModelOptions
			o.BaseURL, o.APIKey, o.Model = d.cfg.ModelBaseURL, d.cfg.ModelAPIKey, d.cfg.ModelName
			if s.ModelURL != "" {
				o.BaseURL = s.ModelURL
			}
			if s.Model != "" {
				o.Model = s.Model
			}
			if s.ModelTimeout > 0 {
				o.Timeout = s.ModelTimeout
			}
			if err := localWithoutModel(o); err != nil {
				return err
			}
			o.Limiter = d.limiter
			if o.Logger == nil {
				o.Logger = d.log
			}
			c, err := llm.NewOpenAI(o)
			if err != nil {
				return fmt.Errorf("model: %w", err)
			}
			d.models[key] = c
		default:
			d.models[key] = budgeted{llm.Scripted{}, d.limiter}
		}
	}
	return nil
}

// backendKey names the model backend a persona's spec asks for: the
// daemon's model server and model unless the spec overrides them (and the
// call timeout, which the client holds).
func backendKey(s PersonaSpec) string {
	return s.ModelURL + "|" + s.Model + "|" + s.ModelTimeout.String()
}

// modelFor is the backend of key (backendKey), or the daemon's own.
func (d *Daemon) modelFor(key string) llm.Model {
	if m, ok := d.models[key]; ok {
		return m
	}
	return d.models[backendKey(PersonaSpec{})]
}

// modelName is what the dashboard shows as a persona's model.
func (d *Daemon) modelName(spec PersonaSpec) string {
	switch m := d.modelFor(backendKey(spec)).(type) {
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

// modelSlots is Config.ModelSlots, or its default for the backend, and
// why: 1 for a server on this machine or a private network, 4 otherwise.
func (d *Daemon) modelSlots() (int, string) {
	if d.cfg.ModelSlots > 0 {
		return d.cfg.ModelSlots, "--model-slots"
	}
	base := baseURL(d.cfg.ModelBaseURL)
	if d.cfg.Model != nil || base == "" {
		if d.cfg.Model == nil && os.Getenv(llm.EnvAPIKey) != "" {
			return 4, "hosted model server (set --model-slots to change)"
		}
		return 4, "built-in model"
	}
	if u, err := url.Parse(base); err == nil && localHost(u.Hostname()) {
		return 1, "local model server serves one request at a time unless configured otherwise (set --model-slots to its parallelism, e.g. OLLAMA_NUM_PARALLEL)"
	}
	return 4, "hosted model server (set --model-slots to change)"
}

// serves reports whether a server's model list holds model: by its
// name, or, for a name without a tag, with Ollama's default tag ":latest"
// (which its /v1/models lists).
func serves(served []string, model string) bool {
	return slices.Contains(served, model) || (!strings.Contains(model, ":") && slices.Contains(served, model+":latest"))
}

// probeModels asks each model server which models it serves and logs one
// line per backend: its URL, model and slots, and a warning, not a refusal
// to start, when the server is unreachable or does not have the model (the
// personas' calls will fail, visibly, until it does).
func (d *Daemon) probeModels(ctx context.Context) {
	_, k, _ := d.slots.Load()
	seen := map[*llm.OpenAI]bool{}
	for _, m := range d.models {
		o, ok := m.(*llm.OpenAI)
		if !ok {
			continue
		}
		if seen[o] {
			continue
		}
		seen[o] = true
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		served, err := o.Models(pctx)
		cancel()
		attrs := []any{"url", o.BaseURL(), "model", o.Model(), "slots", k, "slots_why", d.slotsWhy}
		switch {
		case err != nil:
			d.log.Warn("model server not reachable; replies will fail until it is", append(attrs, "err", err)...)
		case !serves(served, o.Model()):
			d.log.Warn("model not found on the server; replies will fail until it is there", append(attrs, "served", served)...)
		default:
			d.log.Info("model backend", attrs...)
		}
	}
	if len(seen) == 0 {
		d.log.Info("model backend", "model", d.modelName(PersonaSpec{}), "slots", k, "slots_why", d.slotsWhy)
	}
}

// localWithoutModel refuses a local server with no model named: the
// default model is OpenAI's, which a local server does not serve.
func localWithoutModel(o llm.OpenAIOptions) error {
	base := baseURL(o.BaseURL)
	if o.Model != "" || os.Getenv(llm.EnvModel) != "" || base == "" {
		return nil
	}
	if u, err := url.Parse(base); err == nil && localHost(u.Hostname()) {
		return fmt.Errorf("model: %s is a local server, and no model is named: give --model (or $%s, or model: in the persona file) the name it serves, e.g. --model llama3.2 for Ollama (its names: curl %s/models)",
			base, llm.EnvModel, strings.TrimSuffix(base, "/"))
	}
	return nil
}

// baseURL is the model server's base URL: u, else $OPENAI_BASE_URL, as
// llm.NewOpenAI resolves it.
func baseURL(u string) string {
	if u == "" {
		return os.Getenv(llm.EnvBaseURL)
	}
	return u
}

// localHost reports whether host is this machine or a private network.
func localHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && (ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast())
}

// errPutBack is complete's error for a call that gave up its place: a
// newer message of its room superseded it while it waited for a slot, or
// an @mention took its slot. Its persona puts the item back
// (persona.Later), merged again with what came meanwhile; no attempt is
// counted and nothing is lost.
var errPutBack = errors.New("model call put back")

// complete makes one model call for persona with its model on a slot of
// the backend: call's class decides when it gets one. The call is metered
// for the governor from slot to end (slot occupancy is heat; waiting is
// not) and counted in the metrics (modelCaller).
func (d *Daemon) complete(ctx context.Context, call slots.Call, model string, req llm.Request) (llm.Reply, error) {
	g, err := d.slots.Acquire(ctx, call)
	if errors.Is(err, slots.ErrSuperseded) {
		return llm.Reply{}, errPutBack
	}
	if err != nil {
		return llm.Reply{}, fmt.Errorf("model slot: %w", err)
	}
	defer g.Release()
	start := time.Now()
	d.meter.Begin(start)
	reply, err := d.modelFor(model).Complete(g.Context(), req)
	end := time.Now()
	d.meter.End(end)
	if err != nil && errors.Is(context.Cause(g.Context()), slots.ErrPreempted) && ctx.Err() == nil {
		d.metrics.ModelCall(call.Persona, "preempted", end.Sub(start))
		return llm.Reply{}, errPutBack
	}
	d.metrics.ModelCall(call.Persona, outcome(err), end.Sub(start))
	return reply, err
}
