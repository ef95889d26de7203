package packaging

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/poolagent/poolagent/agent/agentsvc"
)

// UpgradeCode is the MSI's UpgradeCode (packaging/windows/poolagent.wxs).
// It never changes: it is how a newer MSI finds and replaces an older one.
const UpgradeCode = "{9D2A3F4E-6C1B-4B8E-A0D7-5E2F1C3B7A90}"

// MSIConfigPath is the configuration file the MSI's service and custom
// actions use, as a Windows Installer formatted string.
const MSIConfigPath = `[CommonAppDataFolder]poolagent\poolagent.toml`

// MSIServiceArguments is the service's command line in the MSI: the
// arguments `poolagent install` registers (agent/agentsvc) with
// MSIConfigPath, quoted for Windows.
func MSIServiceArguments() string {
	c, _ := agentsvc.Config(agentsvc.Options{
		Executable: `[INSTALLDIR]poolagent.exe`,
		ConfigPath: MSIConfigPath,
		StateDir:   `[CommonAppDataFolder]poolagent`,
		GOOS:       "windows",
	})
	args := make([]string, len(c.Arguments))
	for i, a := range c.Arguments {
		// A formatted path may expand to one with spaces.
		if strings.ContainsAny(a, " \t[") {
			a = `"` + a + `"`
		}
		args[i] = a
	}
	return strings.Join(args, " ")
}

// MSIProperties are the public properties the MSI reads from its command
// line (msiexec /i poolagent.msi NAME=value ...), docs/install.md.
var MSIProperties = []string{"SERVER_URL", "ENROLL_TOKEN", "TRUSTED_KEYS", "SERVER_CA", "ALLOW_INSECURE_HTTP"}

// EnrollActionType is the enroll custom action's type: an executable
// installed by the package (18), deferred (1024), as LocalSystem (2048),
// its command line hidden from the log (8192).
const EnrollActionType = 18 | 1024 | 2048 | 8192

// ErrNoMSITools is returned when wixl or msibuild (msitools) is not on
// PATH.
var ErrNoMSITools = errors.New("msitools (wixl, msibuild) not installed")

// MSIFileName is the MSI's file name for a package version.
func MSIFileName(pkgVersion string) string {
	return fmt.Sprintf("poolagent_%s_windows_amd64.msi", pkgVersion)
}

var msiVersionRE = regexp.MustCompile(`^(\d+)\.(\d+)(?:\.(\d+))?`)

// MSIVersion is the ProductVersion for a package version (PackageVersion):
// Windows Installer wants major.minor.build, numbers only, and compares
// only those three for upgrades. A pre-release or a commit build counts as
// its release (1.2.3~rc.1 and 1.2.3+4.gabc -> 1.2.3), a build from no
// release as 0.0.0; since the MSI treats the same version as an upgrade,
// installing either over the other replaces it.
func MSIVersion(pkgVersion string) string {
	m := msiVersionRE.FindStringSubmatch(pkgVersion)
	if m == nil {
		return "0.0.0"
	}
	build := m[3]
	if build == "" {
		build = "0"
	}
	return m[1] + "." + m[2] + "." + build
}

// windowsEdits turn the sample configuration into the Windows one: each
// old text must appear exactly once, so that a change to the sample that
// these no longer fit fails the build instead of shipping Linux paths.
var windowsEdits = []struct{ old, new string }{
	{`state_dir = "/var/lib/poolagent"`, `state_dir = 'C:\ProgramData\poolagent'`},
	{`install_roots = ["/opt/okta"]`, `install_roots = ['C:\Program Files\Okta']`},
	{`binary = "/opt/okta/ad-agent/ad-agent"`, `binary = 'C:\Program Files\Okta\ad-agent\ad-agent.exe'`},
	{`service = "okta-ad-agent.service"`, `service = "okta-ad-agent"`},
}

// agentsExample starts the sample's [[agents]] example, commented out in
// the Windows configuration: the MSI starts the service with the sample,
// and an agent that is not installed would stop it.
const agentsExample = "# The managed agents (example)."

// WindowsConfig returns the sample configuration (configs/poolagent.toml)
// for Windows, shipped in the zip as poolagent.toml and in the MSI as
// poolagent.sample.toml: Windows paths for state_dir, install_roots and the
// example agent, the [[agents]] example commented out, CRLF line endings
// for Notepad.
func WindowsConfig(sample []byte) ([]byte, error) {
	s := strings.ReplaceAll(string(sample), "\r\n", "\n")
	for _, e := range windowsEdits {
		if n := strings.Count(s, e.old); n != 1 {
			return nil, fmt.Errorf("packaging: Windows configuration: configs/poolagent.toml holds %q %d times, want once (update windowsEdits)", e.old, n)
		}
		s = strings.Replace(s, e.old, e.new, 1)
	}
	i := strings.Index(s, agentsExample)
	if i < 0 || strings.Count(s, agentsExample) != 1 {
		return nil, fmt.Errorf("packaging: Windows configuration: configs/poolagent.toml must hold %q once, before the [[agents]] example", agentsExample)
	}
	lines := strings.Split(s[i:], "\n")
	for j, l := range lines {
		if strings.TrimSpace(l) != "" && !strings.HasPrefix(l, "#") {
			lines[j] = "# " + l
		}
	}
	s = s[:i] + strings.Join(lines, "\n")
	return []byte(strings.ReplaceAll(s, "\n", "\r\n")), nil
}

// buildMSI runs wixl on wxs in dir (which holds poolagent.exe and
// poolagent.sample.toml) and finishes the tables with msibuild; the MSI is
// written atomically to target.
func buildMSI(ctx context.Context, wxs, dir, version, target string) error {
	wixl, err := exec.LookPath("wixl")
	if err != nil {
		return fmt.Errorf("packaging: %w: wixl: %w (apt-get install wixl msitools, or build --msi=false)", ErrNoMSITools, err)
	}
	msibuild, err := exec.LookPath("msibuild")
	if err != nil {
		return fmt.Errorf("packaging: %w: msibuild: %w (apt-get install msitools, or build --msi=false)", ErrNoMSITools, err)
	}
	wxs, err = filepath.Abs(wxs)
	if err != nil {
		return fmt.Errorf("packaging: %w", err)
	}
	tmp := filepath.Join(dir, "poolagent.msi")
	// wixl finds the File sources relative to its working directory.
	cmd := exec.CommandContext(ctx, wixl, "-a", "x64", "-D", "Version="+version, "-D", "ServiceArgs="+MSIServiceArguments(), "-o", tmp, wxs)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("packaging: wixl %s: %w\n%s", wxs, err, out)
	}
	// wixl prints GLib warnings for attributes it ignores: one would mean a
	// table silently missing something the .wxs asks for.
	if bytes.Contains(out, []byte("WARNING")) || bytes.Contains(out, []byte("CRITICAL")) {
		return fmt.Errorf("packaging: wixl ignored part of %s:\n%s", wxs, out)
	}
	// What wixl cannot express (HideTarget is below). The public properties must be secure to
	// reach the deferred custom actions of a managed (elevated) install;
	// the same version counts as an upgrade (VersionMaxInclusive), so that
	// a rebuild replaces the installed package instead of sitting beside it.
	secure, err := msiProperty(ctx, tmp, "SecureCustomProperties")
	if err != nil {
		return err
	}
	secure = strings.Join(append(strings.Split(secure, ";"), MSIProperties...), ";")
	queries := []string{
		"UPDATE `Property` SET `Value` = '" + secure + "' WHERE `Property` = 'SecureCustomProperties'",
		// Attributes is part of the Upgrade table's key: the row is replaced.
		"DELETE FROM `Upgrade` WHERE `ActionProperty` = 'WIX_UPGRADE_DETECTED'",
		"INSERT INTO `Upgrade` (`UpgradeCode`, `VersionMax`, `Attributes`, `ActionProperty`) VALUES ('" +
			UpgradeCode + "', '" + version + "', 513, 'WIX_UPGRADE_DETECTED')",
		// HideTarget, which wixl drops: the enroll command line holds the
		// token and stays out of the log.
		fmt.Sprintf("UPDATE `CustomAction` SET `Type` = %d WHERE `Action` = 'Enroll'", EnrollActionType),
	}
	for _, q := range queries {
		if out, err := exec.CommandContext(ctx, msibuild, tmp, "-q", q).CombinedOutput(); err != nil {
			return fmt.Errorf("packaging: msibuild %q: %w\n%s", q, err, out)
		}
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		return fmt.Errorf("packaging: %w", err)
	}
	if err := os.Rename(tmp, target); err != nil {
		return fmt.Errorf("packaging: %w", err)
	}
	return nil
}

// msiProperty reads a row of an MSI's Property table with msiinfo.
func msiProperty(ctx context.Context, msi, name string) (string, error) {
	rows, err := MSITable(ctx, msi, "Property")
	if err != nil {
		return "", err
	}
	for _, r := range rows {
		if len(r) == 2 && r[0] == name {
			return r[1], nil
		}
	}
	return "", fmt.Errorf("packaging: %s has no property %s", msi, name)
}

// MSITable returns the rows of one table of an MSI (msiinfo export), each
// a slice of its columns; the header lines are left out.
func MSITable(ctx context.Context, msi, table string) ([][]string, error) {
	out, err := exec.CommandContext(ctx, "msiinfo", "export", msi, table).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%w: %s", err, ee.Stderr)
		}
		return nil, fmt.Errorf("packaging: msiinfo export %s %s: %w", msi, table, err)
	}
	lines := strings.Split(strings.ReplaceAll(string(out), "\r\n", "\n"), "\n")
	if len(lines) < 3 {
		return nil, fmt.Errorf("packaging: msiinfo export %s %s: no header", msi, table)
	}
	var rows [][]string
	for _, l := range lines[3:] {
		if l != "" {
			rows = append(rows, strings.Split(l, "\t"))
		}
	}
	return rows, nil
}
