package main

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/tools/go/packages"
)

// modulePath is this module's path (go.mod).
const modulePath = "github.com/rampart-go/rampart"

// layoutAreas are the parts of the module, and which other parts each may
// import (CONVENTIONS.md, "Layout and dependency direction"): imports flow
// main → app → handlers → middleware → models; migrations and templates are
// leaves; models/dbtest, middleware/redistest and
// models/outbound/outboundtest are test support that no non-test package
// imports; scripts/ holds stand-alone developer tools that
// talk to the server over HTTP and import nothing of ours.
// A package belongs to the area of its top-level folder (subpackages such as
// app/generator follow their area's rule); models/dbtest is its own area. A
// package in a folder that is not listed here fails the test until a rule
// is written for it.
var layoutAreas = map[string][]string{
	"main":         {"app"},
	"app":          {"handlers", "middleware", "models", "migrations", "templates"},
	"handlers":     {"middleware", "models", "templates"},
	"middleware":   {"models"},
	"models":       {},
	"migrations":   {},
	"templates":    {},
	"dbtest":       {"models", "migrations"},
	"redistest":    {},
	"outboundtest": {},
	"scripts":      {},
}

// testSupport are the areas only _test.go files may import.
var testSupport = []string{"dbtest", "redistest", "outboundtest"}

// layoutLeaves import nothing of ours, not even a subpackage of their own.
var layoutLeaves = []string{"migrations", "templates"}

// forbiddenInModels are third-party trees the domain must not depend on,
// directly or through anything it imports.
var forbiddenInModels = []string{"github.com/labstack/echo", "github.com/aws"}

// area returns the area of one of our package paths.
func area(pkgPath string) string {
	rel := strings.TrimPrefix(strings.TrimPrefix(pkgPath, modulePath), "/")
	switch {
	case rel == "":
		return "main"
	case rel == "models/dbtest" || strings.HasPrefix(rel, "models/dbtest/"):
		return "dbtest"
	case rel == "middleware/redistest" || strings.HasPrefix(rel, "middleware/redistest/"):
		return "redistest"
	case rel == "models/outbound/outboundtest":
		return "outboundtest"
	}
	top, _, _ := strings.Cut(rel, "/")
	return top
}

func ours(pkgPath string) bool {
	return pkgPath == modulePath || strings.HasPrefix(pkgPath, modulePath+"/")
}

// loadModule loads every non-test package of the module with its imports.
func loadModule(tb testing.TB, deps bool) []*packages.Package {
	tb.Helper()
	mode := packages.NeedName | packages.NeedFiles | packages.NeedImports
	if deps {
		mode |= packages.NeedDeps
	}
	return loadPackages(tb, ".", mode, "./...")
}

// loadPackages loads the non-test packages matched by patterns in dir and
// fails the test if none match or any does not load: a package that does not
// type-check cannot be judged.
func loadPackages(tb testing.TB, dir string, mode packages.LoadMode, patterns ...string) []*packages.Package {
	tb.Helper()
	abs, err := filepath.Abs(dir)
	if err != nil {
		tb.Fatal(err)
	}
	pkgs, err := packages.Load(&packages.Config{Mode: mode, Dir: abs, Tests: false}, patterns...)
	if err != nil {
		tb.Fatalf("load %s: %v", dir, err)
	}
	if len(pkgs) == 0 {
		tb.Fatalf("load %s: no packages", dir)
	}
	for _, p := range pkgs {
		for _, e := range p.Errors {
			tb.Errorf("load %s: %v", p.PkgPath, e)
		}
	}
	if tb.Failed() {
		tb.FailNow()
	}
	return pkgs
}

// TestDependencyDirection fails on every import between our packages that
// goes against the layout, naming the edge.
func TestDependencyDirection(t *testing.T) {
	pkgs := loadModule(t, true)
	seen := map[string]bool{}
	for _, p := range pkgs {
		from := area(p.PkgPath)
		seen[from] = true
		allowed, known := layoutAreas[from]
		if !known {
			t.Errorf("%s is in folder %q, which has no import rule: add one to layoutAreas (and to CONVENTIONS.md)", p.PkgPath, from)
			continue
		}
		for imp := range p.Imports {
			if !ours(imp) {
				continue
			}
			to := area(imp)
			switch {
			case slices.Contains(testSupport, to):
				t.Errorf("%s imports %s: it is test support, only _test.go files may import it", p.PkgPath, imp)
			case slices.Contains(layoutLeaves, from):
				t.Errorf("%s imports %s: %s is a leaf and imports nothing of this module", p.PkgPath, imp, from)
			case to == from:
				// A subpackage and its area, e.g. app/generator and app.
			case !slices.Contains(allowed, to):
				t.Errorf("%s imports %s: %s may import only %v of this module", p.PkgPath, imp, from, allowed)
			}
		}
	}
	for a := range layoutAreas {
		if !seen[a] {
			t.Errorf("no package found for area %q: has the layout changed? (loaded %d packages)", a, len(pkgs))
		}
	}

	// models must not depend on echo or AWS, not even through a dependency.
	for _, p := range pkgs {
		if area(p.PkgPath) != "models" {
			continue
		}
		packages.Visit([]*packages.Package{p}, func(dep *packages.Package) bool {
			for _, bad := range forbiddenInModels {
				if dep.PkgPath == bad || strings.HasPrefix(dep.PkgPath, bad+"/") {
					t.Errorf("%s depends on %s: models imports nothing of echo or AWS", p.PkgPath, dep.PkgPath)
				}
			}
			return true
		}, nil)
	}
}

// TestPackageDocs checks that every package has a doc.go whose package
// comment says what the package owns and what it may import. The command
// (package main) keeps its comment in main.go, where `go doc` readers of a
// command look for it.
func TestPackageDocs(t *testing.T) {
	for _, p := range loadModule(t, false) {
		if len(p.GoFiles) == 0 {
			t.Errorf("%s has no Go files", p.PkgPath)
			continue
		}
		dir := filepath.Dir(p.GoFiles[0])
		docFile, want := "doc.go", "Package "+p.Name+" "
		if p.Name == "main" {
			docFile, want = "main.go", "Command "
		}
		path := filepath.Join(dir, docFile)
		if !slices.Contains(p.GoFiles, path) {
			t.Errorf("%s has no %s with its package comment", p.PkgPath, docFile)
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.PackageClauseOnly|parser.ParseComments)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		doc := f.Doc.Text()
		switch {
		case doc == "":
			t.Errorf("%s: %s has no package comment", p.PkgPath, docFile)
		case !strings.HasPrefix(doc, want):
			t.Errorf("%s: the package comment in %s should start with %q", p.PkgPath, docFile, want)
		case p.Name != "main" && !strings.Contains(doc, "import"):
			t.Errorf("%s: the package comment in %s should say what the package may import", p.PkgPath, docFile)
		}
	}
}

// TestTopLevelLayout checks the folders and files that the README, the CI
// script and people cloning the starter rely on.
func TestTopLevelLayout(t *testing.T) {
	for _, dir := range []string{"app", "handlers", "middleware", "models", "migrations", "templates", "scripts"} {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			t.Errorf("%s/ is missing from the repository root", dir)
		}
	}
	for _, file := range []string{"go.mod", "go.sum", "README.md", "main.go"} {
		if fi, err := os.Stat(file); err != nil || !fi.Mode().IsRegular() {
			t.Errorf("%s is missing from the repository root", file)
		}
	}
}
