#!/bin/sh
# A stand-in for a managed agent, version 1.1.0: the same program, newer.
if [ "$1" = version ]; then echo 1.1.0; exit 0; fi
# 1.1.0 starts the same way; a patch from 1.0.0 is small.
exec sleep 600
