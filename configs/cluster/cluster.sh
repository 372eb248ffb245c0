#!/bin/sh
# The tutorial's whole topology on 127.0.0.80-82 in one command:
#   sh configs/cluster/cluster.sh up       3 controllers and 3 agents (startController.sh,
#                                          startagent.sh on P1-P3), then the data and compute
#                                          nodes started by the agents on the leader's command
#                                          (startDataNode), waiting until every node is online
#   sh configs/cluster/cluster.sh status   every node's state, from the leader's metadata
#   sh configs/cluster/cluster.sh down     stopAllNode.sh on every host
# Each host runs from its own directory here (P1, P2, P3: config/, data/, log/).
here=$(dirname "$(readlink -f "$0")")
hosts="P1 P2 P3"
ips="127.0.0.80 127.0.0.81 127.0.0.82"
nodes='"datanode1","datanode2","datanode3","computenode1","computenode2","computenode3"'

# The leader controller's host:port, from any controller's /raft.
leader() {
    for ip in $ips; do
        site=$(curl -s --max-time 1 "http://$ip:8800/raft" | sed -n 's/.*"leaderSite":"\([^"]*\)".*/\1/p')
        if [ -n "$site" ]; then
            echo "${site%:*}"
            return 0
        fi
    done
    return 1
}

# How many of the named nodes the leader's metadata has live.
live() {
    l=$(leader) || { echo 0; return; }
    curl -s --max-time 2 "http://$l/nodes" | grep -c -E "^($1),.*,true$"
}

# Waits up to 60 s until `live "$1"` reaches $2.
wait_live() {
    i=0
    while [ "$(live "$1")" -lt "$2" ]; do
        i=$((i + 1))
        if [ $i -gt 300 ]; then
            echo "cluster.sh: timed out waiting for $3" >&2
            return 1
        fi
        sleep 0.2
    done
}

case "$1" in
up)
    for h in $hosts; do
        sh "$here/$h/startController.sh" || exit 1
        sh "$here/$h/startagent.sh" || exit 1
    done
    wait_live "agent1|agent2|agent3" 3 "a leader and the three agents" || exit 1
    out=$(curl -s --max-time 30 -X POST --data-binary "login(\`admin, \`123456)
startDataNode([$nodes])" "http://$(leader)/api/execute")
    case "$out" in
    *'"ok":true'*) ;;
    *) echo "cluster.sh: startDataNode failed: $out" >&2; exit 1 ;;
    esac
    wait_live "datanode1|datanode2|datanode3|computenode1|computenode2|computenode3" 6 \
        "the data and compute nodes" || exit 1
    l=$(leader)
    echo "the cluster is up: leader controller $l; data nodes on :8802, compute nodes on :8803"
    echo "cluster manager: http://$l"
    ;;
status)
    l=$(leader) || { echo "no controller answers: the cluster is down"; exit 1; }
    echo "leader controller: $l"
    curl -s --max-time 2 "http://$l/nodes" | while IFS=, read -r alias host port role state; do
        printf '%-14s %-11s %s:%s  %s\n' "$alias" "$role" "$host" "$port" \
            "$( [ "$state" = true ] && echo online || echo offline)"
    done
    ;;
down)
    for h in $hosts; do
        sh "$here/$h/stopAllNode.sh"
    done
    # Until every process of the hosts' directories has exited (they stop at once on SIGTERM).
    i=0
    while :; do
        left=0
        for pid in $(pgrep -x porpoise 2>/dev/null); do
            case "$(readlink -f /proc/$pid/cwd 2>/dev/null)" in
            "$here"/P*) left=$((left + 1)) ;;
            esac
        done
        [ $left -eq 0 ] && break
        i=$((i + 1))
        if [ $i -gt 100 ]; then
            echo "cluster.sh: $left processes still running" >&2
            exit 1
        fi
        sleep 0.1
    done
    echo "the cluster is down"
    ;;
*)
    echo "usage: sh configs/cluster/cluster.sh up|status|down" >&2
    exit 2
    ;;
esac
