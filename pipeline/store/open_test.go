package store

import (
	"errors"
	"strings"
	"testing"
)

func TestOpen(t *testing.T) {
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	tests := []struct{ url, name, err string }{
		{url: "file://.gpipe", name: "file://.gpipe"},
		{url: "file:///var/lib/gpipe", name: "file:///var/lib/gpipe"},
		{url: "runs/here", name: "file://runs/here"},
		{url: "/abs", name: "file:///abs"},
		{url: "s3://bucket/team/runs/", name: "s3://bucket/team/runs"},
		{url: "s3://bucket", name: "s3://bucket"},
		{url: "", err: "empty URL"},
		{url: "file://", err: "no directory"},
		{url: "s3://", err: "no bucket"},
		{url: "gs://bucket", err: `unknown scheme "gs"`},
	}
	for _, tc := range tests {
		s, err := Open(t.Context(), tc.url)
		if tc.err != "" {
			var bad *URLError
			if !errors.As(err, &bad) || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Open(%q): error %v, want a *URLError saying %q", tc.url, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Open(%q): %v", tc.url, err)
			continue
		}
		if s.String() != tc.name {
			t.Errorf("Open(%q).String() = %q, want %q", tc.url, s.String(), tc.name)
		}
	}
}
