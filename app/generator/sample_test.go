package generator

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// sampleFiles are the sample's CRUD core: the generator's output for the
// project and task entries of generate.json.
var sampleFiles = []string{
	"models/project.go", "models/task.go",
	"handlers/project.go", "handlers/task.go",
	"handlers/routes_gen.go",
}

// TestSampleIsGenerated is the golden test of the sample: it regenerates,
// in memory, every generated file from the spec checked in as generate.json
// (projects and tasks among them) and compares each with the file in the
// repository byte for byte. A hand edit of models/project.go, a template
// change that was not regenerated, or a sample resource dropped from the
// spec fails it.
func TestSampleIsGenerated(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	p, err := (&Generator{Root: root, Out: io.Discard}).load()
	if err != nil {
		t.Fatal(err)
	}
	defer p.root.Close()
	specs, err := p.specs()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"project", "task"} {
		r, ok := specs[name]
		if !ok {
			t.Fatalf("%s has no %s resource: the sample must be generated from it", ManifestFile, name)
		}
		// Migrations 0001-0004 create the sample's tables; the generator
		// must write none for it.
		if !r.Migrated {
			t.Errorf("resource %s: want --migrated (hand-written migrations and tests)", name)
		}
	}
	if specs["task"].Parent != "project" || !specs["task"].ThroughParent {
		t.Errorf("task: want --parent project --through-parent (tasks have no owner_id column)")
	}
	versions := p.m.migrations()
	views, err := p.views(specs, versions)
	if err != nil {
		t.Fatal(err)
	}
	files, err := p.ts.registryFiles(views)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range views {
		fs, err := p.ts.resourceFiles(v)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fs {
			if v.Migrated && (isMigration(f.path) || strings.HasSuffix(f.path, "_test.go")) {
				t.Errorf("the generator writes %s for the migrated resource %s", f.path, v.Name)
			}
		}
		files = append(files, fs...)
	}
	var paths []string
	for _, f := range files {
		paths = append(paths, f.path)
		onDisk, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(f.path)))
		if err != nil {
			t.Errorf("%s: %v", f.path, err)
			continue
		}
		if !bytes.Equal(onDisk, f.content) {
			var diff bytes.Buffer
			if err := writeDiff(&diff, step{path: f.path, old: onDisk, content: f.content}); err != nil {
				t.Fatal(err)
			}
			t.Errorf("%s is not what the generator writes for %s; run `go run . generate check` and regenerate:\n%s", f.path, ManifestFile, diff.String())
		}
	}
	for _, want := range sampleFiles {
		if !slices.Contains(paths, want) {
			t.Errorf("%s is not generated from %s", want, ManifestFile)
		}
	}
}
