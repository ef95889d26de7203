package main

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/poolagent/poolagent/controlplane/store/sqlite"
)

// cliFail runs the binary, wants exit status 1 and returns its stderr.
func cliFail(t *testing.T, args ...string) string {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command(binary, args...)
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("poolserver %s: %v, want exit status 1\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stderr.String()
}

// releasesIn lists the catalog of a data dir and the files in its
// artifacts dir.
func releasesIn(t *testing.T, dir string) (catalog []string, files []string) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rs, err := st.ListReleases(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		catalog = append(catalog, r.Name+" "+r.Version+" "+r.OS+"/"+r.Arch+" "+string(r.Channel)+" "+r.SHA256)
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "artifacts"))
	for _, e := range ents {
		files = append(files, e.Name())
	}
	return catalog, files
}

// TestReleaseExportImport: a release signed and published on one
// poolserver is exported to a bundle and imported into a second one's
// data dir through the real binary; the bytes, signature and channel
// arrive intact. A bundle with a changed byte, one checked against the
// wrong key, one with a path-traversing entry and one with an oversize
// entry are each refused with nothing imported.
func TestReleaseExportImport(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	cli(t, "key", "generate", "--out", filepath.Join(dir, "release"))
	cli(t, "key", "generate", "--out", filepath.Join(dir, "other"))
	for _, goos := range []string{"linux", "windows"} {
		art := filepath.Join(dir, "ad-"+goos)
		os.WriteFile(art, []byte("#!/bin/sh\necho 1.1.0 "+goos+"\n"+strings.Repeat("x", 5000)), 0o755)
		cli(t, "release", "sign", "--key", filepath.Join(dir, "release.key"), "--name", "AD", "--version", "1.1.0", "--os", goos, "--arch", "amd64", "--file", art)
		cli(t, "release", "publish", "--data-dir", src, "--name", "AD", "--version", "1.1.0", "--os", goos, "--arch", "amd64",
			"--channel", "EA", "--file", art, "--signature", art+".minisig")
	}
	// Another version must stay out of the bundle.
	art := filepath.Join(dir, "ad-old")
	os.WriteFile(art, []byte("old"), 0o755)
	cli(t, "release", "sign", "--key", filepath.Join(dir, "release.key"), "--name", "AD", "--version", "1.0.0", "--os", "linux", "--arch", "amd64", "--file", art)
	cli(t, "release", "publish", "--data-dir", src, "--name", "AD", "--version", "1.0.0", "--os", "linux", "--arch", "amd64", "--file", art, "--signature", art+".minisig")

	bundle := filepath.Join(dir, "ad-1.1.0.tar")
	out := cli(t, "release", "export", "--data-dir", src, "--name", "AD", "--version", "1.1.0", "--out", bundle)
	if !strings.Contains(out, "wrote "+bundle+": 2 releases, 0 patches") {
		t.Fatalf("export printed %q", out)
	}
	one := filepath.Join(dir, "ad-1.1.0-linux.tar")
	if out := cli(t, "release", "export", "--data-dir", src, "--name", "AD", "--version", "1.1.0", "--os", "linux", "--arch", "amd64", "--out", one); !strings.Contains(out, "1 releases") {
		t.Fatalf("export --os linux printed %q", out)
	}
	if msg := cliFail(t, "release", "export", "--data-dir", src, "--name", "AD", "--version", "9.9.9", "--out", filepath.Join(dir, "none.tar")); !strings.Contains(msg, "no release AD 9.9.9") {
		t.Errorf("export of a missing release: %q", msg)
	}

	// The wrong key, then a changed byte: refused, nothing imported.
	if msg := cliFail(t, "release", "import", "--data-dir", dst, "--file", bundle, "--trusted-key", filepath.Join(dir, "other.pub")); !strings.Contains(msg, "nothing imported") || !strings.Contains(msg, "not pinned") {
		t.Errorf("import with the wrong key: %q", msg)
	}
	raw, _ := os.ReadFile(bundle)
	i := bytes.Index(raw, []byte("echo 1.1.0 windows"))
	tampered := filepath.Join(dir, "tampered.tar")
	bad := bytes.Clone(raw)
	bad[i+5] ^= 1
	os.WriteFile(tampered, bad, 0o644)
	if msg := cliFail(t, "release", "import", "--data-dir", dst, "--file", tampered, "--trusted-key", filepath.Join(dir, "release.pub")); !strings.Contains(msg, "nothing imported") || !strings.Contains(msg, "sha256") {
		t.Errorf("import of a tampered bundle: %q", msg)
	}
	if msg := cliFail(t, "release", "import", "--data-dir", dst, "--file", bundle, "--trusted-key", filepath.Join(dir, "release.pub"), "--max-entry-size", "100"); !strings.Contains(msg, "more than the 100 allowed") {
		t.Errorf("import with an oversize entry: %q", msg)
	}
	if cat, files := releasesIn(t, dst); len(cat) != 0 || len(files) != 0 {
		t.Fatalf("refused imports left releases %v and files %v", cat, files)
	}

	// The real one, with the right key among others.
	out = cli(t, "release", "import", "--data-dir", dst, "--file", bundle, "--trusted-key", filepath.Join(dir, "other.pub"), "--trusted-key", filepath.Join(dir, "release.pub"))
	if strings.Count(out, "imported AD 1.1.0 ") != 2 || !strings.Contains(out, "imported AD 1.1.0 windows/amd64 EA") {
		t.Fatalf("import printed %q", out)
	}
	want, _ := releasesIn(t, src)
	got, files := releasesIn(t, dst)
	if len(got) != 2 || got[0] != want[0] && got[0] != want[1] || len(files) != 2 {
		t.Fatalf("imported catalog %v, files %v; source %v", got, files, want)
	}
	for _, f := range files {
		a, _ := os.ReadFile(filepath.Join(src, "artifacts", f))
		b, _ := os.ReadFile(filepath.Join(dst, "artifacts", f))
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("artifact %s differs after import", f)
		}
	}
	// Again: nothing new, and a re-export from the second server works.
	if out := cli(t, "release", "import", "--data-dir", dst, "--file", bundle, "--trusted-key", filepath.Join(dir, "release.pub")); strings.Count(out, "already present") != 2 || strings.Contains(out, "imported") {
		t.Errorf("second import printed %q", out)
	}
	cli(t, "release", "export", "--data-dir", dst, "--name", "AD", "--version", "1.1.0", "--out", filepath.Join(dir, "again.tar"))

	// A site that holds 1.0.0 builds its own patch to the imported 1.1.0.
	site := filepath.Join(dir, "site")
	old := filepath.Join(dir, "ad-1.0.0.tar")
	cli(t, "release", "export", "--data-dir", src, "--name", "AD", "--version", "1.0.0", "--out", old)
	cli(t, "release", "import", "--data-dir", site, "--file", old, "--trusted-key", filepath.Join(dir, "release.pub"))
	cli(t, "release", "import", "--data-dir", site, "--file", bundle, "--trusted-key", filepath.Join(dir, "release.pub"))
	st, err := sqlite.Open(context.Background(), site)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r, err := st.GetRelease(context.Background(), "AD", "1.1.0", "linux", "amd64")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Patches) != 1 || r.Patches[0].FromVersion != "1.0.0" {
		t.Fatalf("1.1.0 imported beside 1.0.0 has patches %+v, want one from 1.0.0", r.Patches)
	}
	if w, err := st.GetRelease(context.Background(), "AD", "1.1.0", "windows", "amd64"); err != nil || len(w.Patches) != 0 {
		t.Errorf("windows 1.1.0 (no earlier windows release) has patches %+v (%v)", w, err)
	}
}

// TestReleaseImportRefusesHostileEntries: entries that escape the bundle,
// links, unknown names and a manifest that does not match are refused
// before anything is published.
func TestReleaseImportRefusesHostileEntries(t *testing.T) {
	dir := t.TempDir()
	cli(t, "key", "generate", "--out", filepath.Join(dir, "release"))
	manifest := `{"format":"poolagent-release-bundle/1","exportedAt":"2026-03-02T10:00:00Z","releases":[],"patches":[]}`
	for _, tc := range []struct {
		name string
		hdr  tar.Header
		body string
		want string
	}{
		{"traversal", tar.Header{Name: "../../etc/cron.d/x", Typeflag: tar.TypeReg}, "boom", "not a plain relative path"},
		{"absolute", tar.Header{Name: "/etc/passwd", Typeflag: tar.TypeReg}, "boom", "not a plain relative path"},
		{"dotdot inside", tar.Header{Name: "artifacts/../manifest.json", Typeflag: tar.TypeReg}, "boom", "not a plain relative path"},
		{"symlink", tar.Header{Name: "artifacts/" + strings.Repeat("a", 64), Typeflag: tar.TypeSymlink, Linkname: "/etc/shadow"}, "", "not a regular file"},
		{"unknown name", tar.Header{Name: "run.sh", Typeflag: tar.TypeReg}, "boom", "unexpected name"},
		{"big signature", tar.Header{Name: "signatures/x.minisig", Typeflag: tar.TypeReg}, strings.Repeat("s", 17<<10), "more than the 16384 allowed"},
		{"stray entry", tar.Header{Name: "artifacts/" + strings.Repeat("b", 64), Typeflag: tar.TypeReg}, "x", "lists no release"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			tc.hdr.Mode, tc.hdr.Size = 0o644, int64(len(tc.body))
			tw.WriteHeader(&tc.hdr)
			tw.Write([]byte(tc.body))
			tw.WriteHeader(&tar.Header{Name: "manifest.json", Mode: 0o644, Size: int64(len(manifest)), Typeflag: tar.TypeReg})
			tw.Write([]byte(manifest))
			tw.Close()
			file, data := filepath.Join(dir, tc.name+".tar"), filepath.Join(dir, "data-"+tc.name)
			os.WriteFile(file, buf.Bytes(), 0o644)
			msg := cliFail(t, "release", "import", "--data-dir", data, "--file", file, "--trusted-key", filepath.Join(dir, "release.pub"))
			if !strings.Contains(msg, tc.want) {
				t.Errorf("stderr %q does not say %q", msg, tc.want)
			}
			if cat, files := releasesIn(t, data); len(cat) != 0 || len(files) != 0 {
				t.Errorf("left releases %v, files %v", cat, files)
			}
		})
	}
}
