// Command fetchmsd runs gpipe's fetch-msd library alone, for
// bench/fetch-msd.sh: it fetches s3://BUCKET/KEY (endpoint and credentials
// from the SDK's usual environment, e.g. AWS_ENDPOINT_URL_S3) into DEST,
// verifying MD5, and prints the elapsed seconds. With -null it instead reads
// the object with one plain GetObject into io.Discard (the network floor).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/gpipe/gpipe/steps/msd"
)

func main() {
	source := flag.String("source", "", "s3://bucket/key of the archive")
	sum := flag.String("md5", "", "expected MD5 (hex)")
	dest := flag.String("dest", "", "directory the task folder is extracted into")
	task := flag.String("task", "", "the archive's top folder (TaskNN_Name)")
	conc := flag.Int("concurrency", 8, "parallel ranged GETs")
	part := flag.Int("part-size-mib", 16, "MiB per ranged GET")
	null := flag.Bool("null", false, "one plain GetObject to io.Discard instead")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the fetch to this file")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "fetchmsd: cpuprofile:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *source, *sum, *dest, *task, *conc, *part, *null); err != nil {
		fmt.Fprintln(os.Stderr, "fetchmsd:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

func run(ctx context.Context, source, sum, dest, task string, conc, part int, null bool) error {
	rest, ok := strings.CutPrefix(source, "s3://")
	bucket, key, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 {
		return fmt.Errorf("-source %q: want s3://bucket/key", source)
	}
	client, err := msd.SDKClient(ctx, "", false)
	if err != nil {
		return err
	}
	start := time.Now()
	if null {
		out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
		if err != nil {
			return err
		}
		defer out.Body.Close()
		if _, err := io.Copy(io.Discard, out.Body); err != nil {
			return err
		}
	} else {
		if _, err := msd.Fetch(ctx, client, msd.Options{Bucket: bucket, Key: key, MD5: sum, Dest: dest, TaskName: task,
			Concurrency: conc, PartSize: int64(part) << 20, Log: os.Stderr}); err != nil {
			return err
		}
	}
	fmt.Printf("%.3f\n", time.Since(start).Seconds())
	return nil
}
