#!/bin/sh
# Starts this host's agent, as the tutorial's startagent.sh does.
# The scripts' own directory, found before the cd (a relative $0 would not resolve after it).
scripts=$(dirname "$(readlink -f "$0")")
cd "$(dirname "$0")" || exit 1
bin=$(sh "$scripts/porpoise-bin.sh") || exit 1
mkdir -p log data
nohup "$bin" -console 0 -mode agent -home data -script dolphindb.dos -config config/agent.cfg \
    -logFile log/agent.log > agent.nohup 2>&1 &
