#!/bin/sh
# poolserver package: on removal (not on upgrade) stop and disable poolserver.service.
# Runs as deb prerm (remove|upgrade|...) and rpm %preun (0 removal, 1 upgrade).
set -e

case "$1" in
remove | 0) ;;
*) exit 0 ;;
esac
if [ -d /run/systemd/system ]; then
	systemctl stop poolserver.service >/dev/null 2>&1 || true
fi
if command -v deb-systemd-helper >/dev/null 2>&1; then
	deb-systemd-helper disable poolserver.service >/dev/null || true
elif command -v systemctl >/dev/null 2>&1; then
	systemctl disable poolserver.service >/dev/null 2>&1 || true
fi
exit 0
