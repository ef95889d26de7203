#!/bin/sh
# poolserver package: create the poolserver system user and group before the
# files are unpacked. Runs as deb preinst (install|upgrade) and rpm %pre.
set -e

if ! getent group poolserver >/dev/null 2>&1; then
	groupadd --system poolserver
fi
if ! getent passwd poolserver >/dev/null 2>&1; then
	nologin=$(command -v nologin 2>/dev/null || echo /bin/false)
	useradd --system --gid poolserver --home-dir /var/lib/poolserver --no-create-home \
		--shell "$nologin" --comment "poolserver control plane" poolserver
fi
exit 0
