#!/bin/sh
# A stand-in for a broken release 1.1.0: it runs "version" but dies on start.
if [ "$1" = version ]; then echo 1.1.0; exit 0; fi
echo "fatal: cannot read config" >&2
exit 3
