package generator

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/pmezard/go-difflib/difflib"
)

// Options are the flags of a generator run.
type Options struct {
	DryRun    bool     // print the plan, write nothing
	Diff      bool     // print the diff of every change, write nothing
	Force     bool     // regenerate a resource whose arguments changed; destroy despite edited files (keeping them)
	Overwrite []string // files the user edited that may be overwritten anyway, by path
}

// ArgError is a bad command-line argument: nothing was changed.
type ArgError struct{ Msg string }

func (e ArgError) Error() string { return e.Msg }

func argErr(format string, a ...any) error { return ArgError{fmt.Sprintf(format, a...)} }

// Generator works on one project directory.
type Generator struct {
	Root string    // the project root (where go.mod is)
	Out  io.Writer // progress lines, plans and diffs
}

// Run runs `generate resource|destroy|check` with args.
func (g *Generator) Run(args []string) error {
	if len(args) == 0 {
		return argErr("generate needs one of: resource, destroy, check")
	}
	if _, err := os.Stat(filepath.Join(g.Root, "handlers", "routes.go")); err != nil {
		return argErr("run generate from the project's root (the folder with go.mod and handlers/)")
	}
	switch args[0] {
	case "resource":
		r, o, err := ParseArgs(args[1:])
		if err != nil {
			return ArgError{err.Error()}
		}
		return g.Resource(r, o)
	case "destroy":
		return g.destroyCmd(args[1:])
	case "check":
		if len(args) > 1 {
			return argErr("generate check takes no arguments")
		}
		return g.Check()
	}
	return argErr("generate: unknown command %q; use resource, destroy or check", safe(args[0]))
}

func (g *Generator) destroyCmd(args []string) error {
	var name string
	var o Options
	for _, a := range args {
		switch {
		case a == "--dry-run":
			o.DryRun = true
		case a == "--force":
			o.Force = true
		case strings.HasPrefix(a, "-"):
			return argErr("unknown option %q", safe(a))
		case name == "":
			name = a
		default:
			return argErr("generate destroy takes one NAME")
		}
	}
	if name == "" {
		return argErr("generate destroy needs the NAME of a generated resource")
	}
	return g.Destroy(name, o)
}

// project is the state of the project a run works from.
// Every file is reached through an os.Root: no path the generator forms,
// and no symbolic link in the tree, can lead it outside the project.
type project struct {
	root *os.Root
	m    *manifest
	ts   *templateSet
}

func (g *Generator) load() (*project, error) {
	root, err := os.OpenRoot(g.Root)
	if err != nil {
		return nil, err
	}
	m, err := readManifest(root)
	if err != nil {
		return nil, err
	}
	return &project{root: root, m: m, ts: newTemplateSet(root)}, nil
}

// readDir lists a folder of the project.
func (p *project) readDir(dir string) ([]fs.DirEntry, error) {
	return fs.ReadDir(p.root.FS(), dir)
}

// resolver answers for parent and ref targets: the sample's project, or a
// generated top-level resource other than self.
func (p *project) resolver(self string, pending map[string]Resource) resolver {
	return func(name string) (string, bool, error) {
		if name == "project" {
			return "projects", true, nil
		}
		if name == self {
			return "", false, fmt.Errorf("a resource cannot refer to itself")
		}
		r, ok := pending[name]
		if !ok {
			return "", false, fmt.Errorf("there is no generated resource %q; generate it first (or use project)", name)
		}
		if r.Parent != "" {
			return "", false, fmt.Errorf("%s is a child resource; only top-level resources can be parents or referenced", name)
		}
		return plural(name), false, nil
	}
}

// specs parses the manifest's resources.
func (p *project) specs() (map[string]Resource, error) {
	out := map[string]Resource{}
	for _, mr := range p.m.Resources {
		r, _, err := ParseArgs(mr.Args)
		if err != nil {
			return nil, fmt.Errorf("%s: resource %s: %w", ManifestFile, mr.Name, err)
		}
		out[r.Name] = r
	}
	return out, nil
}

// views builds the view of every resource in specs, with its migration
// number from versions.
func (p *project) views(specs map[string]Resource, versions map[string]int) ([]*view, error) {
	var out []*view
	for _, name := range slices.Sorted(mapsKeys(specs)) {
		v, err := newView(specs[name], versions[name], p.resolver(name, specs))
		if err != nil {
			return nil, err
		}
		if err := p.checkQuota(v.Quota); err != nil {
			return nil, fmt.Errorf("resource %s: %w", name, err)
		}
		out = append(out, v)
	}
	return out, nil
}

// quotaFile declares models.Quotas, whose fields --quota names.
const quotaFile = "models/quota.go"

// checkQuota refuses a --quota that names no int field of models.Quotas:
// the generated Create would not compile.
func (p *project) checkQuota(name string) error {
	if name == "" {
		return nil
	}
	b, err := p.root.ReadFile(quotaFile)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if !regexp.MustCompile(`(?m)^\s*(\w+, )*` + regexp.QuoteMeta(name) + `(, \w+)*\s+int\b`).Match(b) {
		return fmt.Errorf("--quota %s: models.Quotas (%s) has no int field %s; add it, with its default, first", name, quotaFile, name)
	}
	return nil
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

var migrationName = regexp.MustCompile(`^([0-9]{4})_[a-z0-9_]+\.(up|down)\.sql$`)

// nextMigration is one more than the highest migration number present in
// either dialect's folder.
func (p *project) nextMigration() (int, error) {
	highest := 0
	for _, dir := range []string{"migrations/sqlite", "migrations/postgres"} {
		entries, err := p.readDir(dir)
		if err != nil {
			return 0, err
		}
		for _, e := range entries {
			if m := migrationName.FindStringSubmatch(e.Name()); m != nil {
				n, _ := strconv.Atoi(m[1])
				highest = max(highest, n)
			}
		}
	}
	if highest >= 9999 {
		return 0, fmt.Errorf("no migration number is left")
	}
	return highest + 1, nil
}

// tableExists reports whether a hand-written migration creates table.
func (p *project) tableExists(table string, own []string) (bool, error) {
	pattern := regexp.MustCompile(`(?i)CREATE TABLE (IF NOT EXISTS )?` + regexp.QuoteMeta(table) + `\s*\(`)
	for _, dir := range []string{"migrations/sqlite", "migrations/postgres"} {
		entries, err := p.readDir(dir)
		if err != nil {
			return false, err
		}
		for _, e := range entries {
			name := dir + "/" + e.Name()
			if slices.Contains(own, name) || !strings.HasSuffix(e.Name(), ".up.sql") {
				continue
			}
			b, err := p.root.ReadFile(name)
			if err != nil {
				return false, err
			}
			if pattern.Match(b) {
				return true, nil
			}
		}
	}
	return false, nil
}

// Resource generates (or regenerates) one resource and the registry.
func (g *Generator) Resource(r Resource, o Options) error {
	p, err := g.load()
	if err != nil {
		return err
	}
	defer p.root.Close()
	specs, err := p.specs()
	if err != nil {
		return err
	}
	versions := p.m.migrations()
	prev, exists := p.m.resource(r.Name)
	if exists && !slices.Equal(prev.Args, r.Args()) && !o.Force {
		return argErr("resource %s exists with other arguments (%s); pass --force to regenerate it", r.Name, strings.Join(prev.Args, " "))
	}
	if exists {
		// Children and referrers of the resource must stay valid.
		for _, other := range specs {
			if other.Name != r.Name && dependsOn(other, r.Name) && r.Parent != "" {
				return argErr("resource %s is a parent or ref target of %s, so it cannot become a child resource", r.Name, other.Name)
			}
		}
	} else if !r.Migrated {
		if versions[r.Name], err = p.nextMigration(); err != nil {
			return err
		}
	}
	specs[r.Name] = r
	views, err := p.views(specs, versions)
	if err != nil {
		return ArgError{err.Error()}
	}
	var self *view
	for _, v := range views {
		if v.Name == r.Name {
			self = v
		}
	}
	files, err := p.ts.resourceFiles(self)
	if err != nil {
		return err
	}
	var own []string
	for _, f := range files {
		own = append(own, f.path)
	}
	if !exists || r.Migrated {
		taken, err := p.tableExists(self.Table, own)
		switch {
		case err != nil:
			return err
		case taken && !r.Migrated:
			return argErr("a migration already creates the table %s; choose another name", self.Table)
		case !taken && r.Migrated:
			return argErr("--migrated: no migration creates the table %s; leave out --migrated to generate one", self.Table)
		}
	}
	if err := p.checkNames(files); err != nil {
		return ArgError{err.Error()}
	}
	reg, err := p.ts.registryFiles(views)
	if err != nil {
		return err
	}
	files = append(files, reg...)
	// The manifest entry for the resource; files the resource had before
	// and no longer has (a changed migration name cannot happen: the
	// number and table stay) are none.
	m := *p.m
	m.Resources = slices.DeleteFunc(slices.Clone(m.Resources), func(x manifestResource) bool { return x.Name == r.Name })
	m.Resources = append(m.Resources, manifestResource{Name: r.Name, Args: r.Args(), Migration: versions[r.Name]})
	m.Files = cloneFiles(p.m.Files)
	return p.apply(g.Out, files, nil, &m, o)
}

func dependsOn(r Resource, name string) bool {
	if r.Parent == name {
		return true
	}
	for _, f := range r.Fields {
		if f.Type == "ref" && f.Args[0] == name {
			return true
		}
	}
	return false
}

func cloneFiles(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// checkNames refuses generated Go files that declare a top-level name the
// package already declares elsewhere (a hand-written file, another
// resource): the build would fail.
func (p *project) checkNames(files []file) error {
	ownPaths := map[string]bool{}
	for _, f := range files {
		ownPaths[f.path] = true
	}
	for _, f := range files {
		if !strings.HasSuffix(f.path, ".go") {
			continue
		}
		dir := path.Dir(f.path)
		ours, err := declaredNames(f.path, f.content)
		if err != nil {
			return err
		}
		entries, err := p.readDir(dir)
		if err != nil {
			return err
		}
		for _, e := range entries {
			other := dir + "/" + e.Name()
			if ownPaths[other] || !strings.HasSuffix(e.Name(), ".go") || other == routesFile || other == fixturesFile {
				continue
			}
			b, err := p.root.ReadFile(other)
			if err != nil {
				return err
			}
			theirs, err := declaredNames(other, b)
			if err != nil {
				continue // a file that does not parse is the compiler's to report
			}
			for name := range ours {
				if theirs[name] {
					return fmt.Errorf("%s would declare %s, which %s already declares; choose another resource name", f.path, name, other)
				}
			}
		}
	}
	return nil
}

// declaredNames lists the top-level names a Go file declares (methods as
// Type.Method).
func declaredNames(path string, src []byte) (map[string]bool, error) {
	f, err := parser.ParseFile(token.NewFileSet(), path, src, parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			name := d.Name.Name
			if d.Recv != nil && len(d.Recv.List) == 1 {
				t := d.Recv.List[0].Type
				if s, ok := t.(*ast.StarExpr); ok {
					t = s.X
				}
				if id, ok := t.(*ast.Ident); ok {
					name = id.Name + "." + name
				}
			}
			out[name] = true
		case *ast.GenDecl:
			for _, s := range d.Specs {
				switch s := s.(type) {
				case *ast.TypeSpec:
					out[s.Name.Name] = true
				case *ast.ValueSpec:
					for _, n := range s.Names {
						out[n.Name] = true
					}
				}
			}
		}
	}
	return out, nil
}

// Plan classes.
const (
	classNew       = "create"    // not on disk
	classIdentical = "identical" // on disk as it would be written
	classUpdate    = "update"    // written by the generator, unchanged since, now different
	classEdited    = "edited"    // written by the generator, changed since by someone
	classConflict  = "conflict"  // on disk, not written by the generator
	classRemove    = "remove"    // written by the generator, unchanged since, to delete
	classKeep      = "keep"      // to delete, but edited: kept
)

type step struct {
	path    string
	class   string
	old     []byte // nil: absent
	content []byte // nil: to delete
}

// plan classes every target.
func (p *project) plan(files []file, remove []string, o Options) ([]step, error) {
	var steps []step
	for _, f := range files {
		old, err := p.root.ReadFile(f.path)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		s := step{path: f.path, content: f.content, old: old}
		recorded, known := p.m.Files[f.path]
		switch {
		case err != nil:
			s.class, s.old = classNew, nil
		case bytes.Equal(old, f.content):
			s.class = classIdentical
		case known && recorded == hashOf(old):
			s.class = classUpdate
		case known:
			s.class = classEdited
		default:
			s.class = classConflict
		}
		if (s.class == classEdited || s.class == classConflict) && slices.Contains(o.Overwrite, f.path) {
			s.class = classUpdate
		}
		steps = append(steps, s)
	}
	for _, name := range remove {
		old, err := p.root.ReadFile(name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		s := step{path: name, old: old, class: classRemove}
		if p.m.Files[name] != hashOf(old) {
			s.class = classKeep
		}
		steps = append(steps, s)
	}
	return steps, nil
}

// apply plans the run, refuses it whole if any target conflicts, prints
// the plan or the diffs when asked, and otherwise writes every file
// atomically, then the manifest m.
func (p *project) apply(out io.Writer, files []file, remove []string, m *manifest, o Options) error {
	steps, err := p.plan(files, remove, o)
	if err != nil {
		return err
	}
	var refused []string
	for _, s := range steps {
		switch s.class {
		case classEdited:
			refused = append(refused, s.path+" (edited since it was generated; add --overwrite "+s.path+" to replace it)")
		case classConflict:
			refused = append(refused, s.path+" (exists and was not generated; move it away or add --overwrite "+s.path+")")
		case classKeep:
			if !o.Force {
				refused = append(refused, s.path+" (edited since it was generated; add --force to destroy the rest and keep it)")
			}
		}
	}
	if len(refused) > 0 {
		return fmt.Errorf("nothing written: %s", strings.Join(refused, "; "))
	}
	for _, s := range steps {
		switch s.class {
		case classNew, classUpdate, classIdentical:
			m.Files[s.path] = hashOf(s.content)
		case classRemove, classKeep:
			delete(m.Files, s.path)
		}
	}
	manifestBytes := m.encode()
	if old, err := p.root.ReadFile(ManifestFile); err != nil || !bytes.Equal(old, manifestBytes) {
		steps = append(steps, step{path: ManifestFile, class: classNew, old: old, content: manifestBytes})
		if err == nil {
			steps[len(steps)-1].class = classUpdate
		}
	}
	changes := 0
	for _, s := range steps {
		if s.class != classIdentical {
			changes++
		}
	}
	if o.DryRun || o.Diff {
		for _, s := range steps {
			fmt.Fprintf(out, "%-9s %s\n", s.class, s.path)
			if o.Diff && s.class != classIdentical && s.class != classKeep {
				if err := writeDiff(out, s); err != nil {
					return err
				}
			}
		}
		fmt.Fprintf(out, "dry run: %d change(s), nothing written\n", changes)
		return nil
	}
	if changes == 0 {
		fmt.Fprintln(out, "nothing to do: every file is up to date")
		return nil
	}
	return p.write(out, steps)
}

// write writes every file to a temporary file beside it first, and only
// when all are written renames them into place, so that a failure leaves
// no half-written file.
func (p *project) write(out io.Writer, steps []step) error {
	var temps []string
	cleanup := func() {
		for _, tmp := range temps {
			_ = p.root.Remove(tmp)
		}
	}
	for _, s := range steps {
		if s.content == nil || s.class == classIdentical {
			continue
		}
		// Source folders, readable like the rest of the checked-out tree.
		if err := p.root.MkdirAll(path.Dir(s.path), 0o755); err != nil { // #nosec G301 -- a source folder of the project
			cleanup()
			return err
		}
		tmp, err := p.writeTemp(s.path, s.content)
		if tmp != "" {
			temps = append(temps, tmp)
		}
		if err != nil {
			cleanup()
			return err
		}
	}
	i := 0
	for _, s := range steps {
		if s.content == nil || s.class == classIdentical {
			continue
		}
		if err := p.root.Rename(temps[i], s.path); err != nil {
			cleanup()
			return err
		}
		i++
	}
	for _, s := range steps {
		switch s.class {
		case classRemove:
			if err := p.root.Remove(s.path); err != nil {
				return err
			}
			fmt.Fprintf(out, "removed   %s\n", s.path)
		case classKeep:
			fmt.Fprintf(out, "kept      %s (edited since it was generated)\n", s.path)
		case classNew:
			fmt.Fprintf(out, "created   %s\n", s.path)
		case classUpdate:
			fmt.Fprintf(out, "updated   %s\n", s.path)
		}
	}
	return nil
}

// writeTemp writes content to a new file with a random name beside
// target and returns its name.
func (p *project) writeTemp(target string, content []byte) (string, error) {
	var suffix [8]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		return "", err
	}
	tmp := path.Join(path.Dir(target), ".generate-"+hex.EncodeToString(suffix[:]))
	// Source code: the usual mode of checked-in files.
	f, err := p.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644) // #nosec G302 -- source code, readable like the rest of the tree
	if err != nil {
		return "", err
	}
	if _, err := f.Write(content); err != nil {
		_ = f.Close()
		return tmp, err
	}
	return tmp, f.Close()
}

// writeDiff prints a unified diff of one step (go-difflib: a small,
// dependency-free implementation of Python's difflib, already in the module
// graph through testify).
func writeDiff(out io.Writer, s step) error {
	from, to := "a/"+s.path, "b/"+s.path
	if s.old == nil {
		from = "/dev/null"
	}
	if s.content == nil {
		to = "/dev/null"
	}
	text, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: difflib.SplitLines(string(s.old)), B: difflib.SplitLines(string(s.content)),
		FromFile: from, ToFile: to, Context: 3,
	})
	if err != nil {
		return err
	}
	_, err = io.WriteString(out, text)
	return err
}
