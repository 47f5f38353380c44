package bench

import (
	"fmt"
	"slices"
)

// combine makes the report of an invocation of several rounds: each round's report under
// Rounds, every target judged on the median of the rounds' values, the checks of them all.
// It returns nil when there is no round.
func combine(rounds []*Report) *Report {
	if len(rounds) == 0 {
		return nil
	}
	first := rounds[0]
	rep := &Report{Scenario: first.Scenario, Settings: first.Settings, Machine: first.Machine, Runs: []RunReport{},
		Targets: []Target{}, Rounds: rounds, Notes: []string{}}
	rep.Checks.OK = true
	rep.Checks.Errors = []string{}
	for k, r := range rounds {
		rep.PeakRSSBytes = max(rep.PeakRSSBytes, r.PeakRSSBytes)
		rep.Checks.OK = rep.Checks.OK && r.Checks.OK
		rep.Checks.add(r.Checks, fmt.Sprintf("round %d: ", k+1))
		for _, n := range r.Notes {
			if !slices.Contains(rep.Notes, n) {
				rep.Notes = append(rep.Notes, n)
			}
		}
		if r.Error != "" {
			rep.Error = fmt.Sprintf("round %d: %s", k+1, r.Error)
		}
	}
	for _, t := range first.Targets {
		var values []float64
		met := 0
		for _, r := range rounds {
			i := slices.IndexFunc(r.Targets, func(u Target) bool { return u.Name == t.Name })
			if i < 0 {
				continue
			}
			values = append(values, r.Targets[i].Value)
			if r.Targets[i].Met {
				met++
			}
		}
		t.Rounds, t.MetRounds = values, met
		t.Value = median(values)
		t.Met = t.meets(t.Value)
		rep.Targets = append(rep.Targets, t)
	}
	rep.Notes = append(rep.Notes, fmt.Sprintf("%d rounds: each target is judged on the median of the rounds' figures", len(rounds)))
	return rep
}

// median is the middle of vs, or the mean of the two middle ones (0 for none).
func median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(vs))
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}
