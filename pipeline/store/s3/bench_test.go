package s3

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/gpipe/gpipe/internal/testtool"
	"github.com/gpipe/gpipe/pipeline/state"
	"github.com/gpipe/gpipe/pipeline/store/file"
)

// countSaves counts the Saves a Journal makes.
type countSaves struct {
	state.Store
	n atomic.Int64
}

func (c *countSaves) Save(ctx context.Context, runID string, doc []byte, v state.Version) (state.Version, error) {
	c.n.Add(1)
	return c.Store.Save(ctx, runID, doc, v)
}

// BenchmarkJournalUpdate compares Journal.Update on the file store and on S3
// (local versitygw, through a counting proxy), one updater at a time and with
// 32 concurrent updaters as when many steps finish together. It reports
// saves/update and, for S3, PUTs/update reaching the server.
//
//	go test -run '^$' -bench JournalUpdate -benchtime 2s ./pipeline/store/s3/
func BenchmarkJournalUpdate(b *testing.B) {
	srv := testtool.Versitygw(b)
	proxy := testtool.NewFaultProxy(b, srv.Endpoint, 0, 1)
	s3s := openTest(b, srv, proxy.URL, "s3://bench/runs", Options{})
	makeBucket(b, s3s)
	stores := []struct {
		name string
		s    state.Store
	}{
		{"file", file.New(b.TempDir())},
		{"s3", s3s},
	}
	n := 0
	for _, st := range stores {
		for _, par := range []int{1, 32} {
			b.Run(fmt.Sprintf("%s/updaters=%d", st.name, par), func(b *testing.B) {
				n++
				cs := &countSaves{Store: st.s}
				j, err := state.Create(b.Context(), cs, &state.Run{ID: fmt.Sprintf("bench-%d", n), Steps: map[string]*state.Step{}}, state.LeaseOptions{})
				if err != nil {
					b.Fatal(err)
				}
				defer j.Close(context.Background())
				cs.n.Store(0)
				puts0 := proxy.Puts()
				var seq atomic.Int64
				update := func() {
					id := fmt.Sprintf("step-%d", seq.Add(1)%1000)
					if err := j.Update(b.Context(), func(r *state.Run) {
						r.Steps[id] = &state.Step{ID: id, Status: state.StepSucceeded, Outputs: map[string]string{"k": "v"}}
					}); err != nil {
						b.Error(err)
					}
				}
				b.ResetTimer()
				if par == 1 {
					for b.Loop() {
						update()
					}
				} else {
					b.SetParallelism((par + 1) / 2) // 2 cores here: 16 goroutines per core
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							update()
						}
					})
				}
				b.StopTimer()
				updates := float64(seq.Load())
				b.ReportMetric(float64(cs.n.Load())/updates, "saves/update")
				if st.name == "s3" {
					b.ReportMetric(float64(proxy.Puts()-puts0)/updates, "PUTs/update")
				}
			})
		}
	}
}
