package state

import (
	"crypto/rand"
	"encoding/hex"
	"time"
)

func newLease(opt LeaseOptions, now time.Time) *Lease {
	return &Lease{
		Owner:    opt.Owner,
		Host:     opt.Host,
		PID:      opt.PID,
		Acquired: now,
		Renewed:  now,
		Expires:  now.Add(opt.TTL),
	}
}

// mayTakeOver applies the lease rules to a loaded run; a nil error means opt's
// runner may take the lease.
func mayTakeOver(r *Run, opt LeaseOptions, now time.Time) error {
	l := r.Lease
	switch {
	case l == nil, l.Owner == opt.Owner, opt.Force, !now.Before(l.Expires):
		return nil
	case l.Host == opt.Host && l.PID != opt.PID && !opt.ProcessAlive(l.PID):
		// The usual case after a crash: the holder ran here and is gone.
		return nil
	}
	return &HeldError{RunID: r.ID, Lease: *l}
}

// CheckHeld returns a *HeldError when a live runner other than opt's drives r,
// by the same rules Acquire applies: a lease that expired, or whose holder ran
// on this host and is gone, holds nothing. Commands that act on a run without
// driving it (teardown, gc) use it.
func CheckHeld(r *Run, opt LeaseOptions) error {
	opt = opt.withDefaults()
	return mayTakeOver(r, opt, opt.Now())
}

func randomSuffix() string {
	var b [4]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
