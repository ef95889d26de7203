package packaging

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"debug/pe"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// root is the repository root: the tests run in packaging/.
const root = ".."

func TestPackageVersion(t *testing.T) {
	tests := []struct{ in, want string }{
		{"v1.2.3", "1.2.3"},
		{"1.2.3", "1.2.3"},
		{"v1.2.3-rc.1", "1.2.3~rc.1"},
		{"v1.2.3-4-gabc1234", "1.2.3+4.gabc1234"},
		{"v1.2.3-4-gabc1234-dirty", "1.2.3+4.gabc1234.dirty"},
		{"abc1234", "0.0.0~abc1234"},
		{"abc1234-dirty", "0.0.0~abc1234.dirty"},
		{"0999a18-dirty", "0.0.0~0999a18.dirty"},
		{"30c9dab", "0.0.0~30c9dab"},
		{"v2.0", "2.0"},
		{"dev", "0.0.0~dev"},
		{"", "0.0.0~dev"},
		{"vx", "0.0.0~vx"},
		{"1.0_beta/2", "1.0.beta.2"},
	}
	for _, tt := range tests {
		if got := PackageVersion(tt.in); got != tt.want {
			t.Errorf("PackageVersion(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestPackageVersionOrder checks with dpkg and rpm that versions sort as a
// release process needs: commit builds < pre-release < release < later
// builds < next release.
func TestPackageVersionOrder(t *testing.T) {
	dpkg, _ := exec.LookPath("dpkg")
	rpm, _ := exec.LookPath("rpm")
	if dpkg == "" && rpm == "" {
		t.Skip("neither dpkg nor rpm is installed: cannot compare package versions")
	}
	chains := [][]string{
		{"abc1234", "v0.0.1"},
		{"30c9dab-dirty", "v0.0.1", "v1.2.3-rc.1", "v1.2.3", "v1.2.3-4-gabc1234", "v1.2.3-5-gabc1234-dirty", "v1.2.4"},
	}
	for _, order := range chains {
		for i := 1; i < len(order); i++ {
			a, b := PackageVersion(order[i-1]), PackageVersion(order[i])
			if dpkg != "" {
				if err := exec.Command(dpkg, "--compare-versions", a, "lt", b).Run(); err != nil {
					t.Errorf("dpkg: %s (from %s) is not below %s (from %s): %v", a, order[i-1], b, order[i], err)
				}
			}
			if rpm != "" {
				out, err := exec.Command(rpm, "--eval", `%{lua: print(rpm.vercmp("`+a+`", "`+b+`"))}`).Output()
				if err != nil || strings.TrimSpace(string(out)) != "-1" {
					t.Errorf("rpm: %s (from %s) is not below %s (from %s): %q %v", a, order[i-1], b, order[i], out, err)
				}
			}
		}
	}
}

func TestPackageFileName(t *testing.T) {
	tests := []struct{ prog, version, arch, format, want string }{
		{"poolagent", "1.2.3", "amd64", "deb", "poolagent_1.2.3_amd64.deb"},
		{"poolagent", "1.2.3", "arm64", "deb", "poolagent_1.2.3_arm64.deb"},
		{"poolserver", "1.2.3", "amd64", "rpm", "poolserver-1.2.3-1.x86_64.rpm"},
		{"poolserver", "1.2.3", "arm64", "rpm", "poolserver-1.2.3-1.aarch64.rpm"},
	}
	for _, tt := range tests {
		if got := PackageFileName(tt.prog, tt.version, tt.arch, tt.format); got != tt.want {
			t.Errorf("PackageFileName(%s, %s, %s, %s) = %q, want %q", tt.prog, tt.version, tt.arch, tt.format, got, tt.want)
		}
	}
}

func TestCheckConfigs(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "configs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "configs", "poolserver.toml"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	err := CheckConfigs(dir)
	if !errors.Is(err, ErrMissingConfig) || !strings.Contains(err.Error(), filepath.Join("configs", "poolagent.toml")) {
		t.Fatalf("CheckConfigs without configs/poolagent.toml = %v, want ErrMissingConfig naming it", err)
	}
	_, err = Build(context.Background(), Options{Root: dir, OutDir: t.TempDir(), NFPM: "nfpm"})
	if !errors.Is(err, ErrMissingConfig) {
		t.Fatalf("Build without configs/poolagent.toml = %v, want ErrMissingConfig", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "configs", "poolagent.toml"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := CheckConfigs(dir); err != nil {
		t.Fatalf("CheckConfigs with both configs: %v", err)
	}
}

// TestMakefileNFPMVersion keeps the Makefile's NFPM_VERSION equal to
// NFPMVersion.
func TestMakefileNFPMVersion(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "NFPM_VERSION ?= " + NFPMVersion + "\n"; !bytes.Contains(b, []byte(want)) {
		t.Errorf("Makefile has no line %q", strings.TrimSpace(want))
	}
}

// unit is a parsed systemd unit file: section -> key -> values in order.
type unit map[string]map[string][]string

func parseUnit(t *testing.T, path string) unit {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unit{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" || strings.HasSuffix(line, `\`) {
				t.Fatalf("%s:%d: not a key=value line in a section: %q", path, n, line)
			}
			u[section][strings.TrimSpace(k)] = append(u[section][strings.TrimSpace(k)], strings.TrimSpace(v))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

// TestUnitFiles asserts the keys the packaged units must carry.
func TestUnitFiles(t *testing.T) {
	common := map[string]string{
		"Service.Restart":              "on-failure",
		"Service.ProtectSystem":        "strict",
		"Service.ProtectHome":          "yes",
		"Service.PrivateTmp":           "yes",
		"Service.KillMode":             "mixed",
		"Unit.After":                   "network-online.target",
		"Install.WantedBy":             "multi-user.target",
		"Service.ProtectKernelModules": "yes",
	}
	tests := []struct {
		prog   string
		want   map[string]string // section.key -> the last value
		absent []string          // section.key that must not be set
	}{
		{"poolserver", map[string]string{
			"Service.ExecStart":             "/usr/bin/poolserver serve --config /etc/poolserver/poolserver.toml",
			"Service.Type":                  "notify",
			"Service.NotifyAccess":          "main",
			"Service.ExecReload":            "/bin/kill -HUP $MAINPID",
			"Service.User":                  "poolserver",
			"Service.NoNewPrivileges":       "yes",
			"Service.StateDirectory":        "poolserver",
			"Service.LimitNOFILE":           "65536",
			"Service.CapabilityBoundingSet": "",
		}, nil},
		{"poolagent", map[string]string{
			"Service.ExecStart":              `/usr/bin/poolagent "run" "--service" "--config" "/etc/poolagent/poolagent.toml"`,
			"Service.StateDirectory":         "poolagent",
			"Service.ReadWritePaths":         "-/opt -/usr/local -/usr/bin",
			"Unit.StartLimitIntervalSec":     "0",
			"Service.RestartForceExitStatus": "10",
			"Service.TimeoutStopSec":         "70",
		}, []string{"Service.User", "Service.DynamicUser", "Service.CapabilityBoundingSet", "Service.NoNewPrivileges"}},
	}
	for _, tt := range tests {
		t.Run(tt.prog, func(t *testing.T) {
			u := parseUnit(t, filepath.Join("systemd", tt.prog+".service"))
			want := map[string]string{}
			for k, v := range common {
				want[k] = v
			}
			for k, v := range tt.want {
				want[k] = v
			}
			for key, v := range want {
				section, k, _ := strings.Cut(key, ".")
				vals, ok := u[section][k]
				if !ok {
					t.Errorf("[%s] %s= missing, want %q", section, k, v)
					continue
				}
				if got := vals[len(vals)-1]; got != v {
					t.Errorf("[%s] %s=%q, want %q", section, k, got, v)
				}
			}
			for _, key := range tt.absent {
				section, k, _ := strings.Cut(key, ".")
				if vals, ok := u[section][k]; ok {
					t.Errorf("[%s] %s=%q set, want absent", section, k, vals)
				}
			}
		})
	}
}

// TestUnitFilesVerify runs systemd-analyze verify on the units, with
// ExecStart pointed at a stand-in executable (the real binary is not
// installed here). Any diagnostic about the unit fails the test.
func TestUnitFilesVerify(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed; TestUnitFiles checked the keys")
	}
	for _, prog := range Programs {
		t.Run(prog, func(t *testing.T) {
			exe := filepath.Join(t.TempDir(), prog)
			if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(filepath.Join("systemd", prog+".service"))
			if err != nil {
				t.Fatal(err)
			}
			orig := "ExecStart=/usr/bin/" + prog + " "
			if !bytes.Contains(b, []byte(orig)) {
				t.Fatalf("no %q line", orig)
			}
			verifyUnit(t, sa, prog, bytes.ReplaceAll(b, []byte("/usr/bin/"+prog), []byte(exe)))
		})
	}
}

// TestMaintainerScripts runs the scripts with stand-ins for systemctl,
// deb-systemd-helper, deb-systemd-invoke and the user tools, which record
// their arguments, as dpkg and rpm call them: an upgrade try-restarts the
// service (a running one runs the new version, a stopped one stays
// stopped); nothing else ever starts or restarts it.
func TestMaintainerScripts(t *testing.T) {
	const upgraded, installed = "upgraded; restarted it if it was running", "installed and enabled; edit"
	tests := []struct {
		name    string
		script  string
		args    []string
		debHelp bool     // deb-systemd-helper and deb-systemd-invoke present
		exists  bool     // getent finds the poolserver user and group
		want    []string // calls, in order
		say     string   // in the script's output
	}{
		{"deb install", "poolagent/postinstall.sh", []string{"configure", ""}, true, false,
			[]string{"deb-systemd-helper --quiet was-enabled poolagent.service", "deb-systemd-helper enable poolagent.service"}, installed},
		{"deb install poolserver", "poolserver/postinstall.sh", []string{"configure"}, true, false,
			[]string{"deb-systemd-helper --quiet was-enabled poolserver.service", "deb-systemd-helper enable poolserver.service"}, installed},
		{"deb upgrade", "poolserver/postinstall.sh", []string{"configure", "1.0.0-1"}, true, false,
			[]string{"deb-systemd-helper --quiet was-enabled poolserver.service", "deb-systemd-helper enable poolserver.service",
				"deb-systemd-invoke try-restart poolserver.service"}, upgraded},
		{"deb upgrade poolagent", "poolagent/postinstall.sh", []string{"configure", "0.9.0-1"}, true, false,
			[]string{"deb-systemd-helper --quiet was-enabled poolagent.service", "deb-systemd-helper enable poolagent.service",
				"deb-systemd-invoke try-restart poolagent.service"}, upgraded},
		{"deb abort-upgrade", "poolagent/postinstall.sh", []string{"abort-upgrade", "1.1.0-1"}, true, false, nil, ""},
		{"rpm install", "poolagent/postinstall.sh", []string{"1"}, false, false,
			[]string{"systemctl enable poolagent.service"}, installed},
		{"rpm install poolserver", "poolserver/postinstall.sh", []string{"1"}, false, false,
			[]string{"systemctl enable poolserver.service"}, installed},
		{"rpm upgrade", "poolserver/postinstall.sh", []string{"2"}, false, false,
			[]string{"systemctl try-restart poolserver.service"}, upgraded},
		{"rpm upgrade poolagent", "poolagent/postinstall.sh", []string{"2"}, false, false,
			[]string{"systemctl try-restart poolagent.service"}, upgraded},
		{"rpm upgrade, two installed", "poolagent/postinstall.sh", []string{"3"}, false, false,
			[]string{"systemctl try-restart poolagent.service"}, upgraded},
		{"deb remove", "poolserver/preremove.sh", []string{"remove"}, true, false,
			[]string{"deb-systemd-helper disable poolserver.service"}, ""},
		{"deb upgrade prerm", "poolserver/preremove.sh", []string{"upgrade", "1.1.0-1"}, true, false, nil, ""},
		{"rpm remove", "poolagent/preremove.sh", []string{"0"}, false, false,
			[]string{"systemctl disable poolagent.service"}, ""},
		{"rpm upgrade preun", "poolagent/preremove.sh", []string{"1"}, false, false, nil, ""},
		{"deb purge", "poolagent/postremove.sh", []string{"purge"}, true, false,
			[]string{"deb-systemd-helper purge poolagent.service"}, ""},
		{"rpm upgrade postun", "poolserver/postremove.sh", []string{"1"}, false, false, nil, ""},
		{"new user", "poolserver/preinstall.sh", []string{"install"}, false, false, []string{
			"getent group poolserver", "groupadd --system poolserver", "getent passwd poolserver",
			"useradd --system --gid poolserver --home-dir /var/lib/poolserver --no-create-home --shell /bin/false --comment poolserver control plane poolserver"}, ""},
		{"existing user", "poolserver/preinstall.sh", []string{"1"}, false, true,
			[]string{"getent group poolserver", "getent passwd poolserver"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bin := t.TempDir()
			log := filepath.Join(t.TempDir(), "calls")
			stub := func(name, body string) {
				s := "#!/bin/sh\necho \"" + name + " $*\" >>" + log + "\n" + body + "\n"
				if err := os.WriteFile(filepath.Join(bin, name), []byte(s), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			stub("systemctl", "exit 0")
			stub("groupadd", "exit 0")
			stub("useradd", "exit 0")
			if tt.exists {
				stub("getent", "exit 0")
			} else {
				stub("getent", "exit 2")
			}
			if tt.debHelp {
				stub("deb-systemd-helper", "exit 0")
				stub("deb-systemd-invoke", "exit 0")
			}
			cmd := exec.Command("/bin/sh", append([]string{filepath.Join("scripts", tt.script)}, tt.args...)...)
			cmd.Env = []string{"PATH=" + bin}
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s %v: %v\n%s", tt.script, tt.args, err, out)
			}
			if !strings.Contains(string(out), tt.say) {
				t.Errorf("%s %v said %q, want %q in it", tt.script, tt.args, out, tt.say)
			}
			b, err := os.ReadFile(log)
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Fatal(err)
			}
			var got []string
			for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				// daemon-reload and stop depend on whether this machine
				// runs systemd. Nothing starts or restarts a service
				// unconditionally: only try-restart, checked in want.
				f := strings.Fields(l)
				if len(f) > 1 && (f[0] == "systemctl" || f[0] == "deb-systemd-invoke") &&
					slices.Contains([]string{"start", "restart", "reload-or-restart", "enable --now"}, f[1]) || strings.Contains(l, "--now") {
					t.Errorf("%s started a service: %q", tt.script, l)
				}
				if l == "" || l == "systemctl daemon-reload" || strings.HasPrefix(l, "systemctl stop ") {
					continue
				}
				got = append(got, l)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// findNFPM returns an nfpm command: $NFPM, nfpm on PATH or in GOPATH/bin,
// else one installed at NFPMVersion into a temporary directory.
func findNFPM(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("NFPM"); p != "" {
		return p
	}
	if p, err := exec.LookPath("nfpm"); err == nil {
		return p
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		for _, dir := range filepath.SplitList(strings.TrimSpace(string(out))) {
			if p := filepath.Join(dir, "bin", "nfpm"); isExecutable(p) {
				return p
			}
		}
	}
	dir := t.TempDir()
	cmd := exec.Command("go", "install", "github.com/goreleaser/nfpm/v2/cmd/nfpm@"+NFPMVersion)
	cmd.Env = append(os.Environ(), "GOBIN="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("install nfpm %s (or set NFPM): %v\n%s", NFPMVersion, err, out)
	}
	return filepath.Join(dir, "nfpm")
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr)
	}
	return string(out)
}

// TestPackages builds the amd64 packages and the Windows zip once and
// inspects them.
func TestPackages(t *testing.T) {
	if testing.Short() {
		t.Skip("builds packages")
	}
	if runtime.GOOS != "linux" {
		t.Skip("packages are built on Linux")
	}
	if err := CheckConfigs(root); err != nil {
		t.Skipf("cannot build the packages yet: %v", err)
	}
	const version = "v1.2.3-4-gabc1234"
	pkgVersion := PackageVersion(version)
	out := t.TempDir()
	files, err := Build(context.Background(), Options{
		Root: root, Version: version, OutDir: out, Arches: []string{"amd64"}, Windows: true, NFPM: findNFPM(t),
		// TestMSI builds and checks the MSI.
		MSI: false,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"poolagent_1.2.3+4.gabc1234_amd64.deb", "poolagent-1.2.3+4.gabc1234-1.x86_64.rpm",
		"poolserver_1.2.3+4.gabc1234_amd64.deb", "poolserver-1.2.3+4.gabc1234-1.x86_64.rpm",
		"poolagent_1.2.3+4.gabc1234_windows_amd64.zip",
	}
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	if !slices.Equal(names, want) {
		t.Fatalf("Build wrote %q, want %q", names, want)
	}
	entries, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(want) {
		t.Errorf("out dir holds %d entries, want only the %d packages (no leftover build dir)", len(entries), len(want))
	}

	for _, prog := range Programs {
		t.Run(prog+".deb", func(t *testing.T) {
			checkDeb(t, filepath.Join(out, PackageFileName(prog, pkgVersion, "amd64", "deb")), prog, pkgVersion, version)
		})
		t.Run(prog+".rpm", func(t *testing.T) {
			checkRPM(t, filepath.Join(out, PackageFileName(prog, pkgVersion, "amd64", "rpm")), prog, pkgVersion)
		})
	}
	t.Run("windows zip", func(t *testing.T) {
		checkZip(t, filepath.Join(out, want[4]), version)
	})
}

func checkDeb(t *testing.T, path, prog, pkgVersion, version string) {
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Skip("dpkg-deb is not installed (apt-get install dpkg): cannot inspect the .deb")
	}
	fields := map[string]string{
		"Package": prog, "Version": pkgVersion + "-1", "Architecture": "amd64", "Section": "admin",
	}
	for k, v := range fields {
		if got := strings.TrimSpace(run(t, "dpkg-deb", "--field", path, k)); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	for _, k := range []string{"Maintainer", "Description"} {
		if strings.TrimSpace(run(t, "dpkg-deb", "--field", path, k)) == "" {
			t.Errorf("%s is empty", k)
		}
	}
	info := run(t, "dpkg-deb", "--info", path)
	scripts := []string{"postinst", "prerm", "postrm"}
	if prog == "poolserver" {
		scripts = append(scripts, "preinst")
	}
	for _, s := range scripts {
		if !strings.Contains(info, " "+s+" ") {
			t.Errorf("no %s maintainer script in:\n%s", s, info)
		}
	}
	if got := strings.TrimSpace(run(t, "dpkg-deb", "--info", path, "conffiles")); got != "/etc/"+prog+"/"+prog+".toml" {
		t.Errorf("conffiles: %q, want only the sample config", got)
	}

	contents := run(t, "dpkg-deb", "--contents", path)
	for file, mode := range map[string]string{
		"./usr/bin/" + prog:                             "-rwxr-xr-x root/root",
		"./usr/lib/systemd/system/" + prog + ".service": "-rw-r--r-- root/root",
		"./etc/" + prog + "/" + prog + ".toml":          "-rw-r--r-- root/root",
	} {
		found := false
		for _, line := range strings.Split(contents, "\n") {
			if strings.HasSuffix(line, " "+file) {
				found = true
				if !strings.HasPrefix(line, mode) {
					t.Errorf("%s: %q, want mode and owner %q", file, line, mode)
				}
			}
		}
		if !found {
			t.Errorf("%s missing from:\n%s", file, contents)
		}
	}

	// The files are the repository's, and the binary is static, stripped
	// and stamped.
	dir := t.TempDir()
	run(t, "dpkg-deb", "-x", path, dir)
	for src, dst := range map[string]string{
		filepath.Join("systemd", prog+".service"):    "usr/lib/systemd/system/" + prog + ".service",
		filepath.Join(root, "configs", prog+".toml"): "etc/" + prog + "/" + prog + ".toml",
	} {
		a, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dir, dst))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("/%s differs from %s", dst, src)
		}
	}
	checkELF(t, filepath.Join(dir, "usr", "bin", prog), version)
}

func checkELF(t *testing.T, path, version string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Machine != elf.EM_X86_64 {
		t.Errorf("%s: machine %v, want x86-64", path, f.Machine)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s is dynamically linked (CGO_ENABLED=0 expected)", path)
		}
	}
	if f.Section(".symtab") != nil {
		t.Errorf("%s has a symbol table (-s -w expected)", path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(version)) {
		t.Errorf("%s does not contain the version stamp %q", path, version)
	}
	if wd, _ := os.Getwd(); wd != "" && bytes.Contains(b, []byte(wd)) {
		t.Errorf("%s contains the build directory (-trimpath expected)", path)
	}
}

func checkRPM(t *testing.T, path, prog, pkgVersion string) {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lead := make([]byte, 4)
	if _, err := io.ReadFull(f, lead); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if !bytes.Equal(lead, []byte{0xed, 0xab, 0xee, 0xdb}) {
		t.Fatalf("%s does not start with the rpm lead magic: % x", path, lead)
	}
	if _, err := exec.LookPath("rpm"); err != nil {
		t.Skip("rpm is not installed (apt-get install rpm): checked only the rpm lead")
	}
	if got, want := run(t, "rpm", "-qp", "--qf", "%{NAME} %{VERSION} %{RELEASE} %{ARCH}", path), prog+" "+pkgVersion+" 1 x86_64"; got != want {
		t.Errorf("rpm -qp: %q, want %q", got, want)
	}
	list := strings.Fields(run(t, "rpm", "-qpl", path))
	for _, file := range []string{"/usr/bin/" + prog, "/usr/lib/systemd/system/" + prog + ".service", "/etc/" + prog + "/" + prog + ".toml"} {
		if !slices.Contains(list, file) {
			t.Errorf("rpm -qpl: %s missing from %q", file, list)
		}
	}
	if got := strings.TrimSpace(run(t, "rpm", "-qpc", path)); got != "/etc/"+prog+"/"+prog+".toml" {
		t.Errorf("rpm -qpc: %q, want only the sample config", got)
	}
	scripts := run(t, "rpm", "-qp", "--scripts", path)
	for _, s := range []string{"postinstall scriptlet", "preuninstall scriptlet", "postuninstall scriptlet"} {
		if !strings.Contains(scripts, s) {
			t.Errorf("rpm --scripts: no %s", s)
		}
	}
}

func checkZip(t *testing.T, path, version string) {
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var names []string
	files := map[string][]byte{}
	for _, f := range zr.File {
		names = append(names, f.Name)
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		files[f.Name] = b
	}
	if want := []string{"poolagent.exe", "poolagent.toml", "INSTALL.txt"}; !slices.Equal(names, want) {
		t.Fatalf("zip holds %q, want %q", names, want)
	}
	exe, err := pe.NewFile(bytes.NewReader(files["poolagent.exe"]))
	if err != nil {
		t.Fatalf("poolagent.exe: %v", err)
	}
	if exe.Machine != pe.IMAGE_FILE_MACHINE_AMD64 {
		t.Errorf("poolagent.exe: machine %#x, want amd64", exe.Machine)
	}
	if !bytes.Contains(files["poolagent.exe"], []byte(version)) {
		t.Errorf("poolagent.exe does not contain the version stamp %q", version)
	}
	if want := windowsConfig(t); !bytes.Equal(files["poolagent.toml"], want) {
		t.Error("poolagent.toml is not WindowsConfig(configs/poolagent.toml)")
	}
	install := string(files["INSTALL.txt"])
	for _, s := range []string{`poolagent.exe install --config C:\ProgramData\poolagent\poolagent.toml`, `poolagent.exe start`, "\r\n"} {
		if !strings.Contains(install, s) {
			t.Errorf("INSTALL.txt lacks %q", s)
		}
	}
	if strings.Contains(strings.ReplaceAll(install, "\r\n", ""), "\n") {
		t.Error("INSTALL.txt has bare LF line endings")
	}
}
