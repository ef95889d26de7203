#!/bin/sh
# poolserver package: reload systemd and enable poolserver.service on a fresh install,
# which is not started: the operator edits /etc/poolserver/poolserver.toml first,
# then runs `systemctl start poolserver`. After an upgrade a running poolserver is
# restarted into the new version and a stopped one stays stopped (try-restart, as
# dh_installsystemd --no-start does; deb-systemd-invoke where present, which honours
# policy-rc.d).
# Runs as deb postinst (configure [old-version]) and rpm %post (1 install,
# 2 or more upgrade).
set -e

case "$1" in
abort-*) exit 0 ;;
esac
upgrade=false
case "$1" in
configure) [ -n "$2" ] && upgrade=true ;;
[0-9]*) [ "$1" -ge 2 ] && upgrade=true ;;
esac

if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
fi
# Enable on a fresh install only: an upgrade keeps the operator's choice.
if command -v deb-systemd-helper >/dev/null 2>&1; then
	# was-enabled is true on a fresh install (as dh_installsystemd does).
	if deb-systemd-helper --quiet was-enabled poolserver.service; then
		deb-systemd-helper enable poolserver.service >/dev/null || true
	else
		deb-systemd-helper update-state poolserver.service >/dev/null || true
	fi
elif [ "$upgrade" = false ] && command -v systemctl >/dev/null 2>&1; then
	systemctl enable poolserver.service >/dev/null 2>&1 || true
fi

if [ "$upgrade" = true ]; then
	# try-restart never starts a stopped service.
	if command -v deb-systemd-invoke >/dev/null 2>&1; then
		deb-systemd-invoke try-restart poolserver.service >/dev/null 2>&1 || true
	elif command -v systemctl >/dev/null 2>&1; then
		systemctl try-restart poolserver.service >/dev/null 2>&1 || true
	fi
	echo "poolserver upgraded; restarted it if it was running (a stopped poolserver stays stopped: systemctl start poolserver)"
else
	echo "poolserver installed and enabled; edit /etc/poolserver/poolserver.toml, then: systemctl start poolserver"
fi
exit 0
