package main

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestHint(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{nil, ""},
		{errors.New("exit status 3"), ""},
		{fmt.Errorf("describe stack x: %w", errors.New("operation error CloudFormation: DescribeStacks, get identity: get credentials: failed to refresh cached credentials, no EC2 IMDS role found")), "AWS_PROFILE"},
	}
	for _, tt := range tests {
		if got := hint(tt.err); (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
			t.Errorf("hint(%v) = %q, want it to mention %q", tt.err, got, tt.want)
		}
	}
}
