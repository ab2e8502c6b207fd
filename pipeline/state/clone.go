package state

import (
	"maps"
	"slices"
)

// Clone returns a deep copy of r. It is written out by hand because Snapshot
// is called on every engine transition and a JSON round trip of a 1,000-step
// run costs milliseconds; TestCloneCoversAllFields fails when a field is added
// to the types without being copied here.
func (r *Run) Clone() *Run {
	if r == nil {
		return nil
	}
	c := *r
	c.Params = maps.Clone(r.Params)
	c.SecretParams = slices.Clone(r.SecretParams)
	if r.Lease != nil {
		l := *r.Lease
		c.Lease = &l
	}
	if r.Steps != nil {
		c.Steps = make(map[string]*Step, len(r.Steps))
		for id, st := range r.Steps {
			c.Steps[id] = st.Clone()
		}
	}
	c.Order = slices.Clone(r.Order)
	c.Runners = slices.Clone(r.Runners)
	if r.HostLosses != nil {
		c.HostLosses = make([]HostLoss, len(r.HostLosses))
		for i, l := range r.HostLosses {
			l.Rerun = slices.Clone(l.Rerun)
			if l.Providers != nil {
				l.Providers = make(map[string]map[string]string, len(l.Providers))
				for id, out := range r.HostLosses[i].Providers {
					l.Providers[id] = maps.Clone(out)
				}
			}
			c.HostLosses[i] = l
		}
	}
	return &c
}

// Clone returns a deep copy of s.
func (s *Step) Clone() *Step {
	if s == nil {
		return nil
	}
	c := *s
	c.Needs = slices.Clone(s.Needs)
	c.Outputs = maps.Clone(s.Outputs)
	c.Resume = maps.Clone(s.Resume)
	if s.Released != nil {
		r := *s.Released
		c.Released = &r
	}
	if s.Attempts != nil {
		c.Attempts = make([]Attempt, len(s.Attempts))
		for i, a := range s.Attempts {
			if a.End != nil {
				e := *a.End
				a.End = &e
			}
			if a.ExitCode != nil {
				x := *a.ExitCode
				a.ExitCode = &x
			}
			c.Attempts[i] = a
		}
	}
	return &c
}
