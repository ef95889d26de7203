#!/bin/sh
# poolserver package: reload systemd after the unit is gone; on purge, forget the
# unit's enablement. /var/lib/poolserver (state) is left in place.
# Runs as deb postrm (remove|purge|upgrade|...) and rpm %postun (0 removal).
set -e

if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
fi
if [ "$1" = purge ] && command -v deb-systemd-helper >/dev/null 2>&1; then
	deb-systemd-helper purge poolserver.service >/dev/null || true
fi
exit 0
