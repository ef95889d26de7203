#!/usr/bin/env bash
# make demo: start poolserver on a fresh data dir on 127.0.0.1 and drive the
# Agent Pools API with curl, so a new user sees it work. Needs only the
# binaries in bin/ (make build) and curl; cleans up after itself.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-bin}
data=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
base="http://127.0.0.1:$port"
log="$data/poolserver.log"
server_pid=

cleanup() {
	if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
	rm -rf "$data"
}
trap cleanup EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
api() { # api METHOD PATH [BODY]: one call, shown with its status line
	local method=$1 path=$2 body=${3:-}
	printf '\033[2m$ curl -X %s %s%s\033[0m\n' "$method" "$path" "${body:+ -d '$body'}"
	if [ -n "$body" ]; then
		curl -sS -X "$method" -H "Authorization: SSWS $token" -H 'Content-Type: application/json' -d "$body" \
			-w '\n-> HTTP %{http_code}\n' "$base$path"
	else
		curl -sS -X "$method" -H "Authorization: SSWS $token" -w '\n-> HTTP %{http_code}\n' "$base$path"
	fi
}
field() { sed -n "s/.*\"$1\":\"\\([^\"]*\\)\".*/\\1/p" | head -1; }

say "Start poolserver on $base with a fresh SQLite data dir"
"$BIN/poolserver" serve --data-dir "$data" --listen "127.0.0.1:$port" --log-level info 2>"$log" &
server_pid=$!
for _ in $(seq 100); do curl -fsS "$base/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fsS "$base/readyz"; echo

say "Create an API token and an agent pool with the CLI (it works while the server runs)"
token=$("$BIN/poolserver" token create --data-dir "$data" --scope okta.agentPools.manage --name demo)
pool=$("$BIN/poolserver" pool create --data-dir "$data" --name "AD connectors" --type AD)
echo "token: ${token:0:6}... (shown once, stored only as a hash)"
echo "pool:  $pool"

say "List the agent pools"
api GET /api/v1/agentPools

say "Read and change the pool's update settings"
api GET "/api/v1/agentPools/$pool/updates/settings"
api POST "/api/v1/agentPools/$pool/updates/settings" '{"releaseChannel":"GA","continueOnError":false,"minimalSupportedVersion":"1.0.0"}'

say "Schedule an update for the first Tuesday of each month, 02:00 Berlin time (flow 3)"
out=$(api POST "/api/v1/agentPools/$pool/updates" '{"name":"monthly","targetVersion":"1.1.0","schedule":{"cron":"0 2 * * 2#1","timezone":"Europe/Berlin","duration":120,"delay":0}}')
echo "$out"
upd=$(echo "$out" | field id)

say "Pause and resume it"
api POST "/api/v1/agentPools/$pool/updates/$upd/pause"
api POST "/api/v1/agentPools/$pool/updates/$upd/resume"

say "An illegal action is a 400 that names the status"
api POST "/api/v1/agentPools/$pool/updates/$upd/retry"

say "Bad input is a 400 listing every bad field"
api POST "/api/v1/agentPools/$pool/updates" '{"agentType":"SAML","schedule":{"cron":"*/5 * * * *","timezone":"Mars/Olympus","delay":-1}}'

say "Start an update now (flow 2), then stop it"
out=$(api POST "/api/v1/agentPools/$pool/updates" '{"name":"hotfix","targetVersion":"1.1.1","reason":"security fix"}')
echo "$out"
hot=$(echo "$out" | field id)
api POST "/api/v1/agentPools/$pool/updates/$hot/stop"

say "List the pool's updates, scheduled ones only"
api GET "/api/v1/agentPools/$pool/updates?scheduled=true"

say "Stop poolserver with SIGTERM (it drains in-flight requests and closes the store)"
kill -TERM "$server_pid"; wait "$server_pid" || true; server_pid=
tail -n 2 "$log"
say "Done"
