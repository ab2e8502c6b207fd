#!/bin/sh
# gpipe idle watchdog. The built-in template's UserData installs it with a
# systemd timer that runs it every minute. When no gpipe step has been running
# on this instance for GPIPE_IDLE_MINUTES, it powers the instance off, which
# (InstanceInitiatedShutdownBehavior: terminate) terminates it: an instance
# whose runner died stops billing once its last step ends.
#
# A gpipe step is running while a file in DIR/steps is named by the process id
# of a live process: the SSM wrapper of every step creates it when the step
# starts and removes it when the step ends (steps/aws/ssmhost/wrap.go). A
# detached training step keeps its wrapper, and so the instance, alive; a
# killed wrapper leaves a file naming a dead process, which does not count.
#
# The environment can replace the folder (GPIPE_WATCHDOG_DIR, default
# /run/gpipe), /proc (GPIPE_PROC), the clock in seconds (GPIPE_NOW) and the
# power-off command (GPIPE_POWEROFF), so tests run it with fake ones.
# (No braces in parameter expansions: the template embeds this file in an
# Fn::Sub string, where they would be CloudFormation substitutions.)
idle=$GPIPE_IDLE_MINUTES
dir=$GPIPE_WATCHDOG_DIR
proc=$GPIPE_PROC
now=$GPIPE_NOW
poweroff=$GPIPE_POWEROFF
[ -n "$dir" ] || dir=/run/gpipe
[ -n "$proc" ] || proc=/proc
[ -n "$now" ] || now=$(date +%s)
[ -n "$poweroff" ] || poweroff="systemctl poweroff"
case "$idle" in
'' | *[!0-9]*)
  echo "gpipe-watchdog: GPIPE_IDLE_MINUTES=$idle: want whole minutes" >&2
  exit 2
  ;;
esac
if [ "$idle" -eq 0 ]; then
  exit 0 # idle_timeout 0: only max_lifetime guards the instance
fi
mkdir -p "$dir/steps" || exit 1

busy=no
for marker in "$dir"/steps/*; do
  [ -e "$marker" ] || continue
  pid=$(basename "$marker")
  case "$pid" in
  '' | *[!0-9]*) continue ;;
  esac
  if [ -d "$proc/$pid" ]; then
    busy=yes
  else
    rm -f "$marker"
  fi
done

last=$(cat "$dir/last-busy" 2>/dev/null)
case "$busy:$last" in
yes:* | *: | *:*[!0-9]*)
  # Busy now, or the first look since boot: idle time starts now.
  echo "$now" >"$dir/last-busy"
  exit 0
  ;;
esac
if [ $((now - last)) -ge $((idle * 60)) ]; then
  echo "gpipe-watchdog: no gpipe step has run for $(((now - last) / 60)) minutes (idle_timeout $idle minutes): powering off"
  # The command is words to split (systemctl poweroff).
  # shellcheck disable=SC2086
  exec $poweroff
fi
