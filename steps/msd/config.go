package msd

import (
	"encoding/hex"
	"path"
	"strings"

	"github.com/gpipe/gpipe/steps/internal/param"
)

// Config is the decoded `with` of a fetch-msd step.
type Config struct {
	Task        Task
	Bucket, Key string
	MD5         string
	Dest        string
	Region      string
	Anonymous   bool // a public MSD bucket: no credentials needed
	Concurrency int
	PartSizeMiB int
}

// Source is the archive's s3:// URL.
func (c *Config) Source() string { return "s3://" + c.Bucket + "/" + c.Key }

// Decode applies defaults and checks values.
func Decode(with map[string]any) (*Config, error) {
	return param.Decode(Type, with, decode)
}

func decode(p *param.Reader) *Config {
	c := &Config{
		Dest:        strings.TrimSpace(p.String("dest", "/data")),
		Region:      strings.TrimSpace(p.String("region", "")),
		MD5:         strings.ToLower(strings.TrimSpace(p.String("md5", ""))),
		Concurrency: p.Int("concurrency", 8, 1, 64),
		PartSizeMiB: p.Int("part_size_mib", 16, 1, 1024),
	}
	if !strings.HasPrefix(c.Dest, "/") {
		p.Fail("dest", "%q: want an absolute path", c.Dest)
	}
	c.Dest = path.Clean(c.Dest)
	if t := strings.TrimSpace(p.Required("task")); t != "" {
		task, err := LookupTask(t)
		if err != nil {
			p.Fail("task", "%v", err)
		}
		c.Task = task
	}
	if src := strings.TrimSpace(p.String("source", "")); src == "" {
		c.Bucket, c.Key = Bucket, c.Task.Key()
	} else if rest, ok := strings.CutPrefix(src, "s3://"); !ok || !strings.Contains(rest, "/") {
		p.Fail("source", "%q: want s3://bucket/key", src)
	} else {
		c.Bucket, c.Key, _ = strings.Cut(rest, "/")
	}
	official := (c.Bucket == Bucket || c.Bucket == MirrorBucket) && c.Key == c.Task.Key()
	c.Anonymous = c.Bucket == Bucket || c.Bucket == MirrorBucket
	if c.Region == "" && c.Bucket == Bucket {
		c.Region = BucketRegion
	}
	if c.Region == "" && c.Bucket == MirrorBucket {
		c.Region = MirrorRegion
	}
	switch {
	case c.MD5 == "" && official && c.Task.MD5 != "":
		c.MD5 = c.Task.MD5
	case c.MD5 == "":
		p.Fail("md5", "required for %s (only the official archives have a known MD5)", c.Source())
	default:
		if b, err := hex.DecodeString(c.MD5); err != nil || len(b) != 16 {
			p.Fail("md5", "%q: want 32 hex digits", c.MD5)
		}
	}
	return c
}

// DescribeWith implements the steps' parameter description (see
// steps/internal/param): what fetch-msd's decoder declares about each key of
// with, and the error it returns for with.
func (f *FetchMSD) DescribeWith(with map[string]any) ([]param.Decl, error) {
	return param.Describe(Type, with, decode)
}
