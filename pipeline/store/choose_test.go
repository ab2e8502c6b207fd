package store

import "testing"

// TestChooseURL: --state beats $GPIPE_STATE, which beats the spec's state:,
// which beats file://.gpipe (the order the README and --state's help give).
func TestChooseURL(t *testing.T) {
	cases := []struct{ flag, env, spec, want string }{
		{"s3://f/p", "s3://e/p", "s3://s/p", "s3://f/p"},
		{"", "s3://e/p", "s3://s/p", "s3://e/p"},
		{"", "", "s3://s/p", "s3://s/p"},
		{"", "", "", "file://.gpipe"},
		{"dir", "", "", "dir"},
	}
	for _, c := range cases {
		if got := ChooseURL(c.flag, c.env, c.spec); got != c.want {
			t.Errorf("ChooseURL(%q, %q, %q) = %q, want %q", c.flag, c.env, c.spec, got, c.want)
		}
	}
}
