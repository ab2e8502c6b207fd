package report

import (
	"maps"
	"slices"
	"sort"
	"time"

	"github.com/gpipe/gpipe/pipeline/state"
)

// Usage is one stretch of a billable machine's life: from when a provision
// step's machine started running to when it was deleted, lost under a
// running step (a host loss), or now while it is up. A run whose host was
// lost and replaced has one usage per machine.
type Usage struct {
	Step         string // the provision step that made it
	InstanceType string // Resources.Instance of the step, for that machine
	Region       string
	// Outputs are the step's outputs for that machine: its current ones, or
	// for a lost machine those its host loss kept (state.HostLoss.Providers).
	Outputs    map[string]string
	Start, End time.Time
	Running    bool            // still up: End is now
	Lost       *state.HostLoss // the loss that ended it; nil otherwise
}

// UsagePricer prices a stretch of machine time by how the machine was
// bought (on demand, spot, in which zone), which the step types know
// (steps/aws). A Pricer that implements it is asked for each usage; other
// Pricers price every hour at HourlyPrice.
type UsagePricer interface {
	PriceUsage(u Usage) (UsagePrice, bool)
}

// UsagePrice is what a UsagePricer says one usage cost.
type UsagePrice struct {
	Market string // how it was bought, as the pricer names it; "" unknown
	Zone   string // where it ran, "" unknown
	// PricePerHour is the (average) price of its hours; Basis says where it
	// comes from ("spot price history", "assumed: …"), for reports to say.
	PricePerHour float64
	Basis        string
	USD          float64
	// OnDemandUSD is what the same hours cost at the on-demand price, the
	// reference spot saves against; nil when unknown.
	OnDemandUSD *float64
	// Note names a billing rule that changed USD (a machine interrupted by
	// its provider in its first hour is not charged).
	Note string
}

// Usages lists a run's machine time, ordered by start: every machine its
// provision steps made, the lost ones included. Without opt.Resources it
// is empty.
func Usages(run *state.Run, opt Options) []Usage {
	res := opt.Resources
	if res == nil {
		return nil
	}
	now := time.Now()
	if opt.Now != nil {
		now = opt.Now()
	}
	var out []Usage
	lostOuts := map[string][]map[string]string{}
	for i := range run.HostLosses {
		l := &run.HostLosses[i]
		for _, id := range slices.Sorted(maps.Keys(l.Providers)) {
			st := run.Steps[id]
			if st == nil || !res.Provisions(st.Type) {
				continue
			}
			outs := l.Providers[id]
			lostOuts[id] = append(lostOuts[id], outs)
			start, ok := launchedBefore(st, outs, l.Start)
			if !ok {
				continue
			}
			typ, region := res.Instance(run, &state.Step{ID: id, Type: st.Type, Outputs: outs})
			end := l.Time
			if end.Before(start) {
				end = start
			}
			out = append(out, Usage{Step: id, InstanceType: typ, Region: region, Outputs: outs, Start: start, End: end, Lost: l})
		}
	}
	for _, id := range stepOrder(run) {
		st := run.Steps[id]
		if !res.Provisions(st.Type) {
			continue
		}
		// A loss not replaced leaves the step's outputs naming the lost
		// machine: it was counted to the loss above.
		if slices.ContainsFunc(lostOuts[id], func(o map[string]string) bool { return maps.Equal(o, st.Outputs) }) {
			continue
		}
		start, ok := launched(st)
		if !ok {
			continue
		}
		end, up := released(run, res, id, now)
		if end.Before(start) {
			end = start
		}
		typ, region := res.Instance(run, st)
		out = append(out, Usage{Step: id, InstanceType: typ, Region: region, Outputs: st.Outputs, Start: start, End: end, Running: up})
	}
	sort.SliceStable(out, func(i, k int) bool { return out[i].Start.Before(out[k].Start) })
	return out
}

// launchedBefore is when a lost machine started running: the launch time
// its provision step's outputs recorded, else the end of the step's last
// attempt that finished before the lost attempt started (no earlier than
// the launch).
func launchedBefore(st *state.Step, outs map[string]string, lostStart time.Time) (time.Time, bool) {
	if t, err := time.Parse(time.RFC3339, outs[OutputLaunchTime]); err == nil {
		return t, true
	}
	var best *time.Time
	for _, a := range st.Attempts {
		if a.End != nil && !a.End.After(lostStart) && (best == nil || a.End.After(*best)) {
			best = a.End
		}
	}
	if best == nil {
		return time.Time{}, false
	}
	return *best, true
}
