#!/usr/bin/env bash
# make bench: every benchmark program, each printing one markdown table
# whose figures sit beside baselines measured in the same run. Bounded in
# time; talks only to 127.0.0.1. Results go to stdout and bench/last-run.md.
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench/last-run.md
{
	echo "# make bench, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(go version | cut -d' ' -f3)"
	echo
	echo "## updater"
	echo
	go run ./bench/updater
	echo
	echo "## fleet (poolserver heartbeats and rollout)"
	echo
	go run ./bench/fleet -hosts "${BENCH_HOSTS:-10000}"
	echo
	echo "## fleet: a minor release with patches and with full downloads"
	echo
	go run ./bench/fleet -delta-only
	if [ -d bench/agent ]; then
		echo
		echo "## agent (poolagent daemon)"
		echo
		go run ./bench/agent
	fi
} | tee "$out"
