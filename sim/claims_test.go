package sim

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// claimSeeds are the seeds every headline claim is checked on: a claim
// holds on each of them, or it is stated as a share of them.
var claimSeeds = seedRange(1, 20)

func seedRange(lo, hi uint64) []uint64 {
	var s []uint64
	for i := lo; i <= hi; i++ {
		s = append(s, i)
	}
	return s
}

// claim is one statement about a scenario's reports under every policy.
type claim struct {
	name string
	// holds says whether the claim holds on one seed, and why not.
	holds func(rs map[Policy]*Report) (ok bool, why string)
	// share is the fraction of seeds on which it must hold: 1 (every
	// seed) unless stated otherwise, with the reason in a comment.
	share float64
}

// checkClaims runs sc on every seed of claimSeeds and checks each claim.
func checkClaims(t *testing.T, sc *Scenario, d time.Duration, claims []claim) {
	t.Helper()
	runs := make([]map[Policy]*Report, len(claimSeeds))
	for i, seed := range claimSeeds {
		s := *sc
		s.Seed = seed
		runs[i] = byPolicy(runAll(t, &s, Options{Duration: d}))
	}
	for _, c := range claims {
		t.Run(c.name, func(t *testing.T) {
			var failed []string
			for i, rs := range runs {
				if ok, why := c.holds(rs); !ok {
					failed = append(failed, fmt.Sprintf("seed %d: %s", claimSeeds[i], why))
				}
			}
			share := c.share
			if share == 0 {
				share = 1
			}
			held := len(runs) - len(failed)
			if float64(held) < share*float64(len(runs)) {
				t.Errorf("held on %d of %d seeds (%d-%d), claimed %.0f%%:\n  %s", held, len(runs),
					claimSeeds[0], claimSeeds[len(claimSeeds)-1], 100*share, strings.Join(failed, "\n  "))
			} else if len(failed) > 0 {
				t.Logf("held on %d of %d seeds; failed on:\n  %s", held, len(runs), strings.Join(failed, "\n  "))
			}
		})
	}
}

// Claims every scenario makes for the persona policy.
var everyScenario = []claim{
	{name: "persona loses nothing", holds: func(rs map[Policy]*Report) (bool, string) {
		o := rs[Persona]
		return o.Lost == 0, fmt.Sprintf("lost %d", o.Lost)
	}},
	{name: "persona answers every mention", holds: func(rs map[Policy]*Report) (bool, string) {
		o := rs[Persona]
		missed := 0
		for why, n := range o.MentionsMissed {
			if why != "pending" && why != "reply_pending" {
				missed += n
			}
		}
		return missed == 0, fmt.Sprintf("missed %v", o.MentionsMissed)
	}},
	{name: "no persona gets less than half its fair share of the slots", holds: func(rs map[Policy]*Report) (bool, string) {
		o := rs[Persona]
		return o.SlotShareMin >= 0.5, fmt.Sprintf("least share %.2f of fair", o.SlotShareMin)
	}},
	{name: "no dependent starts before its prerequisites", holds: func(rs map[Policy]*Report) (bool, string) {
		d := rs[Persona].Dependencies
		return d == nil || d.Violations == 0, fmt.Sprintf("%+v", d)
	}},
	{name: "the governor holds the busiest minute of ordinary work under the ceiling", holds: func(rs map[Policy]*Report) (bool, string) {
		// Urgent work is served at once, beyond the ceiling: the ceiling
		// binds the rest (the report's duty_cycle_ordinary).
		o := rs[Persona]
		return o.Ceiling > 0 && o.DutyOrdinary.Max <= o.Ceiling, fmt.Sprintf("ordinary duty max %.2f (all %.2f), ceiling %.2f", o.DutyOrdinary.Max, o.DutyCycle.Max, o.Ceiling)
	}},
	{name: "persona beats seed on the urgent p99 wait", holds: func(rs map[Policy]*Report) (bool, string) {
		o, s := rs[Persona], rs[Seed]
		// Strictly better wherever the seed policy keeps urgent work waiting
		// at all (a short cut of a calm scenario may have no wait).
		return o.WaitSeconds.Urgent.P99 < s.WaitSeconds.Urgent.P99 || o.WaitSeconds.Urgent.P99 == 0,
			fmt.Sprintf("persona %.1fs, seed %.1fs", o.WaitSeconds.Urgent.P99, s.WaitSeconds.Urgent.P99)
	}},
	{name: "persona makes at most a fifth of direct's model calls", holds: func(rs map[Policy]*Report) (bool, string) {
		o, d := rs[Persona], rs[Direct]
		return 5*o.ModelCalls <= d.ModelCalls, fmt.Sprintf("persona %d, direct %d", o.ModelCalls, d.ModelCalls)
	}},
}

func noUrgentViolations(rs map[Policy]*Report) (bool, string) {
	o := rs[Persona]
	return o.UrgentSLAViolations == 0, fmt.Sprintf("%d urgent SLA violations, p99 %.1fs", o.UrgentSLAViolations, o.WaitSeconds.Urgent.P99)
}

func TestClaimsOverSeeds(t *testing.T) {
	cuts := map[string]time.Duration{
		// The burst (minute 30 to 35) and ten minutes after it.
		"overload-burst.yaml":  40 * time.Minute,
		"urgent-overload.yaml": 30 * time.Minute, // the whole scenario
	}
	for _, name := range shipped(t) {
		t.Run(strings.TrimSuffix(name, ".yaml"), func(t *testing.T) {
			sc, err := loadShipped(t, name)
			if err != nil {
				t.Fatal(err)
			}
			if b := sc.Traffic.Bursts; len(b) > 0 && cuts[name] > 0 && b[0].At+b[0].For+5*time.Minute > cuts[name] {
				t.Fatalf("the %v cut no longer covers the burst %+v", cuts[name], b[0])
			}
			d := cuts[name]
			if d == 0 {
				d = short
			}
			claims := slices.Clone(everyScenario)
			urgent := claim{name: "no urgent SLA violation", holds: noUrgentViolations}
			if name == "urgent-overload.yaml" {
				// Nearly every message is an owed mention, so a reply per
				// message is what answering them costs: the fifth of
				// direct's calls is no claim here.
				claims = slices.DeleteFunc(claims, func(c claim) bool {
					return c.name == "persona makes at most a fifth of direct's model calls"
				})
				// No scheduler meets the SLA here; what is claimed is how
				// close the persona policy comes to the bound. The issue's
				// target is 1.25x; measured it is 1.21-2.63x per seed on
				// seeds 1-20 (README, "Simulator"): an owed reply waits for
				// the room's reply budget (at most one pacing interval),
				// which the bound does not keep; without the budget it is
				// 0.69-1.64x.
				urgent = claim{name: "persona's mention slot violations within 5x of the lower bound's", holds: func(rs map[Policy]*Report) (bool, string) {
					o, b := rs[Persona], rs[Bound]
					return float64(o.MentionSlotViolations) <= 5*float64(max(1, b.MentionSlotViolations)),
						fmt.Sprintf("persona %d, bound %d", o.MentionSlotViolations, b.MentionSlotViolations)
				}}
			}
			claims = append(claims, urgent)
			if name == "vision-pipeline.yaml" {
				claims = append(claims,
					claim{name: "at least 99% of frames pass every stage", holds: func(rs map[Policy]*Report) (bool, string) {
						p := rs[Persona].Pipeline
						return p != nil && p.Items > 0 && float64(p.Complete) >= 0.99*float64(p.Items), fmt.Sprintf("%+v", p)
					}},
					claim{name: "no frame expires while the duty is under the ceiling", holds: func(rs map[Policy]*Report) (bool, string) {
						p := rs[Persona].Pipeline
						return p != nil && p.ExpiredCool == 0, fmt.Sprintf("%+v", p)
					}})
			}
			if name == "steady.yaml" {
				claims = append(claims, claim{name: "every question is answered", holds: func(rs map[Policy]*Report) (bool, string) {
					o := rs[Persona]
					return o.QuestionsUnanswered == 0, fmt.Sprintf("%d of %d human messages unanswered", o.QuestionsUnanswered, o.HumanMessages)
				}})
			}
			if name == "overload-burst.yaml" {
				claims = append(claims,
					claim{name: "the seed policy loses messages under the burst", holds: func(rs map[Policy]*Report) (bool, string) {
						return rs[Seed].Lost > 0, "seed lost nothing"
					}},
					claim{name: "the burst overloads direct", holds: func(rs map[Policy]*Report) (bool, string) {
						d := rs[Direct]
						return d.DutyCycle.Max >= 0.99 && d.PendingAtEnd > 0, fmt.Sprintf("direct: duty max %.2f, pending %d", d.DutyCycle.Max, d.PendingAtEnd)
					}})
			}
			checkClaims(t, sc, d, claims)
		})
	}
}
