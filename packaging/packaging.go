// Package packaging builds poolagent's and poolserver's release packages:
// .deb and .rpm for Linux (with nfpm, configured by packaging/nfpm/*.yaml),
// carrying the binaries, the sample configurations from configs/ as
// configuration files, the systemd units of packaging/systemd and the
// maintainer scripts of packaging/scripts, and, for Windows, a zip of
// poolagent with INSTALL.txt and an MSI (packaging/windows/poolagent.wxs,
// built with msitools' wixl), both with the sample configuration adapted to
// Windows paths (WindowsConfig).
//
// `make packages` runs it through packaging/build; the tests build the
// amd64 packages once and inspect them.
package packaging

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// Programs are the packaged programs, each with packaging/nfpm/<name>.yaml
// and configs/<name>.toml.
var Programs = []string{"poolagent", "poolserver"}

// Formats are the nfpm packagers used for every Linux architecture.
var Formats = []string{"deb", "rpm"}

// DefaultArches are the Linux architectures `make packages` builds.
var DefaultArches = []string{"amd64", "arm64"}

// NFPMVersion is the nfpm release the Makefile installs (NFPM_VERSION) and
// the tests use. Later releases need modules the Go module proxy does not
// serve.
const NFPMVersion = "v2.45.0"

// versionPkg is the -X target of the build stamp.
const versionPkg = "github.com/poolagent/poolagent/internal/version.Version"

// ErrMissingConfig is returned when a sample configuration in configs/ is
// missing.
var ErrMissingConfig = errors.New("sample configuration missing")

// Options says what Build builds.
type Options struct {
	// Root is the repository root (holding go.mod, configs/ and packaging/).
	Root string
	// Version is the release version stamped into the binaries, e.g.
	// v1.2.3 or a `git describe` string; the packages carry
	// PackageVersion(Version).
	Version string
	// OutDir receives the packages; it is created if missing.
	OutDir string
	// Arches are the Linux GOARCH values to package; empty: DefaultArches.
	Arches []string
	// Windows also builds the Windows amd64 zip of poolagent.
	Windows bool
	// MSI also builds the Windows amd64 MSI of poolagent (with Windows):
	// it needs wixl and msibuild (msitools) on PATH.
	MSI bool
	// NFPM is the nfpm command; Go is the go command (empty: "go").
	NFPM, Go string
	// Log receives one line per step; nil: discarded.
	Log io.Writer
}

// Build checks that the sample configurations exist, cross-builds the
// binaries (CGO_ENABLED=0, -trimpath, stripped, version-stamped) and writes
// the packages into OutDir. It returns the paths of the files written.
func Build(ctx context.Context, o Options) ([]string, error) {
	if o.Go == "" {
		o.Go = "go"
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if len(o.Arches) == 0 {
		o.Arches = DefaultArches
	}
	if o.NFPM == "" {
		return nil, errors.New("packaging: no nfpm command given")
	}
	work, err := prepare(o)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)

	pkgVersion := PackageVersion(o.Version)
	var out []string
	for _, arch := range o.Arches {
		bin := filepath.Join(work, "linux_"+arch)
		for _, prog := range Programs {
			if err := o.goBuild(ctx, "linux", arch, prog, filepath.Join(bin, prog)); err != nil {
				return out, err
			}
		}
		for _, prog := range Programs {
			for _, format := range Formats {
				target := filepath.Join(o.OutDir, PackageFileName(prog, pkgVersion, arch, format))
				if err := o.nfpm(ctx, prog, format, arch, pkgVersion, bin, target); err != nil {
					return out, err
				}
				out = append(out, target)
			}
		}
	}
	if o.Windows {
		files, err := o.windows(ctx, work)
		out = append(out, files...)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// prepare checks the sample configurations and makes OutDir and a work
// dir inside it (the caller removes it).
func prepare(o Options) (string, error) {
	if err := CheckConfigs(o.Root); err != nil {
		return "", err
	}
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return "", fmt.Errorf("packaging: %w", err)
	}
	work, err := os.MkdirTemp(o.OutDir, ".build-")
	if err != nil {
		return "", fmt.Errorf("packaging: %w", err)
	}
	return work, nil
}

// WindowsPackages writes only the Windows zip and, with o.MSI, the MSI of
// poolagent into o.OutDir (o.Arches, o.NFPM and o.Windows are not used).
// It returns the paths of the files written.
func WindowsPackages(ctx context.Context, o Options) ([]string, error) {
	if o.Go == "" {
		o.Go = "go"
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	work, err := prepare(o)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	return o.windows(ctx, work)
}

// windows builds poolagent.exe in work and writes the zip and the MSI.
func (o Options) windows(ctx context.Context, work string) ([]string, error) {
	var out []string
	pkgVersion := PackageVersion(o.Version)
	exe := filepath.Join(work, "windows_amd64", "poolagent.exe")
	if err := o.goBuild(ctx, "windows", "amd64", "poolagent", exe); err != nil {
		return out, err
	}
	sample, err := os.ReadFile(filepath.Join(o.Root, "configs", "poolagent.toml"))
	if err != nil {
		return out, fmt.Errorf("packaging: %w", err)
	}
	winConf, err := WindowsConfig(sample)
	if err != nil {
		return out, err
	}
	conf := filepath.Join(work, "windows_amd64", "poolagent.sample.toml")
	if err := os.WriteFile(conf, winConf, 0o644); err != nil {
		return out, fmt.Errorf("packaging: %w", err)
	}
	target := filepath.Join(o.OutDir, fmt.Sprintf("poolagent_%s_windows_amd64.zip", pkgVersion))
	fmt.Fprintf(o.Log, "zip %s\n", target)
	err = writeZip(target, []zipEntry{
		{name: "poolagent.exe", src: exe, exec: true},
		{name: "poolagent.toml", src: conf},
		{name: "INSTALL.txt", src: filepath.Join(o.Root, "packaging", "windows", "INSTALL.txt"), crlf: true},
	})
	if err != nil {
		return out, err
	}
	out = append(out, target)
	if o.MSI {
		target := filepath.Join(o.OutDir, MSIFileName(pkgVersion))
		fmt.Fprintf(o.Log, "msi %s\n", target)
		if err := buildMSI(ctx, filepath.Join(o.Root, "packaging", "windows", "poolagent.wxs"), filepath.Dir(exe), MSIVersion(pkgVersion), target); err != nil {
			return out, err
		}
		out = append(out, target)
	}
	return out, nil
}

// CheckConfigs returns ErrMissingConfig, naming the file, when a program's
// sample configuration is not in root/configs.
func CheckConfigs(root string) error {
	for _, prog := range Programs {
		p := filepath.Join("configs", prog+".toml")
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			return fmt.Errorf("packaging: %w: %s is needed as /etc/%s/%s.toml in the packages (%v)",
				ErrMissingConfig, p, prog, prog, err)
		}
	}
	return nil
}

func (o Options) goBuild(ctx context.Context, goos, arch, prog, dst string) error {
	fmt.Fprintf(o.Log, "build %s %s/%s\n", prog, goos, arch)
	cmd := exec.CommandContext(ctx, o.Go, "build", "-trimpath",
		"-ldflags", "-s -w -X "+versionPkg+"="+o.Version,
		"-o", dst, "./cmd/"+prog)
	cmd.Dir = o.Root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+arch)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("packaging: build %s for %s/%s: %w\n%s", prog, goos, arch, err, out)
	}
	return nil
}

func (o Options) nfpm(ctx context.Context, prog, format, arch, pkgVersion, bindir, target string) error {
	fmt.Fprintf(o.Log, "package %s\n", target)
	cmd := exec.CommandContext(ctx, o.NFPM, "package",
		"--config", filepath.Join("packaging", "nfpm", prog+".yaml"),
		"--packager", format, "--target", target)
	cmd.Dir = o.Root
	cmd.Env = append(os.Environ(), "ARCH="+arch, "PKG_VERSION="+pkgVersion, "BINDIR="+bindir)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("packaging: nfpm %s %s for %s: %w\n%s", format, prog, arch, err, out)
	}
	return nil
}

// PackageFileName is the conventional file name of a package: Debian's
// name_version_arch.deb and Red Hat's name-version-release.arch.rpm.
func PackageFileName(prog, pkgVersion, arch, format string) string {
	switch format {
	case "deb":
		return fmt.Sprintf("%s_%s_%s.deb", prog, pkgVersion, arch)
	case "rpm":
		rpmArch := map[string]string{"amd64": "x86_64", "arm64": "aarch64", "386": "i386"}[arch]
		if rpmArch == "" {
			rpmArch = arch
		}
		return fmt.Sprintf("%s-%s-1.%s.rpm", prog, pkgVersion, rpmArch)
	}
	return fmt.Sprintf("%s_%s_%s.%s", prog, pkgVersion, arch, format)
}

var (
	releaseRE  = regexp.MustCompile(`^\d+\.\d+`)
	describeRE = regexp.MustCompile(`^(\d+\.\d+\.\d+)-(\d+)-g([0-9a-f]+)(-dirty)?$`)
)

// PackageVersion turns a build version (a tag such as v1.2.3 or
// v1.2.3-rc.1, a `git describe` string, a commit hash, "dev") into a version
// that dpkg and rpm accept and order correctly:
//
//	v1.2.3                -> 1.2.3
//	v1.2.3-rc.1           -> 1.2.3~rc.1          (before 1.2.3)
//	v1.2.3-4-gabc1234     -> 1.2.3+4.gabc1234    (after 1.2.3)
//	abc1234-dirty         -> 0.0.0~abc1234.dirty (before any release)
//	0999a18               -> 0.0.0~0999a18       (a hash, not a number)
//
// Only letters, digits, '.', '+' and '~' remain; other characters become '.'.
func PackageVersion(v string) string {
	v = strings.TrimSpace(v)
	if len(v) > 1 && v[0] == 'v' && isDigit(v[1]) {
		v = v[1:]
	}
	if !releaseRE.MatchString(v) {
		// A commit hash (even one starting with a digit), "dev": below
		// every release, so that a release always upgrades it.
		if v == "" {
			v = "dev"
		}
		return "0.0.0~" + sanitize(v)
	}
	if m := describeRE.FindStringSubmatch(v); m != nil {
		s := m[1] + "+" + m[2] + ".g" + m[3]
		if m[4] != "" {
			s += ".dirty"
		}
		return s
	}
	if base, pre, ok := strings.Cut(v, "-"); ok {
		return sanitize(base) + "~" + sanitize(pre)
	}
	return sanitize(v)
}

func isDigit(b byte) bool { return '0' <= b && b <= '9' }

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9', r == '.', r == '+', r == '~':
			return r
		}
		return '.'
	}, s)
}

type zipEntry struct {
	name, src string
	exec      bool // mode 0755
	crlf      bool // Windows line endings, for Notepad
}

// writeZip writes the entries into a new zip file at path, atomically.
func writeZip(path string, entries []zipEntry) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".zip-")
	if err != nil {
		return fmt.Errorf("packaging: zip: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	zw := zip.NewWriter(tmp)
	for _, e := range entries {
		if err := addToZip(zw, e); err != nil {
			return fmt.Errorf("packaging: zip %s: %w", e.name, err)
		}
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("packaging: zip: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("packaging: zip: %w", err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("packaging: zip: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("packaging: zip: %w", err)
	}
	return nil
}

func addToZip(zw *zip.Writer, e zipEntry) error {
	f, err := os.Open(e.src)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	h, err := zip.FileInfoHeader(fi)
	if err != nil {
		return err
	}
	h.Name = e.name
	h.Method = zip.Deflate
	mode := os.FileMode(0o644)
	if e.exec {
		mode = 0o755
	}
	h.SetMode(mode)
	w, err := zw.CreateHeader(h)
	if err != nil {
		return err
	}
	if e.crlf {
		b, err := io.ReadAll(f)
		if err != nil {
			return err
		}
		b = bytes.ReplaceAll(bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
		_, err = w.Write(b)
		return err
	}
	_, err = io.Copy(w, f)
	return err
}
