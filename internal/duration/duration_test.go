package duration

import (
	"testing"
	"time"
)

func TestFormat(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"},
		{-time.Second, "0s"},
		{20 * time.Millisecond, "20ms"},
		{1234567 * time.Microsecond, "1.2s"},
		{1500 * time.Millisecond, "1.5s"},
		{2 * time.Second, "2s"},
		{9960 * time.Millisecond, "10s"},
		{45 * time.Second, "45s"},
		{59*time.Second + 600*time.Millisecond, "1m"},
		{2 * time.Minute, "2m"},
		{10 * time.Minute, "10m"},
		{time.Minute + 10*time.Second, "1m10s"},
		{90 * time.Minute, "1h30m"},
		{2 * time.Hour, "2h"},
		{time.Hour + 5*time.Second, "1h0m5s"},
		{50 * time.Hour, "50h"},
	} {
		if got := Format(c.d); got != c.want {
			t.Errorf("Format(%v) = %q, want %q", c.d, got, c.want)
		}
	}
}
