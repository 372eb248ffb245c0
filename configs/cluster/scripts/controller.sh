#!/bin/bash
# controller.sh start|stop|restart — the tutorial's systemd helper (FAQ Q2) for the controller.
exec bash "$(dirname "$(readlink -f "$0")")/nodectl.sh" controller "$@"
