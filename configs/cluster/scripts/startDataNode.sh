#!/bin/sh
# Starts this host's data node(s) with the command line the host's agent will use once agents
# start nodes (the web manager's "start"): -mode datanode -home data -localSite <site>
# -controllerSite <the agent's controllerSite> -clusterConfig config/cluster.cfg. The data
# nodes are the cluster.nodes lines whose host is this host's agent's (agent.cfg localSite).
# The scripts' own directory, found before the cd (a relative $0 would not resolve after it).
scripts=$(dirname "$(readlink -f "$0")")
cd "$(dirname "$0")" || exit 1
bin=$(sh "$scripts/porpoise-bin.sh") || exit 1
mkdir -p log data
host=$(sed -n 's/^localSite=\([^:]*\):.*/\1/p' config/agent.cfg)
controller=$(sed -n 's/^controllerSite=//p' config/agent.cfg)
grep -i ',datanode *$' config/cluster.nodes | cut -d, -f1 | while read -r site; do
    [ "${site%%:*}" = "$host" ] || continue
    alias=${site##*:}
    nohup "$bin" -console 0 -mode datanode -home data -localSite "$site" -controllerSite "$controller" \
        -clusterConfig config/cluster.cfg -logFile "log/$alias.log" > "$alias.nohup" 2>&1 &
done
