package generator

import (
	"bytes"
	"fmt"
	"go/format"
	"io/fs"
	"os"
	"regexp"
	"strconv"
	"strings"
	"text/template"

	"github.com/rampart-go/rampart/templates"
)

// templateDir is where the generator's templates live, in the embedded FS
// and, for a project's own overrides, under the project root.
const templateDir = "templates/generator"

var versionLine = regexp.MustCompile(`^\{\{- /\* version: ([0-9]+) \*/ -\}\}`)

// templateSet loads the generator's templates: the embedded ones, each
// replaced by the project's file at the same path if there is one.
type templateSet struct {
	root      *os.Root
	overrides []string // the paths of templates the project overrides
	stale     []string // overrides older than the embedded template
	cache     map[string]*template.Template
}

func newTemplateSet(root *os.Root) *templateSet {
	return &templateSet{root: root, cache: map[string]*template.Template{}}
}

func templateVersion(b []byte) int {
	m := versionLine.FindSubmatch(b)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

func (ts *templateSet) get(name string) (*template.Template, error) {
	if t, ok := ts.cache[name]; ok {
		return t, nil
	}
	embedded, err := fs.ReadFile(templates.FS, "generator/"+name)
	if err != nil {
		return nil, fmt.Errorf("template %s: %w", name, err)
	}
	text := embedded
	rel := templateDir + "/" + name
	if own, err := ts.root.ReadFile(rel); err == nil && !bytes.Equal(own, embedded) {
		ts.overrides = append(ts.overrides, rel)
		if templateVersion(own) < templateVersion(embedded) {
			ts.stale = append(ts.stale, fmt.Sprintf("%s (version %d; the generator's is %d)", rel, templateVersion(own), templateVersion(embedded)))
		}
		text = own
	}
	t, err := template.New(name).Option("missingkey=error").Parse(string(text))
	if err != nil {
		return nil, fmt.Errorf("template %s: %w", name, err)
	}
	ts.cache[name] = t
	return t, nil
}

// render executes a template; Go output is gofmt'ed, so that generated code
// looks like hand-written code and `gofmt -l` stays quiet.
func (ts *templateSet) render(name string, data any) ([]byte, error) {
	t, err := ts.get(name)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		return nil, fmt.Errorf("template %s: %w", name, err)
	}
	if !strings.HasSuffix(name, ".go.tmpl") {
		return b.Bytes(), nil
	}
	out, err := format.Source(b.Bytes())
	if err != nil {
		return nil, fmt.Errorf("template %s renders Go that does not parse: %w", name, err)
	}
	return out, nil
}

// file is one file the generator writes: its path (slash-separated,
// relative to the project root) and content.
type file struct {
	path    string
	content []byte
}

// resourceFiles renders the files of one resource.
func (ts *templateSet) resourceFiles(v *view) ([]file, error) {
	targets := []struct{ tmpl, path string }{
		{"model.go.tmpl", "models/" + v.Name + ".go"},
		{"handler.go.tmpl", "handlers/" + v.Name + ".go"},
		{"handler_test.go.tmpl", "handlers/" + v.Name + "_test.go"},
		{"sqlite.up.sql.tmpl", "migrations/sqlite/" + v.Migration + ".up.sql"},
		{"down.sql.tmpl", "migrations/sqlite/" + v.Migration + ".down.sql"},
		{"postgres.up.sql.tmpl", "migrations/postgres/" + v.Migration + ".up.sql"},
		{"down.sql.tmpl", "migrations/postgres/" + v.Migration + ".down.sql"},
	}
	if v.Migrated {
		// Hand-written migrations create the table, hand-written tests
		// cover the endpoints: only the Go code is generated.
		targets = targets[:2]
	}
	var out []file
	for _, t := range targets {
		b, err := ts.render(t.tmpl, v)
		if err != nil {
			return nil, err
		}
		out = append(out, file{t.path, b})
	}
	return out, nil
}

// Registry files: regenerated from the manifest on every run.
const (
	routesFile   = "handlers/routes_gen.go"
	fixturesFile = "handlers/routes_gen_test.go"
)

// registryFiles renders the route registry and the conformance fixtures
// for the given resources (sorted by name).
func (ts *templateSet) registryFiles(views []*view) ([]file, error) {
	data := struct{ Resources []*view }{views}
	routes, err := ts.render("routes.go.tmpl", data)
	if err != nil {
		return nil, err
	}
	// A migrated resource has hand-written tests, and the conformance
	// suite's hand-written fixtures cover its routes: no generated fixture.
	var tested []*view
	for _, v := range views {
		if !v.Migrated {
			tested = append(tested, v)
		}
	}
	fixtures, err := ts.render("fixtures_test.go.tmpl", struct{ Resources []*view }{tested})
	if err != nil {
		return nil, err
	}
	return []file{{routesFile, routes}, {fixturesFile, fixtures}}, nil
}

// isMigration reports whether a generated path is a migration, which
// destroy keeps (it may have been applied).
func isMigration(path string) bool { return strings.HasPrefix(path, "migrations/") }
