package pipeline

import (
	"errors"
	"fmt"
)

// HostLostError says that the machine a step ran on is gone (a spot
// interruption, a terminated instance): the step did not fail, its host did.
// Retrying on the same host cannot help, so it is Permanent for the
// ordinary retry policy; an engine that may replace the host (spec
// max_host_losses) reruns the steps that made and prepared the host instead.
type HostLostError struct {
	Host Host // the host as the step saw it; Address names the machine lost
	// Zone is where the machine was (an availability zone), "" when unknown.
	Zone  string
	Cause error // what showed the loss: a notice, the machine's state
}

func (e *HostLostError) Error() string {
	s := "host " + e.Host.Name
	if e.Host.Address != "" && e.Host.Address != e.Host.Name {
		s += " (" + e.Host.Address + ")"
	}
	s += " lost"
	if e.Zone != "" {
		s += " in " + e.Zone
	}
	if e.Cause != nil {
		s += ": " + e.Cause.Error()
	}
	return s
}

func (e *HostLostError) Unwrap() error { return e.Cause }

// Permanent: the same host will not come back.
func (e *HostLostError) Permanent() bool { return true }

// AsHostLost returns the *HostLostError err wraps, or nil.
func AsHostLost(err error) *HostLostError {
	var hl *HostLostError
	if errors.As(err, &hl) {
		return hl
	}
	return nil
}

// ErrHostLostLimit is wrapped by the error of a step whose host was lost
// once more than the spec's max_host_losses allows.
var ErrHostLostLimit = errors.New("too many host losses")

// HostLossLimitError is a step's failure when its host was lost and the run
// may replace no more hosts.
type HostLossLimitError struct {
	Lost  *HostLostError
	Max   int // the spec's max_host_losses
	Count int // losses in this run invocation, this one included
}

func (e *HostLossLimitError) Error() string {
	if e.Max == 0 {
		return fmt.Sprintf("%v; not replaced: max_host_losses is 0 (set it to rerun the host's provisioning and this step)", e.Lost)
	}
	return fmt.Sprintf("%v; not replaced: this is host loss %d and max_host_losses is %d", e.Lost, e.Count, e.Max)
}

func (e *HostLossLimitError) Unwrap() []error { return []error{e.Lost, ErrHostLostLimit} }
