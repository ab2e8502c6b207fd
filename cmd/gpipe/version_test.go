package main

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestBuildVersion(t *testing.T) {
	vcs := []debug.BuildSetting{
		{Key: "vcs", Value: "git"},
		{Key: "vcs.revision", Value: "f521146538b9eb531cb8d4905e1b8af651625353"},
		{Key: "vcs.time", Value: "2026-11-27T07:36:09Z"},
		{Key: "vcs.modified", Value: "true"},
	}
	platform := runtime.Version() + ", " + runtime.GOOS + "/" + runtime.GOARCH
	tests := []struct {
		name    string
		release string
		info    *debug.BuildInfo
		want    string
	}{
		{"release build", "v1.4.0", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}},
			"v1.4.0 (" + platform + ")"},
		{"go install module@version", "", &debug.BuildInfo{Main: debug.Module{Version: "v1.4.0"}},
			"v1.4.0 (" + platform + ")"},
		{"checkout with uncommitted changes", "", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs},
			"(devel) (revision f521146538b9+dirty, 2026-11-27T07:36:09Z, " + platform + ")"},
		{"no build info", "", nil, "(unknown) (" + platform + ")"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := buildVersion(tt.release, tt.info, tt.info != nil)
			if got != tt.want {
				t.Errorf("buildVersion = %q, want %q", got, tt.want)
			}
			if strings.Contains(got, "dev ") || got == "dev" {
				t.Errorf("buildVersion = %q: a bare dev says nothing about the code", got)
			}
		})
	}
}
