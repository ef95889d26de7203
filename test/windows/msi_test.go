package windows_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/poolagent/poolagent/internal/e2e"
	"github.com/poolagent/poolagent/internal/winetest"
	"github.com/poolagent/poolagent/packaging"
)

// buildMSI builds the MSI of version with the packaging code `make
// packages` runs, or skips (fails with CI=true) without msitools.
func buildMSI(t *testing.T, ctx context.Context, dir, version string) string {
	t.Helper()
	for _, tool := range []string{"wixl", "msibuild", "msiinfo"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is not installed and CI=true (apt-get install wixl msitools)", tool)
			}
			t.Skipf("%s is not installed (apt-get install wixl msitools): no MSI to install", tool)
		}
	}
	out := filepath.Join(dir, "msi-"+version)
	files, err := packaging.WindowsPackages(ctx, packaging.Options{Root: suite.root, Version: "v" + version, OutDir: out, MSI: true})
	if err != nil {
		t.Fatal(err)
	}
	msi := filepath.Join(out, packaging.MSIFileName(version))
	if len(files) != 2 || files[1] != msi {
		t.Fatalf("WindowsPackages wrote %q, want the zip and %s", files, msi)
	}
	return msi
}

// msiexec runs msiexec quietly with a verbose log, and fails t with the
// log's tail when it does not succeed. (Wine's msiexec logs every property,
// MsiHiddenProperties or not: the enrollment token's absence from the log
// cannot be checked here; TestMSI in packaging checks the tables that hide
// it on Windows.)
func msiexec(t *testing.T, ctx context.Context, w *winetest.Wine, dir, name string, args ...string) {
	t.Helper()
	log := filepath.Join(dir, name+".log")
	res, err := w.Run(ctx, "msiexec", append(args, "/qn", "/l*v", winetest.WindowsPath(log))...)
	if err != nil {
		t.Fatal(err)
	}
	if res.Code != 0 {
		b, _ := os.ReadFile(log)
		if len(b) > 8000 {
			b = b[len(b)-8000:]
		}
		t.Fatalf("msiexec %s: %s\nlog tail:\n%s", strings.Join(args, " "), res, b)
	}
}

// agentStatus is `poolagent.exe status --json`.
type agentStatus struct {
	Running   bool   `json:"running"`
	Version   string `json:"version"`
	Server    string `json:"server"`
	ClientID  string `json:"clientId"`
	Connected bool   `json:"connected"`
	LastError string `json:"lastError"`
}

// waitConnected polls `poolagent.exe status --json` (the CLI of the
// installed program, through the local API and its token file) until the
// service reports a successful heartbeat.
func waitConnected(t *testing.T, ctx context.Context, w *winetest.Wine, exe string) agentStatus {
	t.Helper()
	var st agentStatus
	var last winetest.Result
	err := e2e.Eventually(ctx, 90*time.Second, func() (bool, error) {
		res, err := w.Run(ctx, exe, "status", "--json")
		if err != nil {
			return false, err
		}
		last = res
		st = agentStatus{}
		if json.Unmarshal([]byte(res.Stdout), &st) != nil {
			return false, nil
		}
		return res.Code == 0 && st.Running && st.Connected, nil
	})
	if err != nil {
		t.Fatalf("the installed service never reported a heartbeat: %v\nlast status: %s", err, last)
	}
	return st
}

// TestMSI installs the MSI with its properties under Wine against a real
// poolserver (HTTPS, a private CA), checks the service and its heartbeat,
// upgrades it to a newer MSI with the same command line (spent token
// included) and checks that the host kept its identity and configuration,
// then uninstalls it and checks what is left.
func TestMSI(t *testing.T) {
	w := needWine(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	dir := tempDir(t)
	msi100 := buildMSI(t, ctx, dir, "1.0.0")
	msi101 := buildMSI(t, ctx, dir, "1.0.1")

	srv, err := e2e.StartServer(ctx, suite.bins, filepath.Join(dir, "server"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	pool, err := srv.CLI(ctx, "pool", "create", "--name", "windows", "--type", "AD")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := srv.CLI(ctx, "enroll-token", "create", "--pool", pool)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := srv.GenerateKeys(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}

	driveC := filepath.Join(w.Prefix, "drive_c")
	progDir := filepath.Join(driveC, "Program Files", "poolagent")
	dataDir := filepath.Join(driveC, "ProgramData", "poolagent")
	confFile := filepath.Join(dataDir, "poolagent.toml")
	credsFile := filepath.Join(dataDir, "client.json")
	const exe = `C:\Program Files\poolagent\poolagent.exe`
	props := []string{
		"SERVER_URL=" + srv.URL, "ENROLL_TOKEN=" + tok, "TRUSTED_KEYS=" + keys.Public,
		"SERVER_CA=" + winetest.WindowsPath(srv.CA),
	}

	// Whatever happens, leave the prefix as the other tests expect it: no
	// poolagent service, no C:\ProgramData\poolagent.
	t.Cleanup(func() {
		if _, _, err := w.ServiceState(context.Background(), "poolagent"); err == nil {
			_, _ = w.Run(context.Background(), "msiexec", "/x", winetest.WindowsPath(msi101), "/qn")
			_, _ = w.Run(context.Background(), "msiexec", "/x", winetest.WindowsPath(msi100), "/qn")
		}
		_ = os.RemoveAll(dataDir)
	})

	// Install with the properties.
	msiexec(t, ctx, w, dir, "install-1.0.0", append([]string{"/i", winetest.WindowsPath(msi100)}, props...)...)
	for _, f := range []string{filepath.Join(progDir, "poolagent.exe"), filepath.Join(progDir, "poolagent.sample.toml"), confFile, credsFile} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("after install: %v", err)
		}
	}
	conf, err := os.ReadFile(confFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`server_url = "` + srv.URL + `"`,
		`trusted_keys = ["` + keys.Public + `"]`,
		`server_ca = "` + strings.ReplaceAll(winetest.WindowsPath(srv.CA), `\`, `\\`) + `"`,
		`state_dir = 'C:\ProgramData\poolagent'`,
	} {
		if !bytes.Contains(conf, []byte(want)) {
			t.Errorf("the configuration lacks %q:\n%s", want, conf)
		}
	}
	if res, err := w.WaitServiceState(ctx, "poolagent", "RUNNING", 60*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, res)
	}
	// Wine's sc has no qc: the service's registry key says how it is
	// registered. (Wine's sc failure succeeds without storing the recovery
	// actions, so restart on failure is checked in the MSI's tables only.)
	svcKey, err := w.Run(ctx, "reg", "query", `HKLM\System\CurrentControlSet\Services\poolagent`)
	if err != nil {
		t.Fatal(err)
	}
	args := strings.ReplaceAll(packaging.MSIServiceArguments(), "[CommonAppDataFolder]", `C:\ProgramData\`)
	regOut := strings.ReplaceAll(svcKey.Stdout, "\r\n", "\n")
	// Windows Installer quotes the program's path; Wine's does not.
	if !strings.Contains(regOut, `ImagePath    REG_SZ    "C:\Program Files\poolagent\poolagent.exe" `+args+"\n") &&
		!strings.Contains(regOut, `ImagePath    REG_SZ    C:\Program Files\poolagent\poolagent.exe `+args+"\n") {
		t.Errorf("the service's command line is not poolagent.exe %s:\n%s", args, svcKey)
	}
	for _, want := range []string{
		"Start    REG_DWORD    0x2", // automatic
		"ObjectName    REG_SZ    LocalSystem",
	} {
		if !strings.Contains(svcKey.Stdout, want) {
			t.Errorf("the service's registry key lacks %q:\n%s", want, svcKey)
		}
	}
	st := waitConnected(t, ctx, w, exe)
	if st.Version != "v1.0.0" || st.Server != srv.URL || st.ClientID == "" {
		t.Errorf("status after install: %+v", st)
	}
	clientID := st.ClientID

	// An administrator's edit, which the upgrade must keep.
	edited := bytes.Replace(conf, []byte(`log_level = "info"`), []byte(`log_level = "debug" # edited by hand`), 1)
	if bytes.Equal(edited, conf) {
		t.Fatal(`the configuration has no log_level = "info" line to edit`)
	}
	if err := os.WriteFile(confFile, edited, 0o644); err != nil {
		t.Fatal(err)
	}
	creds, err := os.ReadFile(credsFile)
	if err != nil {
		t.Fatal(err)
	}

	// Upgrade with the same command line: the token is spent, the host is
	// enrolled, so it is not used.
	msiexec(t, ctx, w, dir, "upgrade-1.0.1", append([]string{"/i", winetest.WindowsPath(msi101)}, props...)...)
	if b, _ := os.ReadFile(credsFile); !bytes.Equal(b, creds) {
		t.Error("the upgrade changed client.json")
	}
	if b, _ := os.ReadFile(confFile); !bytes.Equal(b, edited) {
		t.Errorf("the upgrade changed the configuration:\n%s", b)
	}
	if res, err := w.WaitServiceState(ctx, "poolagent", "RUNNING", 60*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, res)
	}
	st = waitConnected(t, ctx, w, exe)
	if st.Version != "v1.0.1" || st.ClientID != clientID {
		t.Errorf("status after the upgrade: %+v, want version v1.0.1 and client %s", st, clientID)
	}
	// One product: the upgrade replaced 1.0.0.
	reg, err := w.Run(ctx, "reg", "query", `HKLM\Software\Microsoft\Windows\CurrentVersion\Uninstall`, "/s")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(reg.Stdout, "DisplayName    REG_SZ    poolagent"); n != 1 {
		t.Errorf("%d products named poolagent installed after the upgrade, want 1:\n%s", n, reg.Stdout)
	}

	// Uninstall: the service and the program go, ProgramData stays. The
	// service is stopped, and its process waited for, first: the SCM hears
	// STOPPED a moment before the process exits, and while it runs its file
	// is locked. Windows Installer then leaves the file for removal at the
	// next reboot (and asks for one); Wine's leaves it for ever. The MSI's
	// own stop on uninstall is checked in its ServiceControl table
	// (packaging's TestMSI).
	if res, err := w.SC(ctx, "stop", "poolagent"); err != nil {
		t.Fatalf("%v\n%s", err, res)
	}
	if res, err := w.WaitServiceState(ctx, "poolagent", "STOPPED", 60*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, res)
	}
	if err := w.WaitProgramGone(ctx, "poolagent.exe", 60*time.Second); err != nil {
		t.Fatal(err)
	}
	msiexec(t, ctx, w, dir, "uninstall", "/x", winetest.WindowsPath(msi101))
	if state, res, err := w.ServiceState(ctx, "poolagent"); err == nil {
		t.Errorf("the service is still there after uninstall (%s):\n%s", state, res)
	}
	if _, err := os.Stat(filepath.Join(progDir, "poolagent.exe")); !os.IsNotExist(err) {
		t.Errorf("poolagent.exe after uninstall: %v", err)
	}
	if b, _ := os.ReadFile(credsFile); !bytes.Equal(b, creds) {
		t.Error("client.json is gone or changed after uninstall")
	}
	if b, _ := os.ReadFile(confFile); !bytes.Equal(b, edited) {
		t.Error("the configuration is gone or changed after uninstall")
	}
}
