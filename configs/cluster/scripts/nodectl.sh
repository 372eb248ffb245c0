#!/bin/bash
# nodectl.sh controller|agent start|stop|restart — what the tutorial's controller.sh and
# agent.sh do (FAQ Q2), for Porpoise. Run from the host's directory (the tutorial's clusterDemo).
role=$1
action=$2
workDir=$PWD
bin=$(sh "$(dirname "$(readlink -f "$0")")/porpoise-bin.sh") || exit 1

case $role in
    controller) args="-config config/controller.cfg -logFile log/controller.log -nodesFile config/cluster.nodes -clusterConfig config/cluster.cfg" ;;
    agent) args="-config config/agent.cfg -logFile log/agent.log" ;;
    *) echo "usage: $0 controller|agent start|stop|restart" >&2; exit 2 ;;
esac

start(){
    cd "${workDir}" && mkdir -p log data
    # shellcheck disable=SC2086
    nohup "$bin" -console 0 -mode "$role" -home data -script dolphindb.dos $args > "$role.nohup" 2>&1 &
}

stop(){
    for pid in $(pgrep -x porpoise); do
        if [ "$(readlink -f /proc/$pid/cwd)" = "$(readlink -f "$workDir")" ] && tr '\0' ' ' < /proc/$pid/cmdline | grep -q -- "-mode $role"; then
            kill -TERM "$pid"
        fi
    done
}

case $action in
    start) start ;;
    stop) stop ;;
    restart) stop; start ;;
    *) echo "usage: $0 $role start|stop|restart" >&2; exit 2 ;;
esac
