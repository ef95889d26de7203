package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/poolagent/poolagent/agent/config"
	"github.com/poolagent/poolagent/agent/state"
	"github.com/poolagent/poolagent/platform/fsacl"
)

// configureFlags are `poolagent configure`'s settings. An empty value
// leaves the key as it is, so that an installer can pass every property,
// set or not.
type configureFlags struct {
	sample, server, serverCA, trustedKeys, insecure string
}

// configure writes the given settings into the configuration file at path,
// creating it from the sample first when there is none, keeping its
// comments and other keys, and checks that the result loads. Then it gives
// the state dir its protected ACL (fsacl), as enroll and install do.
func configure(path string, f configureFlags, stdout io.Writer) error {
	var settings []config.Setting
	if f.server != "" {
		settings = append(settings, config.Setting{Key: "server_url", Value: f.server})
	}
	if f.serverCA != "" {
		settings = append(settings, config.Setting{Key: "server_ca", Value: f.serverCA})
	}
	if f.trustedKeys != "" {
		keys := strings.FieldsFunc(f.trustedKeys, func(r rune) bool {
			return r == ',' || r == ';' || r == ' ' || r == '\t' || r == '\r' || r == '\n'
		})
		if len(keys) == 0 {
			return &exitError{code: exitUsage, err: fmt.Errorf("configure: --trusted-keys %q holds no key", f.trustedKeys)}
		}
		settings = append(settings, config.Setting{Table: "artifacts", Key: "trusted_keys", Value: keys})
	}
	if f.insecure != "" {
		v, err := strconv.ParseBool(f.insecure)
		if err != nil {
			return &exitError{code: exitUsage, err: fmt.Errorf("configure: --allow-insecure-http %q: want true or false (1 or 0)", f.insecure)}
		}
		settings = append(settings, config.Setting{Table: "artifacts", Key: "allow_insecure_http", Value: v})
	}

	doc, err := os.ReadFile(path)
	created := false
	switch {
	case errors.Is(err, fs.ErrNotExist) && f.sample != "":
		if doc, err = os.ReadFile(f.sample); err != nil {
			return fmt.Errorf("configure: no configuration at %s and the sample cannot be read: %w", path, err)
		}
		created = true
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("configure: no configuration at %s (give --sample FILE to start from the sample): %w", path, err)
	case err != nil:
		return fmt.Errorf("configure: %w", err)
	}
	if doc, err = config.SetKeys(doc, settings...); err != nil {
		return fmt.Errorf("configure %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("configure: %w", err)
	}
	// Check the result before it replaces anything.
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".check-*")
	if err != nil {
		return fmt.Errorf("configure: %w", err)
	}
	_, werr := tmp.Write(doc)
	cerr := tmp.Close()
	defer os.Remove(tmp.Name())
	if err := errors.Join(werr, cerr); err != nil {
		return fmt.Errorf("configure: %w", err)
	}
	cfg, err := config.Load(tmp.Name())
	if err != nil {
		return fmt.Errorf("configure: the result would not load, %s is left as it was: %w", path, err)
	}
	if err := fsacl.MkdirPrivate(cfg.StateDir); err != nil {
		return fmt.Errorf("configure: state dir: %w", err)
	}
	if err := state.WriteFileAtomic(path, doc, 0o644); err != nil {
		return fmt.Errorf("configure: write %s: %w", path, err)
	}
	what := "updated"
	if created {
		what = "created from " + f.sample + " and updated"
	}
	var keys []string
	for _, s := range settings {
		if s.Table != "" {
			keys = append(keys, s.Table+"."+s.Key)
		} else {
			keys = append(keys, s.Key)
		}
	}
	if len(keys) == 0 {
		keys = []string{"nothing to set"}
	}
	fmt.Fprintf(stdout, "configuration %s %s (%s); state dir %s\n", path, what, strings.Join(keys, ", "), cfg.StateDir)
	return nil
}

// alreadyEnrolled serves `enroll --if-not-enrolled`: credentials already
// there (an upgrade, a reinstall) are kept, so that the host keeps its
// identity. Credentials that exist but cannot be read are an error, never
// silently replaced.
func alreadyEnrolled(cfg config.Config) (state.Credentials, bool, error) {
	c, err := state.ReadCredentials(cfg.Credentials())
	switch {
	case err == nil:
		return c, true, nil
	case errors.Is(err, state.ErrNotEnrolled):
		return c, false, nil
	}
	return c, false, fmt.Errorf("enroll: existing credentials cannot be read, not replacing them (remove %s to enroll again): %w", cfg.Credentials(), err)
}
