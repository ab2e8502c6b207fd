// Package steps builds gpipe's step types and wires them to their hosts. The
// registry is constructed explicitly from its dependencies: no step type
// registers itself in an init function.
package steps

import (
	"fmt"
	"slices"
	"strings"

	"github.com/gpipe/gpipe/pipeline"
	"github.com/gpipe/gpipe/steps/aws"
	"github.com/gpipe/gpipe/steps/host"
	"github.com/gpipe/gpipe/steps/msd"
	"github.com/gpipe/gpipe/steps/shell"
	"github.com/gpipe/gpipe/steps/train"
)

// Registry maps step type names to runners. It implements pipeline.Registry.
type Registry struct {
	types map[string]pipeline.Runner
}

// Lookup returns the runner of a step type.
func (r *Registry) Lookup(stepType string) (pipeline.Runner, bool) {
	run, ok := r.types[stepType]
	return run, ok
}

// Types lists the registered step types.
func (r *Registry) Types() []string {
	out := make([]string, 0, len(r.types))
	for t := range r.types {
		out = append(out, t)
	}
	return out
}

// KeyOutputs lists the outputs the step types declare worth a column in a
// report (a runner with a KeyOutputs() []string method declares them), in
// the order of the types' names, each once.
func (r *Registry) KeyOutputs() []string {
	names := make([]string, 0, len(r.types))
	for t := range r.types {
		names = append(names, t)
	}
	slices.Sort(names)
	var keys []string
	for _, t := range names {
		d, ok := r.types[t].(interface{ KeyOutputs() []string })
		if !ok {
			continue
		}
		for _, k := range d.KeyOutputs() {
			if !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
	}
	return keys
}

// Executors picks a host executor by address: "local" runs here, "ssm:<id>"
// runs through SSM Run Command.
type Executors struct {
	Local *host.Local
	// SSM returns the SSM executor of a host; it is only called when a step
	// runs on an SSM host, so local pipelines never load AWS configuration.
	SSM func(h pipeline.Host) (host.Executor, error)
}

// For returns the executor for h.
func (e *Executors) For(h pipeline.Host) (host.Executor, error) {
	switch {
	case host.IsLocal(h.Address):
		return e.Local, nil
	case strings.HasPrefix(h.Address, aws.HostScheme().Prefix):
		if e.SSM == nil {
			return nil, fmt.Errorf("host %s: SSM hosts are not available here", h.Name)
		}
		return e.SSM(h)
	default:
		return nil, fmt.Errorf("host %s: unknown address %q (want local or %s)", h.Name, h.Address, aws.HostScheme().Usage)
	}
}

// NewRegistry builds the registry of every step type gpipe knows. AWS
// configuration is loaded only when an AWS step or an SSM host is used.
func NewRegistry(ex *Executors, cloud *aws.Steps) *Registry {
	types := map[string]pipeline.Runner{
		"shell":                &shell.Step{Executors: ex},
		aws.TypeProvisionStack: cloud.ProvisionStack(),
		aws.TypeTeardown:       cloud.Teardown(),
	}
	types[msd.Type] = msd.New(ex)
	for name, r := range train.New(ex) {
		types[name] = r
	}
	return &Registry{types: types}
}
