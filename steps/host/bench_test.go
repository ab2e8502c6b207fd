package host

import (
	"context"
	"io"
	"os"
	"syscall"
	"testing"
	"time"
)

// BenchmarkLocalExec runs `true` steps two at a time, as bench/dag.sh's
// gpipe -j2 does, and reports the CPU this process spent per step apart from
// bash's own (self-µs/op; children-µs/op is bash): what Local adds to a
// short step.
func BenchmarkLocalExec(b *testing.B) {
	l := &Local{TempDir: b.TempDir(), BaseEnv: os.Environ()}
	s := Script{Body: "set -eo pipefail\ntrue\n", Log: io.Discard, Token: "bench/s/1"}
	var before, after syscall.Rusage
	b.SetParallelism(1)
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	var cb, ca syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &cb)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := l.Exec(context.Background(), s); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ca)
	cpu := func(r *syscall.Rusage) time.Duration {
		return time.Duration(r.Utime.Nano() + r.Stime.Nano())
	}
	b.ReportMetric(float64((cpu(&after)-cpu(&before)).Microseconds())/float64(b.N), "self-µs/op")
	b.ReportMetric(float64((cpu(&ca)-cpu(&cb)).Microseconds())/float64(b.N), "children-µs/op")
}
