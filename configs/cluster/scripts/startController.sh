#!/bin/sh
# Starts this host's controller, as the tutorial's startController.sh does. Run it from the
# host's directory (P1, P2 or P3: the tutorial's clusterDemo).
# The scripts' own directory, found before the cd (a relative $0 would not resolve after it).
scripts=$(dirname "$(readlink -f "$0")")
cd "$(dirname "$0")" || exit 1
bin=$(sh "$scripts/porpoise-bin.sh") || exit 1
mkdir -p log data
nohup "$bin" -console 0 -mode controller -home data -script dolphindb.dos -config config/controller.cfg \
    -logFile log/controller.log -nodesFile config/cluster.nodes -clusterConfig config/cluster.cfg \
    > controller.nohup 2>&1 &
