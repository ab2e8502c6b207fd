package ssmhost

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"

	"github.com/gpipe/gpipe/steps/host"
)

func randomNonce() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}

// linePrefix starts every line the wrapper relays from the step; a line
// without it is the wrapper's own.
const linePrefix = "|"

func beginMarker(nonce string) string { return "::gpipe-outputs-" + nonce + "::" }
func endMarker(nonce string) string   { return "::gpipe-end-" + nonce + "::" }

// StepMarkerDir holds one empty file per gpipe step running on an instance,
// named by the process id of its wrapper: the idle watchdog's definition of
// "a gpipe step is running".
const StepMarkerDir = "/run/gpipe/steps"

// wrap turns a step's script into the AWS-RunShellScript command. The agent
// runs commands with sh, so the wrapper is POSIX sh; the step's body travels
// base64-encoded (no quoting or heredoc delimiter can break it) and runs with
// bash after the Habana environment is loaded: non-login shells miss
// /etc/profile.d/habanalabs.sh.
func wrap(s host.Script, nonce string) string {
	var b strings.Builder
	b.WriteString("#!/bin/sh\n# gpipe: step " + host.Quote(s.StepID) + "\n")
	b.WriteString("# shellcheck source=/dev/null\n")
	b.WriteString("if [ -f /etc/profile.d/habanalabs.sh ]; then . /etc/profile.d/habanalabs.sh; fi\n")
	b.WriteString("export HOME=\"${HOME:-/root}\"\n")
	keys := make([]string, 0, len(s.Env))
	for k := range s.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "export %s=%s\n", k, host.Quote(s.Env[k]))
	}
	// While this marker names the wrapper's live process, the instance's
	// idle watchdog (steps/aws/template/watchdog.sh) counts a gpipe step as
	// running. A wrapper that is killed leaves a marker naming a dead
	// process, which the watchdog ignores. Where the folder cannot be made
	// (not the built-in template's instance), the step runs all the same.
	b.WriteString("gpipe_markers=" + StepMarkerDir + "\n")
	b.WriteString("mkdir -p \"$gpipe_markers\" 2>/dev/null && : >\"$gpipe_markers/$$\" 2>/dev/null\n")
	b.WriteString("gpipe_dir=$(mktemp -d /tmp/gpipe.XXXXXX) || exit 1\n")
	b.WriteString("GPIPE_OUTPUT=\"$gpipe_dir/output\"; export GPIPE_OUTPUT; : >\"$GPIPE_OUTPUT\"\n")
	b.WriteString(NoticeEnv + "=\"$gpipe_dir/interrupt-notice\"; export " + NoticeEnv + "\n")
	fmt.Fprintf(&b, "echo %s | base64 -d >\"$gpipe_dir/script.sh\"\n", base64.StdEncoding.EncodeToString([]byte(s.Body)))
	b.WriteString(spotWatch(nonce))
	// Every line of the step's (and of its outputs) goes out behind
	// linePrefix: CloudWatch Logs has no empty events, so the agent drops
	// empty lines, which would lose blank lines of the log and of heredoc
	// outputs; and the wrapper's own lines (markers) are told apart by
	// their lack of it. sh has no PIPESTATUS: the status goes through a file.
	b.WriteString("gpipe_relay() { while IFS= read -r gpipe_l || [ -n \"$gpipe_l\" ]; do printf '" + linePrefix + "%s\\n' \"$gpipe_l\"; done; }\n")
	b.WriteString("{ bash \"$gpipe_dir/script.sh\" 2>&1; echo \"$?\" >\"$gpipe_dir/rc\"; } | gpipe_relay\n")
	b.WriteString("gpipe_rc=$(cat \"$gpipe_dir/rc\" 2>/dev/null) || gpipe_rc=1\n")
	b.WriteString(stopWatch)
	fmt.Fprintf(&b, "echo; echo %s; gpipe_relay <\"$GPIPE_OUTPUT\"; echo; echo %s\n", beginMarker(nonce), endMarker(nonce))
	b.WriteString("rm -rf \"$gpipe_dir\"; rm -f \"$gpipe_markers/$$\"\n")
	b.WriteString("exit \"$gpipe_rc\"\n")
	return b.String()
}
