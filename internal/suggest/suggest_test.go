package suggest

import "testing"

func TestClosest(t *testing.T) {
	cmds := []string{"run", "resume", "runs", "logs", "status", "validate", "plan"}
	for _, tc := range []struct {
		name string
		cand []string
		want string
	}{
		{"rnu", cmds, "run"},       // a swap of neighbours is one edit
		{"reusme", cmds, "resume"}, // two edits in a longer name
		{"stauts", cmds, "status"}, // two edits
		{"validat", cmds, "validate"},
		{"xyz", cmds, ""},     // nothing near
		{"run", cmds, "runs"}, // an exact match is not suggested, its neighbour is
		{"step", []string{"steps", "state"}, "steps"},
		{"conccurency", []string{"concurrency", "cost"}, "concurrency"},
	} {
		if got := Closest(tc.name, tc.cand); got != tc.want {
			t.Errorf("Closest(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestDidYouMean(t *testing.T) {
	if got, want := DidYouMean("plna", []string{"plan"}), ` (did you mean "plan"?)`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := DidYouMean("zzzzzz", []string{"plan"}); got != "" {
		t.Errorf("got %q, want nothing", got)
	}
}

func TestDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"abc", "abc", 0}, {"rnu", "run", 1}, {"ab", "ba", 1}, {"ca", "abc", 3}, {"kitten", "sitting", 3}, {"", "ab", 2}} {
		if got := Distance(tc.a, tc.b); got != tc.d {
			t.Errorf("Distance(%q,%q) = %d, want %d", tc.a, tc.b, got, tc.d)
		}
	}
}
