package file

import (
	"bytes"
	"syscall"
	"testing"
	"time"
)

// BenchmarkAppend appends a step-sized record to a run's journal, as every
// group commit of a run does, and reports the CPU spent per Append
// (cpu-µs/op): the fsync's wait is not this process's work.
func BenchmarkAppend(b *testing.B) {
	ctx := b.Context()
	s := New(b.TempDir())
	v, err := s.Create(ctx, "r", []byte(`{"snapshot":true}`))
	if err != nil {
		b.Fatal(err)
	}
	rec := bytes.Repeat([]byte("x"), 700)
	var before, after syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	b.ResetTimer()
	for range b.N {
		if v, err = s.Append(ctx, "r", rec, v); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	cpu := func(r *syscall.Rusage) time.Duration { return time.Duration(r.Utime.Nano() + r.Stime.Nano()) }
	b.ReportMetric(float64((cpu(&after)-cpu(&before)).Microseconds())/float64(b.N), "cpu-µs/op")
}
