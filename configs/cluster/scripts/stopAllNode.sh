#!/bin/sh
# Stops every porpoise process started from this host's directory (controller, agent, and the
# data and compute nodes the agent started), as the tutorial's stopAllNode.sh does.
cd "$(dirname "$0")" || exit 1
here=$(pwd -P)
for pid in $(pgrep -x porpoise 2>/dev/null); do
    if [ "$(readlink -f /proc/$pid/cwd 2>/dev/null)" = "$here" ]; then
        kill -TERM "$pid"
    fi
done
