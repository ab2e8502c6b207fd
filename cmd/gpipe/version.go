package main

import (
	"context"
	"flag"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// releaseVersion is set by the release build (-ldflags "-X main.releaseVersion=v1.2.3",
// see .goreleaser.yaml). It is empty in every other build, where the version
// comes from the module's build info instead.
var releaseVersion string

// buildVersion describes this binary: the release version when the release
// workflow built it, else the module version (set by `go install
// module@version`, "(devel)" in a checkout), followed by the VCS revision,
// its time and a dirty mark when the Go toolchain recorded them. It never
// answers a bare "dev": a bug report must say which code ran.
func buildVersion(release string, info *debug.BuildInfo, ok bool) string {
	version := release
	var rev, when string
	var dirty bool
	if ok && info != nil {
		if version == "" {
			version = info.Main.Version
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				when = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	if version == "" {
		version = "(unknown)"
	}
	var details []string
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if dirty {
			rev += "+dirty"
		}
		details = append(details, "revision "+rev)
	}
	if when != "" {
		details = append(details, when)
	}
	details = append(details, runtime.Version(), runtime.GOOS+"/"+runtime.GOARCH)
	return fmt.Sprintf("%s (%s)", version, strings.Join(details, ", "))
}

func (a *App) setupVersion(fs *flag.FlagSet) handler {
	return func(ctx context.Context, fs *flag.FlagSet, args []string) error {
		if err := wantArgs(fs, args, 0, 0); err != nil {
			return err
		}
		info, ok := debug.ReadBuildInfo()
		fmt.Fprintf(a.Stdout, "gpipe %s\n", buildVersion(releaseVersion, info, ok))
		return nil
	}
}
