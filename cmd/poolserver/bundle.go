package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/poolagent/poolagent/controlplane"
	"github.com/poolagent/poolagent/controlplane/artifacts"
	"github.com/poolagent/poolagent/controlplane/store"
)

// cmdReleaseExport writes a release bundle for an air-gapped site
// (docs/install.md).
func cmdReleaseExport(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("release export", flag.ContinueOnError)
	dataDir := fs.String("data-dir", "", "data directory")
	db := fs.String("db", "", dbUsage)
	name := fs.String("name", "", "an agent type (AD, LDAP, ...) or poolagent")
	version := fs.String("version", "", "the release's version")
	goos := fs.String("os", "", "only this GOOS (default: every platform of the release)")
	arch := fs.String("arch", "", "only this GOARCH (default: every platform of the release)")
	out := fs.String("out", "", "the bundle file to write (a tar)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *name == "" || *version == "" || *out == "" {
		return usageError{"--name, --version and --out are required"}
	}
	if *dataDir == "" {
		return usageError{"--data-dir is required: the artifacts live there, with --db too"}
	}
	st, err := openStore(ctx, *dataDir, *db)
	if err != nil {
		return err
	}
	defer st.Close()
	m, err := controlplane.ExportBundle(ctx, st, artifacts.NewDataDir(*dataDir), *name, *version, *goos, *arch, *out, time.Now())
	if err != nil {
		return err
	}
	for _, r := range m.Releases {
		if _, err := fmt.Fprintf(stdout, "%s %s %s/%s %s sha256=%s size=%d\n", r.Name, r.Version, r.OS, r.Arch, r.Channel, r.SHA256, r.Size); err != nil {
			return err
		}
	}
	_, err = fmt.Fprintf(stdout, "wrote %s: %d releases, %d patches\n", *out, len(m.Releases), len(m.Patches))
	return err
}

// cmdReleaseImport verifies a release bundle against the operator's
// trusted keys and publishes its releases, all or nothing.
func cmdReleaseImport(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("release import", flag.ContinueOnError)
	dataDir := fs.String("data-dir", "", "data directory")
	db := fs.String("db", "", dbUsage)
	file := fs.String("file", "", "the bundle (from release export)")
	maxEntry := fs.Int64("max-entry-size", controlplane.DefaultMaxEntry, "refuse a bundle with an artifact or patch larger than this many bytes")
	deltas := fs.Int("deltas", controlplane.DefaultDeltas, "build binary patches for each imported release from this many earlier releases of the catalog (0: none)")
	var keyFiles stringList
	fs.Var(&keyFiles, "trusted-key", "a minisign public key file (PREFIX.pub from key generate) the releases must be signed by (repeatable)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *file == "" || len(keyFiles) == 0 {
		return usageError{"--file and at least one --trusted-key are required"}
	}
	if *dataDir == "" {
		return usageError{"--data-dir is required: the artifacts live there, with --db too"}
	}
	if *deltas < 0 {
		return usageError{fmt.Sprintf("--deltas %d: want 0 (no patches) or more", *deltas)}
	}
	var keys []string
	for _, kf := range keyFiles {
		b, err := os.ReadFile(kf)
		if err != nil {
			return fmt.Errorf("--trusted-key: %w", err)
		}
		keys = append(keys, string(b))
	}
	st, err := openStore(ctx, *dataDir, *db)
	if err != nil {
		return err
	}
	defer st.Close()
	res, err := controlplane.ImportBundle(ctx, st, *dataDir, *file, controlplane.ImportOptions{TrustedKeys: keys, MaxEntry: *maxEntry,
		Deltas: *deltas, Warn: func(msg string) { fmt.Fprintf(stdout, "note: %s\n", msg) }}, time.Now())
	if res != nil {
		for _, r := range res.Published {
			if aerr := controlplane.AuditCLI(ctx, st, store.AuditEntry{Action: controlplane.AuditReleasePublish,
				Target: fmt.Sprintf("%s %s %s/%s", r.Name, r.Version, r.OS, r.Arch),
				Detail: fmt.Sprintf("channel=%s sha256=%s imported from a bundle", r.Channel, r.SHA256)}, time.Now()); aerr != nil && err == nil {
				err = aerr
			}
			fmt.Fprintf(stdout, "imported %s %s %s/%s %s sha256=%s size=%d\n", r.Name, r.Version, r.OS, r.Arch, r.Channel, r.SHA256, r.Size)
		}
		for _, r := range res.Present {
			fmt.Fprintf(stdout, "already present %s %s %s/%s sha256=%s\n", r.Name, r.Version, r.OS, r.Arch, r.SHA256)
		}
		if res.SkippedPatches > 0 {
			fmt.Fprintf(stdout, "%d patches of the bundle verified but not kept: import builds its own (--deltas)\n", res.SkippedPatches)
		}
	}
	return err
}
