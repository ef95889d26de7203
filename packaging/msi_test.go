package packaging

import (
	"bytes"
	"context"
	"debug/pe"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"

	"github.com/poolagent/poolagent/agent/agentsvc"
	"github.com/poolagent/poolagent/agent/config"
)

func windowsConfig(t *testing.T) []byte {
	t.Helper()
	sample, err := os.ReadFile(filepath.Join(root, "configs", "poolagent.toml"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := WindowsConfig(sample)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestWindowsConfig(t *testing.T) {
	b := windowsConfig(t)
	if bytes.Contains(bytes.ReplaceAll(b, []byte("\r\n"), nil), []byte("\n")) {
		t.Error("bare LF line endings")
	}
	var c config.Config
	md, err := toml.Decode(string(b), &c)
	if err != nil {
		t.Fatalf("not TOML: %v", err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		t.Errorf("unknown keys %v", und)
	}
	if c.StateDir != `C:\ProgramData\poolagent` {
		t.Errorf("state_dir = %q", c.StateDir)
	}
	if !slices.Equal(c.InstallRoots, []string{`C:\Program Files\Okta`}) {
		t.Errorf("install_roots = %q", c.InstallRoots)
	}
	if len(c.Agents) != 0 {
		t.Errorf("the [[agents]] example is active: %+v", c.Agents)
	}
	// Every Unix path left is in a comment, and the example agent, once
	// uncommented, has Windows paths.
	for _, l := range strings.Split(string(b), "\r\n") {
		if !strings.HasPrefix(l, "#") && (strings.Contains(l, "/var/") || strings.Contains(l, "/opt/") || strings.Contains(l, "/etc/")) {
			t.Errorf("Unix path outside a comment: %q", l)
		}
	}
	for _, want := range []string{`# binary = 'C:\Program Files\Okta\ad-agent\ad-agent.exe'`, `# service = "okta-ad-agent"`, "# [[agents]]", "# [agents.health]"} {
		if !bytes.Contains(b, []byte(want+"\r\n")) {
			t.Errorf("no line %q", want)
		}
	}

	// A sample these edits no longer fit fails the build.
	sample, _ := os.ReadFile(filepath.Join(root, "configs", "poolagent.toml"))
	for _, bad := range [][]byte{
		bytes.Replace(sample, []byte(`state_dir = "/var/lib/poolagent"`), []byte(`state_dir = "/srv/poolagent"`), 1),
		bytes.Replace(sample, []byte(agentsExample), []byte("# Agents."), 1),
	} {
		if _, err := WindowsConfig(bad); err == nil {
			t.Error("WindowsConfig accepted a sample it does not fit")
		}
	}
}

func TestMSIVersion(t *testing.T) {
	tests := []struct{ in, want string }{
		{"1.2.3", "1.2.3"},
		{"1.2", "1.2.0"},
		{"1.2.3~rc.1", "1.2.3"},
		{"1.2.3+4.gabc1234", "1.2.3"},
		{"0.0.0~abc1234.dirty", "0.0.0"},
		{"dev", "0.0.0"},
	}
	for _, tt := range tests {
		if got := MSIVersion(tt.in); got != tt.want {
			t.Errorf("MSIVersion(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// needMSITools skips the test when msitools is missing, except in CI
// (CI=true), where the MSI must be built and checked.
func needMSITools(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"wixl", "msibuild", "msiinfo", "msiextract"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is not installed and CI=true: the MSI must be built and checked (apt-get install wixl msitools)", tool)
			}
			t.Skipf("%s is not installed (apt-get install wixl msitools): cannot build or inspect the MSI", tool)
		}
	}
}

// table reads an MSI table keyed by its first column.
func table(t *testing.T, msi, name string) map[string][]string {
	t.Helper()
	rows, err := MSITable(context.Background(), msi, name)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string][]string{}
	for _, r := range rows {
		m[r[0]] = r
	}
	return m
}

// TestMSI builds the MSI and checks its tables with msiinfo and its files
// with msiextract.
func TestMSI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the MSI")
	}
	needMSITools(t)
	const version = "v1.2.3"
	out := t.TempDir()
	files, err := WindowsPackages(context.Background(), Options{Root: root, Version: version, OutDir: out, MSI: true})
	if err != nil {
		t.Fatal(err)
	}
	msi := filepath.Join(out, "poolagent_1.2.3_windows_amd64.msi")
	if !slices.Equal(files, []string{filepath.Join(out, "poolagent_1.2.3_windows_amd64.zip"), msi}) {
		t.Fatalf("WindowsPackages wrote %q", files)
	}
	if entries, _ := os.ReadDir(out); len(entries) != 2 {
		t.Errorf("out dir holds %d entries, want the zip and the MSI only", len(entries))
	}

	t.Run("Property", func(t *testing.T) {
		p := table(t, msi, "Property")
		for k, v := range map[string]string{
			"ProductName": "poolagent", "ProductVersion": "1.2.3", "UpgradeCode": UpgradeCode,
			"ALLUSERS": "1", "MsiHiddenProperties": "ENROLL_TOKEN",
		} {
			if got := p[k]; len(got) != 2 || got[1] != v {
				t.Errorf("%s = %q, want %q", k, got, v)
			}
		}
		secure := strings.Split(p["SecureCustomProperties"][1], ";")
		for _, name := range append([]string{"WIX_UPGRADE_DETECTED", "WIX_DOWNGRADE_DETECTED"}, MSIProperties...) {
			if !slices.Contains(secure, name) {
				t.Errorf("SecureCustomProperties %q lacks %s", secure, name)
			}
		}
	})

	t.Run("Upgrade", func(t *testing.T) {
		// Columns: UpgradeCode VersionMin VersionMax Language Attributes Remove ActionProperty.
		rows, err := MSITable(context.Background(), msi, "Upgrade")
		if err != nil {
			t.Fatal(err)
		}
		byAction := map[string][]string{}
		for _, r := range rows {
			if r[0] != UpgradeCode {
				t.Errorf("Upgrade row for %s", r[0])
			}
			byAction[r[6]] = r
		}
		// Older and the same version are removed (MigrateFeatures |
		// VersionMaxInclusive); a newer one installed stops this one.
		if r := byAction["WIX_UPGRADE_DETECTED"]; r == nil || r[1] != "" || r[2] != "1.2.3" || r[4] != "513" {
			t.Errorf("upgrade row %q, want up to 1.2.3 inclusive, attributes 513", r)
		}
		if r := byAction["WIX_DOWNGRADE_DETECTED"]; r == nil || r[1] != "1.2.3" || r[2] != "" || r[4] != "2" {
			t.Errorf("downgrade row %q, want above 1.2.3, detect only", r)
		}
		if lc := table(t, msi, "LaunchCondition"); lc["NOT WIX_DOWNGRADE_DETECTED"] == nil {
			t.Errorf("no launch condition refusing a downgrade: %q", lc)
		}
	})

	t.Run("File", func(t *testing.T) {
		f := table(t, msi, "File")
		for id, name := range map[string]string{"PoolagentExe": "poolagent.exe", "SampleConfig": "poolagent.sample.toml"} {
			if r := f[id]; r == nil || r[1] != "Program" || r[2] != name {
				t.Errorf("File %s = %q, want %s in component Program", id, r, name)
			}
		}
		if len(f) != 2 {
			t.Errorf("File table %q, want the program and the sample only (the configuration and state are not the package's)", f)
		}
		c := table(t, msi, "Component")["Program"]
		if c == nil || c[2] != "INSTALLDIR" || c[5] != "PoolagentExe" {
			t.Errorf("component Program %q", c)
		}
		// 256: 64-bit component.
		if a, _ := strconv.Atoi(c[3]); a&256 == 0 {
			t.Errorf("component Program attributes %s: not 64-bit", c[3])
		}
		d := table(t, msi, "Directory")
		if r := d["INSTALLDIR"]; r == nil || r[1] != "ProgramFiles64Folder" || r[2] != "poolagent" {
			t.Errorf("INSTALLDIR %q, want ProgramFiles64Folder\\poolagent", r)
		}
	})

	t.Run("ServiceInstall", func(t *testing.T) {
		// Name DisplayName ServiceType StartType ErrorControl LoadOrderGroup
		// Dependencies StartName Password Arguments Component_ Description.
		r := table(t, msi, "ServiceInstall")["Service"]
		if r == nil {
			t.Fatal("no ServiceInstall row")
		}
		want := map[int]string{
			1: "poolagent", 3: "16" /* own process */, 4: "2" /* automatic */, 5: "1", 8: "LocalSystem",
			10: MSIServiceArguments(), 11: "Program",
		}
		for i, v := range want {
			if r[i] != v {
				t.Errorf("ServiceInstall column %d = %q, want %q", i, r[i], v)
			}
		}
		// The command line `poolagent install` registers, with the MSI's
		// configuration.
		c, _ := agentsvc.Config(agentsvc.Options{ConfigPath: MSIConfigPath, GOOS: "windows"})
		quoted := slices.Clone(c.Arguments)
		quoted[slices.Index(quoted, MSIConfigPath)] = `"` + MSIConfigPath + `"`
		if got, want := r[10], strings.Join(quoted, " "); got != want || !strings.HasPrefix(got, "run ") {
			t.Errorf("service arguments %q, want %q", got, want)
		}
	})

	t.Run("ServiceControl", func(t *testing.T) {
		r := table(t, msi, "ServiceControl")["Service"]
		// Start on install (1), stop on install (2) and uninstall (32),
		// delete on uninstall (128); wait.
		if r == nil || r[1] != "poolagent" || r[2] != strconv.Itoa(1|2|32|128) || r[4] != "1" || r[5] != "Program" {
			t.Errorf("ServiceControl %q", r)
		}
	})

	t.Run("CustomAction", func(t *testing.T) {
		ca := table(t, msi, "CustomAction")
		const cfg = `--config "` + MSIConfigPath + `"`
		deferredExe := strconv.Itoa(18 | 1024 | 2048)
		tests := []struct{ id, typ, source, target string }{
			{"Configure", deferredExe, "PoolagentExe", "configure " + cfg + ` --sample "[INSTALLDIR]poolagent.sample.toml" --server "[SERVER_URL]" --trusted-keys "[TRUSTED_KEYS]" --server-ca "[SERVER_CA]" --allow-insecure-http "[ALLOW_INSECURE_HTTP]"`},
			{"Enroll", strconv.Itoa(EnrollActionType), "PoolagentExe", "enroll " + cfg + ` --if-not-enrolled --token "[ENROLL_TOKEN]"`},
			// An executable named by a property, deferred, as LocalSystem.
			{"ServiceRecovery", strconv.Itoa(50 | 1024 | 2048), "ScExe", "failure poolagent reset= 86400 actions= restart/5000"},
			{"SetScExe", strconv.Itoa(51 | 2048), "ScExe", "[SystemFolder]sc.exe"},
		}
		for _, tt := range tests {
			r := ca[tt.id]
			if r == nil || r[1] != tt.typ || r[2] != tt.source || r[3] != tt.target {
				t.Errorf("CustomAction %s = %q, want type %s source %s target %q", tt.id, r, tt.typ, tt.source, tt.target)
			}
		}
		for _, p := range MSIProperties {
			if !strings.Contains(ca["Configure"][3]+ca["Enroll"][3], "["+p+"]") {
				t.Errorf("property %s is not passed to poolagent", p)
			}
		}
	})

	t.Run("InstallExecuteSequence", func(t *testing.T) {
		s := table(t, msi, "InstallExecuteSequence")
		seq := func(a string) int {
			r := s[a]
			if r == nil {
				t.Fatalf("%s is not sequenced", a)
			}
			n, _ := strconv.Atoi(r[2])
			return n
		}
		order := [][]string{
			{"SetScExe", "InstallInitialize", "RemoveExistingProducts", "InstallFiles", "Configure", "Enroll", "InstallServices", "ServiceRecovery", "StartServices", "InstallFinalize"},
			{"InstallInitialize", "StopServices", "DeleteServices", "RemoveFiles"},
		}
		for _, o := range order {
			for i := 1; i < len(o); i++ {
				if seq(o[i-1]) >= seq(o[i]) {
					t.Errorf("%s (%d) is not before %s (%d)", o[i-1], seq(o[i-1]), o[i], seq(o[i]))
				}
			}
		}
		// The old package is gone before this one's files go in.
		if seq("RemoveExistingProducts") > seq("ProcessComponents") {
			t.Error("RemoveExistingProducts runs after ProcessComponents")
		}
		for _, a := range []string{"Configure", "Enroll", "ServiceRecovery"} {
			if c := s[a][1]; c != `NOT REMOVE~="ALL"` {
				t.Errorf("%s condition %q, want it skipped on uninstall", a, c)
			}
		}
	})

	t.Run("summary", func(t *testing.T) {
		out, err := exec.Command("msiinfo", "suminfo", msi).Output()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(out), "Template: x64;1033") {
			t.Errorf("suminfo:\n%s\nwant Template: x64;1033", out)
		}
	})

	t.Run("files", func(t *testing.T) {
		dir := t.TempDir()
		if out, err := exec.Command("msiextract", "-C", dir, msi).CombinedOutput(); err != nil {
			t.Fatalf("msiextract: %v\n%s", err, out)
		}
		// msiextract writes INSTALLDIR (ProgramFiles64Folder\poolagent) as poolagent/.
		base := filepath.Join(dir, "poolagent")
		exe, err := os.ReadFile(filepath.Join(base, "poolagent.exe"))
		if err != nil {
			t.Fatal(err)
		}
		f, err := pe.NewFile(bytes.NewReader(exe))
		if err != nil {
			t.Fatal(err)
		}
		if f.Machine != pe.IMAGE_FILE_MACHINE_AMD64 {
			t.Errorf("poolagent.exe: machine %#x", f.Machine)
		}
		if !bytes.Contains(exe, []byte(version)) {
			t.Errorf("poolagent.exe lacks the version stamp %q", version)
		}
		sample, err := os.ReadFile(filepath.Join(base, "poolagent.sample.toml"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(sample, windowsConfig(t)) {
			t.Error("poolagent.sample.toml is not WindowsConfig(configs/poolagent.toml)")
		}
	})
}
