// Command poolserver is the control plane of poolagent: it serves Okta's
// Agent Pools API and the heartbeat endpoint, and turns updates into
// per-host jobs.
//
//	poolserver serve --data-dir DIR --listen 127.0.0.1:PORT [--config FILE] [--tls-cert F --tls-key F] [--insecure-plain-http]
//	poolserver token create --data-dir DIR --scope SCOPE [--scope SCOPE] [--name N] [--ttl D]
//	poolserver pool create --data-dir DIR --name NAME --type AGENTTYPE
//	poolserver client create --data-dir DIR --pool POOLID [--id CLIENTID]
//	poolserver enroll-token create --data-dir DIR --pool POOLID [--ttl D]
//	poolserver release publish --data-dir DIR --name NAME --version V --os OS --arch ARCH --channel C --file F --signature F.minisig [--deltas K]
//	poolserver key generate --out PREFIX [--password-file F]
//	poolserver release sign --key PREFIX.key --name NAME --version V --os OS --arch ARCH --file F
//	poolserver release export --data-dir DIR --name NAME --version V [--os OS --arch ARCH] --out FILE
//	poolserver release import --data-dir DIR --file FILE --trusted-key PREFIX.pub [--trusted-key ...]
//	poolserver audit list --data-dir DIR [--json] [--limit N] [--since RFC3339]
//	poolserver pools list | agents list [--pool ID] | releases list          (over the API, see below)
//	poolserver updates list|show|create|pause|resume|stop|retry|watch --pool ID [--update ID] ...
//	poolserver version
//
// Every command with --data-dir also takes --db postgres://... to keep the
// state in PostgreSQL instead of SQLite (the artifacts stay in the data dir).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/poolagent/poolagent/api/okta"
)

// usageError is a command-line mistake: exit code 2 with usage.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

const usage = `usage:
  poolserver serve --data-dir DIR --listen HOST:PORT [--config FILE] [--log-level LEVEL]
      [--tls-cert F --tls-key F] [--insecure-plain-http]     # plain HTTP: loopback only without the flag
  poolserver token create --data-dir DIR --scope SCOPE [--scope SCOPE] [--name NAME] [--ttl DURATION]
  poolserver pool create --data-dir DIR --name NAME --type AGENTTYPE
  poolserver client create --data-dir DIR --pool POOLID [--id CLIENTID]
  poolserver enroll-token create --data-dir DIR --pool POOLID [--ttl 24h]
  poolserver release publish --data-dir DIR --name NAME --version V --os OS --arch ARCH
      [--channel GA|EA|BETA|TEST] --file F --signature F.minisig
      [--deltas K]        # bsdiff patches from the K previous releases (default 3; 0: none)
  poolserver key generate --out PREFIX [--password-file F]          # writes PREFIX.key, PREFIX.pub
  poolserver release sign --key PREFIX.key [--password-file F] --name NAME --version V --os OS --arch ARCH --file F
  poolserver release export --data-dir DIR --name NAME --version V [--os OS --arch ARCH] --out FILE   # an offline bundle
  poolserver release import --data-dir DIR --file FILE --trusted-key PREFIX.pub [--trusted-key ...]  # verified, all or nothing
  poolserver audit list --data-dir DIR [--json] [--limit N] [--since RFC3339]   # newest first
  poolserver version

operator commands over a running server's API (--server URL --token T, or $POOLSERVER_URL,
$POOLSERVER_TOKEN; --ca FILE for a private CA; --json for scripts; docs/cli.md):
  poolserver pools list
  poolserver pools compliance POOL_ID [--limit N]   # hosts latest, updating, outdated, below minimum, unreachable, degraded
  poolserver agents list [--pool ID]
  poolserver releases list
  poolserver updates list --pool ID
  poolserver updates show --pool ID --update ID
  poolserver updates create --pool ID --version V [--name N] [--schedule-cron C --timezone TZ --duration MIN --delay DAYS]
  poolserver updates pause|resume|stop|retry --pool ID --update ID   # stop --rollback: also revert the hosts it moved
  poolserver updates watch --pool ID --update ID [--interval 2s] [--timeout 1h]   # until it ends (and its rollback)

every command with --data-dir also takes --db postgres://USER@HOST:PORT/DB: the state
  in PostgreSQL instead of SQLite (artifacts stay in --data-dir; see docs/scaling.md)

scopes: okta.agentPools.read, okta.agentPools.manage (manage implies read)
agent types: AD, IWA, LDAP, MFA, OPP, RUM, Radius`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "poolserver:", err)
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintln(os.Stderr, usage)
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// run dispatches a subcommand; it is main without the process exits.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{"missing command"}
	}
	cmd, rest := args[0], args[1:]
	if len(rest) > 0 && (cmd == "token" || cmd == "pool" || cmd == "client" || cmd == "enroll-token" || cmd == "release" || cmd == "key" || cmd == "audit" ||
		cmd == "pools" || cmd == "agents" || cmd == "updates" || cmd == "releases") {
		cmd, rest = cmd+" "+rest[0], rest[1:]
	}
	switch cmd {
	case "serve":
		return cmdServe(ctx, rest, stderr)
	case "token create":
		return cmdTokenCreate(ctx, rest, stdout)
	case "pool create":
		return cmdPoolCreate(ctx, rest, stdout)
	case "client create":
		return cmdClientCreate(ctx, rest, stdout)
	case "enroll-token create":
		return cmdEnrollTokenCreate(ctx, rest, stdout)
	case "release publish":
		return cmdReleasePublish(ctx, rest, stdout)
	case "release sign":
		return cmdReleaseSign(ctx, rest, stdout)
	case "release export":
		return cmdReleaseExport(ctx, rest, stdout)
	case "release import":
		return cmdReleaseImport(ctx, rest, stdout)
	case "key generate":
		return cmdKeyGenerate(ctx, rest, stdout)
	case "pools list":
		return cmdPoolsList(ctx, rest, stdout)
	case "pools compliance":
		return cmdPoolsCompliance(ctx, rest, stdout)
	case "agents list":
		return cmdAgentsList(ctx, rest, stdout)
	case "updates list":
		return cmdUpdatesList(ctx, rest, stdout)
	case "updates show":
		return cmdUpdatesShow(ctx, rest, stdout)
	case "updates create":
		return cmdUpdatesCreate(ctx, rest, stdout)
	case "updates pause", "updates resume", "updates stop", "updates retry":
		return cmdUpdatesAction(okta.UpdateAction(strings.TrimPrefix(cmd, "updates ")))(ctx, rest, stdout)
	case "updates watch":
		return cmdUpdatesWatch(ctx, rest, stdout)
	case "releases list":
		return cmdReleasesList(ctx, rest, stdout)
	case "audit list":
		return cmdAuditList(ctx, rest, stdout)
	case "version", "--version":
		return cmdVersion(stdout)
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, usage)
		return nil
	}
	return usageError{fmt.Sprintf("unknown command %q", cmd)}
}

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return fmt.Sprint(*s) }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// parseFlags parses fs and refuses stray arguments.
func parseFlags(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		return usageError{fmt.Sprintf("%s: %v", fs.Name(), err)}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))}
	}
	return nil
}
