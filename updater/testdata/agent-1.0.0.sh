#!/bin/sh
# A stand-in for a managed agent, version 1.0.0.
if [ "$1" = version ]; then echo 1.0.0; exit 0; fi
exec sleep 600
