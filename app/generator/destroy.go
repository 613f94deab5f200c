package generator

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
)

// Destroy removes a generated resource: its unchanged generated files
// (edited ones stop the run, or with --force are kept), its routes from the
// registry and so from the API document. Migrations stay, since they may
// have been applied; the drop migration to write is printed.
func (g *Generator) Destroy(name string, o Options) error {
	p, err := g.load()
	if err != nil {
		return err
	}
	defer p.root.Close()
	mr, ok := p.m.resource(name)
	if !ok {
		return argErr("there is no generated resource %q", safe(name))
	}
	specs, err := p.specs()
	if err != nil {
		return err
	}
	for _, other := range slices.Sorted(mapsKeys(specs)) {
		if other != name && dependsOn(specs[other], name) {
			return argErr("resource %s is the parent or a ref target of %s; destroy %s first", name, other, other)
		}
	}
	versions := p.m.migrations()
	self, err := newView(specs[name], mr.Migration, p.resolver(name, specs))
	if err != nil {
		return err
	}
	delete(specs, name)
	views, err := p.views(specs, versions)
	if err != nil {
		return err
	}
	files, err := p.ts.registryFiles(views)
	if err != nil {
		return err
	}
	own, err := p.ts.resourceFiles(self)
	if err != nil {
		return err
	}
	var remove, kept []string
	for _, f := range own {
		if isMigration(f.path) {
			kept = append(kept, f.path)
			continue
		}
		remove = append(remove, f.path)
	}
	m := *p.m
	m.Resources = slices.DeleteFunc(slices.Clone(m.Resources), func(x manifestResource) bool { return x.Name == name })
	m.Files = cloneFiles(p.m.Files)
	for _, path := range kept {
		// From now on the migrations are the project's own files.
		delete(m.Files, path)
	}
	if err := p.apply(g.Out, files, remove, &m, o); err != nil {
		return err
	}
	if o.DryRun {
		return nil
	}
	if self.Migrated {
		fmt.Fprintf(g.Out, "the table %s is the hand-written migrations' and stays; its tests are hand-written too.\n", self.Table)
		return nil
	}
	fmt.Fprintf(g.Out, "kept the migrations %s (they may have been applied).\n", strings.Join(kept, ", "))
	fmt.Fprintf(g.Out, "To drop the table, add a migration NNNN_drop_%s with up: DROP TABLE %s; and as down the CREATE TABLE of %s.\n",
		self.Table, self.Table, self.Migration)
	return nil
}

// Check regenerates every generated file in memory and fails when a file
// on disk differs (drifted or edited) or is missing; it warns about
// template overrides older than the generator's templates.
func (g *Generator) Check() error {
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
	views, err := p.views(specs, versions)
	if err != nil {
		return err
	}
	files, err := p.ts.registryFiles(views)
	if err != nil {
		return err
	}
	for _, v := range views {
		fs, err := p.ts.resourceFiles(v)
		if err != nil {
			return err
		}
		files = append(files, fs...)
	}
	var drift []string
	for _, f := range files {
		old, err := p.root.ReadFile(f.path)
		switch {
		case err != nil:
			drift = append(drift, f.path+" (missing)")
		case !bytes.Equal(old, f.content):
			why := "differs from what the generator writes"
			if p.m.Files[f.path] != hashOf(old) {
				why = "edited since it was generated"
			}
			drift = append(drift, f.path+" ("+why+")")
		}
	}
	for _, s := range p.ts.stale {
		fmt.Fprintf(g.Out, "warning: the template override %s is older than the generator's template\n", s)
	}
	if len(drift) > 0 {
		return fmt.Errorf("generated files drifted: %s; rerun `generate resource` with each resource's arguments from %s (or restore the files)", strings.Join(drift, "; "), ManifestFile)
	}
	fmt.Fprintf(g.Out, "generated files are up to date (%d resource(s), %d file(s))\n", len(views), len(files))
	return nil
}
