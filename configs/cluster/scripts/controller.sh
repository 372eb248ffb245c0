#!/bin/bash
# controller.sh start|stop|restart — the tutorial's systemd helper (FAQ Q2) for Porpoise.
workDir=$PWD
bin=$(sh "$(dirname "$(readlink -f "$0")")/porpoise-bin.sh") || exit 1

start(){
    cd "${workDir}" && mkdir -p log data
    nohup "$bin" -console 0 -mode controller -home data -script dolphindb.dos -config config/controller.cfg -logFile log/controller.log -nodesFile config/cluster.nodes -clusterConfig config/cluster.cfg > controller.nohup 2>&1 &
}

stop(){
    for pid in $(pgrep -x porpoise); do
        if [ "$(readlink -f /proc/$pid/cwd)" = "$(readlink -f "$workDir")" ] && tr '\0' ' ' < /proc/$pid/cmdline | grep -q -- '-mode controller'; then
            kill -TERM "$pid"
        fi
    done
}

case $1 in
    start) start ;;
    stop) stop ;;
    restart) stop; start ;;
    *) echo "usage: $0 start|stop|restart" >&2; exit 2 ;;
esac
