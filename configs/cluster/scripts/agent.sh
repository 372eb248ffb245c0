#!/bin/bash
# agent.sh start|stop|restart — the tutorial's systemd helper (FAQ Q2) for the agent.
exec bash "$(dirname "$(readlink -f "$0")")/nodectl.sh" agent "$@"
