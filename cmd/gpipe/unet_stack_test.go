package main

import (
	"strconv"
	"testing"
)

// wantStackParams checks the parameters the run's provision step sent with
// CreateStack: the specs pass msd_source as the data bucket (the instance may
// read the private copy) and leave the zone to provision-stack, which takes
// one EC2 says offers dl1.24xlarge.
func (r *unetRun) wantStackParams(t *testing.T, want map[string]string) {
	t.Helper()
	for _, f := range r.e.aws.CFN.Creates() {
		got := map[string]string{}
		for i := 1; f.Get("Parameters.member."+strconv.Itoa(i)+".ParameterKey") != ""; i++ {
			got[f.Get("Parameters.member."+strconv.Itoa(i)+".ParameterKey")] = f.Get("Parameters.member." + strconv.Itoa(i) + ".ParameterValue")
		}
		if got["RunId"] != r.id {
			continue
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("stack parameter %s = %q, want %q", k, got[k], v)
			}
		}
		return
	}
	t.Errorf("no CreateStack of run %s", r.id)
}
