package pkgdoc

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// TestEveryPackageHasADocComment parses the package clause of every Go file
// of the module (every OS's files, whatever their build tags) and fails for
// each directory whose package has no doc comment. The doc must be on a
// non-test file when the package has one, as go doc shows only those; a
// directory of test files only (a test suite) needs it on one of them.
func TestEveryPackageHasADocComment(t *testing.T) {
	root := moduleRoot(t)
	type pkg struct {
		files, tests int  // non-test and test files
		doc, testDoc bool // a doc comment on a non-test file, on a test file
	}
	pkgs := map[string]*pkg{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (name == "testdata" || name == "vendor" || name == "node_modules" ||
				strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || isModule(path)) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.PackageClauseOnly|parser.ParseComments)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		p := pkgs[filepath.ToSlash(rel)]
		if p == nil {
			p = &pkg{}
			pkgs[filepath.ToSlash(rel)] = p
		}
		hasDoc := f.Doc != nil && strings.TrimSpace(f.Doc.Text()) != ""
		if strings.HasSuffix(name, "_test.go") {
			p.tests++
			p.testDoc = p.testDoc || hasDoc
		} else {
			p.files++
			p.doc = p.doc || hasDoc
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) < 10 {
		t.Fatalf("found %d packages under %s: is it the module root?", len(pkgs), root)
	}
	var missing []string
	for dir, p := range pkgs {
		if (p.files > 0 && !p.doc) || (p.files == 0 && !p.testDoc) {
			missing = append(missing, dir)
		}
	}
	sort.Strings(missing)
	for _, dir := range missing {
		t.Errorf("package %s has no package doc comment (\"// Package x ...\" above its package clause)", dir)
	}
}

// moduleRoot is the directory of the module's go.mod, above the test's
// working directory.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
}

// isModule reports whether dir holds a go.mod of its own: another module,
// not a package of this one.
func isModule(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "go.mod"))
	return err == nil
}
