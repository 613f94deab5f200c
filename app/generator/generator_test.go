package generator

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// newProject makes the smallest tree the generator works in: the route
// table's file, a models folder and three migrations per dialect.
func newProject(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	write(t, root, "handlers/routes.go", "package handlers\n")
	write(t, root, "models/project.go", "package models\n\ntype Project struct{}\n")
	for _, d := range []string{"sqlite", "postgres"} {
		for _, name := range []string{"0001_init", "0002_api_keys", "0003_audit"} {
			write(t, root, "migrations/"+d+"/"+name+".up.sql", "CREATE TABLE projects (id TEXT);\n")
			write(t, root, "migrations/"+d+"/"+name+".down.sql", "DROP TABLE projects;\n")
		}
	}
	return root
}

func write(t *testing.T, root, path, content string) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(path))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// tree returns every file under root with its content.
func tree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		rel, _ := filepath.Rel(root, path)
		out[filepath.ToSlash(rel)] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameTree(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func run(t *testing.T, root string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := (&Generator{Root: root, Out: &out}).Run(args)
	return out.String(), err
}

var noteArgs = []string{"resource", "note", "title:string:required,min=1,max=200", "body:text:optional,max=10000",
	"priority:int:required,gte=1,lte=5:index"}

// TestBadArgumentsChangeNothing: every bad argument is refused with a
// one-line ArgError and nothing is written.
func TestBadArgumentsChangeNothing(t *testing.T) {
	root := newProject(t)
	before := tree(t, root)
	for _, args := range [][]string{
		{},
		{"resources"},
		{"resource"},
		{"resource", "note"},
		{"resource", "Note", "title:string"},
		{"resource", "note-book", "title:string"},
		{"resource", "select", "title:string"},
		{"resource", "func", "title:string"},
		{"resource", "project", "title:string"},
		{"resource", "note", "title"},
		{"resource", "note", "title:strng"},
		{"resource", "note", "title:string:required,nosuch"},
		{"resource", "note", "title:string:required,optional"},
		{"resource", "note", "title:string:min=x"},
		{"resource", "note", "title:string:min=5,max=2"},
		{"resource", "note", "title:string:gte=1"},
		{"resource", "note", "count:int:email"},
		{"resource", "note", "count:int:max=3000000000"},
		{"resource", "note", "title:string:required:primary"},
		{"resource", "note", "title:string", "title:text"},
		{"resource", "note", "id:string"},
		{"resource", "note", "owner_id:string"},
		{"resource", "note", "created_at:time"},
		{"resource", "note", "order:string"},
		{"resource", "note", "price:decimal(3,4)"},
		{"resource", "note", "kind:enum(a|a)"},
		{"resource", "note", "kind:enum()"},
		{"resource", "note", "tag:ref(tag)"},
		{"resource", "note", "tag_id:ref(tag)"},
		{"resource", "note", "done:bool:required"},
		{"resource", "note", "body:text:max=100000"},
		{"resource", "note", "kind:enum(a|b):unique"},
		{"resource", "note", "contact:string:email,max=10"},
		{"resource", "note", "title:string", "--parent"},
		{"resource", "note", "title:string", "--parent", "nosuch"},
		{"resource", "note", "title:string", "--parent", "note"},
		{"resource", "note", "title:string", "--actions", "list,show"},
		{"resource", "note", "title:string", "--actions", "create,show,explode"},
		{"resource", "note", "title:string", "--verbose"},
		{"resource", "note", "count:int:default=''"},
		{"resource", "note", "title:string:default=x"},
		{"resource", "note", "on:date:default=''"},
		{"resource", "note", "title:string:required,default=''"},
		{"resource", "note", "title:string", "--through-parent"},
		{"resource", "note", "title:string:required:index", "--parent", "project", "--through-parent"},
		{"resource", "note", "title:string", "--quota", "notes"},
		{"resource", "note", "title:string", "--quota", "NotesPerUser"},
		{"resource", "note", "title:string", "--body-limit", "0"},
		{"resource", "note", "title:string", "--body-limit", "65"},
		{"resource", "note", "title:string:max=10000", "--body-limit", "4"},
		{"resource", "note", "title:string", "--migrated"},
		{"destroy"},
		{"destroy", "note"},
		{"destroy", "note", "extra"},
		{"check", "extra"},
	} {
		_, err := run(t, root, args...)
		var ae ArgError
		if !errors.As(err, &ae) {
			t.Errorf("generate %s: %v, want an argument error", strings.Join(args, " "), err)
			continue
		}
		if strings.Contains(ae.Msg, "\n") || ae.Msg == "" {
			t.Errorf("generate %s: the error is not one line: %q", strings.Join(args, " "), ae.Msg)
		}
	}
	if !sameTree(before, tree(t, root)) {
		t.Error("a refused command changed the tree")
	}
}

// TestGenerateThenRerunIsANoOp: the first run writes the files, the
// migration with the next number and the manifest; the same command again
// writes nothing and succeeds.
func TestGenerateThenRerunIsANoOp(t *testing.T) {
	root := newProject(t)
	out, err := run(t, root, noteArgs...)
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"models/note.go", "handlers/note.go", "handlers/note_test.go",
		"migrations/sqlite/0004_notes.up.sql", "migrations/postgres/0004_notes.down.sql",
		routesFile, fixturesFile, ManifestFile} {
		if _, err := os.Stat(filepath.Join(root, path)); err != nil {
			t.Errorf("%s was not written", path)
		}
		if !strings.Contains(out, path) {
			t.Errorf("no progress line for %s:\n%s", path, out)
		}
	}
	after := tree(t, root)
	for path, content := range after {
		if strings.HasSuffix(path, ".go") && !strings.HasPrefix(content, "// Code generated by rampart generate; DO NOT EDIT.") && path != "handlers/routes.go" && path != "models/project.go" {
			t.Errorf("%s lacks the generated-code header", path)
		}
	}
	out, err = run(t, root, noteArgs...)
	if err != nil || !strings.Contains(out, "nothing to do") {
		t.Errorf("rerun = %q, %v; want nothing to do", out, err)
	}
	if !sameTree(after, tree(t, root)) {
		t.Error("the rerun changed the tree")
	}
	if _, err := run(t, root, "check"); err != nil {
		t.Errorf("check after generate: %v", err)
	}
	// A second resource takes the next number, counted from the files.
	write(t, root, "migrations/sqlite/0005_webhooks.up.sql", "CREATE TABLE webhooks (id TEXT);\n")
	if _, err := run(t, root, "resource", "memo", "text:string:required"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "migrations/postgres/0006_memos.up.sql")); err != nil {
		t.Errorf("the second resource did not get migration 0006: %v", err)
	}
}

// TestDryRunAndDiffWriteNothing: --dry-run prints the plan, --diff the
// diffs, and neither writes.
func TestDryRunAndDiffWriteNothing(t *testing.T) {
	root := newProject(t)
	before := tree(t, root)
	out, err := run(t, root, append(noteArgs, "--dry-run")...)
	if err != nil || !strings.Contains(out, "create    models/note.go") || !strings.Contains(out, "nothing written") {
		t.Errorf("--dry-run = %q, %v", out, err)
	}
	out, err = run(t, root, append(noteArgs, "--diff")...)
	if err != nil || !strings.Contains(out, "+++ b/models/note.go") || !strings.Contains(out, "+type Note struct {") {
		t.Errorf("--diff = %q, %v", out, err)
	}
	if !sameTree(before, tree(t, root)) {
		t.Error("--dry-run or --diff wrote")
	}
}

// TestEditedAndForeignFilesAreNeverOverwritten: a generated file edited
// since, and a file the generator did not write, make the whole run fail
// with nothing written, --force included; only --overwrite naming the
// file replaces it.
func TestEditedAndForeignFilesAreNeverOverwritten(t *testing.T) {
	root := newProject(t)
	if _, err := run(t, root, noteArgs...); err != nil {
		t.Fatal(err)
	}
	changed := append(append([]string{}, noteArgs[:len(noteArgs)-1]...), "priority:int:required,gte=1,lte=9:index")
	write(t, root, "handlers/note.go", "package handlers\n// mine now\n")
	before := tree(t, root)
	for _, args := range [][]string{noteArgs, append(append([]string{}, changed...), "--force")} {
		_, err := run(t, root, args...)
		if err == nil || !strings.Contains(err.Error(), "nothing written: handlers/note.go (edited") {
			t.Errorf("%v: %v, want a refusal naming handlers/note.go", args, err)
		}
		if !sameTree(before, tree(t, root)) {
			t.Errorf("%v: a refused run wrote", args)
		}
	}
	if _, err := run(t, root, "check"); err == nil {
		t.Error("check passed with an edited file")
	}
	// Changed arguments need --force; the edited file also --overwrite.
	if _, err := run(t, root, changed...); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Errorf("changed arguments without --force: %v", err)
	}
	if _, err := run(t, root, append(changed, "--force", "--overwrite", "handlers/note.go")...); err != nil {
		t.Errorf("--force --overwrite: %v", err)
	}
	if _, err := run(t, root, "check"); err != nil {
		t.Errorf("check after --overwrite: %v", err)
	}

	// A hand-written file where a generated one would go.
	write(t, root, "handlers/memo.go", "package handlers\n")
	before = tree(t, root)
	_, err := run(t, root, "resource", "memo", "text:string:required")
	if err == nil || !strings.Contains(err.Error(), "handlers/memo.go (exists and was not generated") {
		t.Errorf("over a hand-written file: %v", err)
	}
	if !sameTree(before, tree(t, root)) {
		t.Error("a refused run wrote")
	}
}

// TestNameClashesAreRefused: a name that a hand-written file already
// declares in the package is refused before anything is written.
func TestNameClashesAreRefused(t *testing.T) {
	root := newProject(t)
	write(t, root, "models/memo_helpers.go", "package models\n\nfunc NewMemoRepo() {}\n")
	_, err := run(t, root, "resource", "memo", "text:string:required")
	var ae ArgError
	if !errors.As(err, &ae) || !strings.Contains(ae.Msg, "NewMemoRepo") {
		t.Errorf("clash: %v", err)
	}
	write(t, root, "migrations/sqlite/0004_gadgets.up.sql", "CREATE TABLE gadgets (\n id TEXT);\n")
	if _, err := run(t, root, "resource", "gadget", "text:string:required"); err == nil || !strings.Contains(err.Error(), "table gadgets") {
		t.Errorf("existing table: %v", err)
	}
}

// TestDestroy: destroy removes the unchanged generated files and keeps
// the migrations; it refuses while another resource depends on it, and an
// edited file stops it unless --force, which keeps that file.
func TestDestroy(t *testing.T) {
	root := newProject(t)
	before := tree(t, root)
	if _, err := run(t, root, noteArgs...); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, root, "resource", "remark", "--parent", "note", "text:string:required", "note_ref_id:ref(note)"); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, root, "destroy", "note"); err == nil || !strings.Contains(err.Error(), "destroy remark first") {
		t.Errorf("destroy of a parent: %v", err)
	}
	out, err := run(t, root, "destroy", "remark")
	if err != nil || !strings.Contains(out, "DROP TABLE remarks") {
		t.Fatalf("destroy remark = %q, %v", out, err)
	}
	write(t, root, "models/note.go", "package models\n// mine\n")
	edited := tree(t, root)
	if _, err := run(t, root, "destroy", "note"); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Errorf("destroy with an edited file: %v", err)
	}
	if !sameTree(edited, tree(t, root)) {
		t.Error("a refused destroy changed the tree")
	}
	if _, err := run(t, root, "destroy", "note", "--dry-run", "--force"); err != nil || !sameTree(edited, tree(t, root)) {
		t.Errorf("destroy --dry-run: %v, or it wrote", err)
	}
	if _, err := run(t, root, "destroy", "note", "--force"); err != nil {
		t.Fatal(err)
	}
	after := tree(t, root)
	if after["models/note.go"] != "package models\n// mine\n" {
		t.Error("destroy --force removed the edited file")
	}
	delete(after, "models/note.go")
	for path := range after {
		if _, ok := before[path]; !ok && !strings.HasPrefix(path, "migrations/") &&
			path != routesFile && path != fixturesFile && path != ManifestFile {
			t.Errorf("destroy left %s", path)
		}
	}
	for _, path := range []string{"migrations/sqlite/0004_notes.up.sql", "migrations/postgres/0005_remarks.down.sql"} {
		if _, ok := after[path]; !ok {
			t.Errorf("destroy removed the migration %s", path)
		}
	}
	if _, err := run(t, root, "check"); err != nil {
		t.Errorf("check after destroy: %v", err)
	}
}

// TestTemplateOverrides: a project's file at a template's path replaces
// it; one with an older version is reported by check.
func TestTemplateOverrides(t *testing.T) {
	root := newProject(t)
	write(t, root, "templates/generator/down.sql.tmpl", "{{- /* version: 0 */ -}}\nDROP TABLE IF EXISTS {{.Table}};\n")
	if _, err := run(t, root, noteArgs...); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "migrations/sqlite/0004_notes.down.sql"))
	if err != nil || string(b) != "DROP TABLE IF EXISTS notes;\n" {
		t.Errorf("the override was not used: %q, %v", b, err)
	}
	out, err := run(t, root, "check")
	if err != nil || !strings.Contains(out, "warning: the template override templates/generator/down.sql.tmpl") {
		t.Errorf("check = %q, %v; want a warning about the stale override", out, err)
	}
}

// TestSampleOptions: the options the sample's spec uses (default=, --quota,
// --body-limit, --parent with --through-parent, optional dates that a PATCH
// can clear, --migrated) produce the statements and declarations that make
// them hold; the acceptance test builds and runs such a resource.
func TestSampleOptions(t *testing.T) {
	root := newProject(t)
	write(t, root, "models/quota.go", "package models\n\ntype Quotas struct {\n\tNotesPerUser, LinesPerNote int\n}\n")
	if _, err := run(t, root, "resource", "note", "title:string:required,max=100", "body:text:default='',max=500",
		"done:bool:default=false", "--quota", "NotesPerUser", "--body-limit", "16"); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, root, "resource", "line", "title:string:required,max=100", "due_on:date:optional",
		"--parent", "note", "--through-parent", "--quota", "LinesPerNote"); err != nil {
		t.Fatal(err)
	}
	files := tree(t, root)
	contains := func(path string, patterns ...string) {
		t.Helper()
		for _, p := range patterns {
			if !regexp.MustCompile(p).MatchString(files[path]) {
				t.Errorf("%s does not match %s", path, p)
			}
		}
	}
	lacks := func(path string, patterns ...string) {
		t.Helper()
		for _, p := range patterns {
			if regexp.MustCompile(p).MatchString(files[path]) {
				t.Errorf("%s matches %s", path, p)
			}
		}
	}
	// default='': never null, a plain value in requests, models and answers.
	contains("migrations/sqlite/0004_notes.up.sql", `body\s+TEXT\s+NOT NULL DEFAULT ''`, `done\s+INTEGER\s+NOT NULL DEFAULT 0 CHECK \(done IN \(0, 1\)\)`)
	contains("migrations/postgres/0004_notes.up.sql", `body\s+text\s+NOT NULL DEFAULT ''`, `done\s+boolean\s+NOT NULL DEFAULT false`)
	contains("handlers/note.go", "Body +string +`json:\"body\" validate:\"max=500,nocontrolml\"`", "Done +bool +`json:\"done\"`\n", "Body +string +`json:\"body\"`")
	contains("models/note.go", `Body +string\n`, `Done +bool\n`)
	// --quota: the owner's row is locked, then the rows are counted.
	contains("models/note.go", "UPDATE users SET updated_at = updated_at WHERE id = \\?`, r.owner",
		"limit := r.db.quotas.NotesPerUser", "SELECT COUNT\\(\\*\\) FROM notes WHERE owner_id = \\?`, r.owner, limit, \"notes\"")
	contains("models/line.go", "UPDATE notes SET updated_at = updated_at WHERE id = \\? AND owner_id = \\?`",
		"limit := r.db.quotas.LinesPerNote", "SELECT COUNT\\(\\*\\) FROM lines WHERE note_id = \\?`, noteID, limit, \"lines in this note\"")
	// --body-limit.
	contains("handlers/routes_gen.go", `path: "/v1/notes", policy: write, handler: noteH.create, body: 16 << 10`,
		`path: "/v1/notes/:id/lines", policy: write, handler: lineH.create, body: 4 << 10`)
	// --through-parent: no owner column; every statement goes through the
	// note and its owner, and the list is one statement.
	lacks("migrations/sqlite/0005_lines.up.sql", `owner_id +TEXT`, `owner_seq`)
	lacks("migrations/postgres/0005_lines.up.sql", `owner_id +uuid`, `owner_seq`)
	contains("models/line.go",
		`FROM lines x JOIN notes p ON p.id = x.note_id AND p.owner_id = \?`,
		`FROM notes p LEFT JOIN lines x ON x.note_id = p.id AND x.seq > \?\n\s+WHERE p.id = \? AND p.owner_id = \?`,
		`WHERE id = \? AND note_id = \?\n\s+AND EXISTS \(SELECT 1 FROM notes p WHERE p.id = lines.note_id AND p.owner_id = \?\)`)
	lacks("models/line.go", `lines WHERE id = \? AND owner_id`, `INSERT INTO lines \(id, owner_id`)
	// An optional date admits null, and null in a PATCH clears it.
	contains("handlers/line.go", `DueOn nullable\[string\] +.json:"due_on" validate:"date".`, `SetDueOn: r.DueOn.Set,`)
	contains("models/line.go", `due_on = CASE WHEN \? THEN \? ELSE due_on END`, `patch.SetDueOn, patch.DueOn`)

	// --migrated: the table is the hand-written migrations'; only the Go
	// code is generated, and the conformance fixtures leave it to the
	// hand-written tests.
	if err := os.Remove(filepath.Join(root, "models", "project.go")); err != nil {
		t.Fatal(err)
	}
	before := len(tree(t, root))
	out, err := run(t, root, "resource", "project", "name:string:required,max=100", "--migrated")
	if err != nil {
		t.Fatal(err)
	}
	after := tree(t, root)
	if len(after) != before+2 || after["models/project.go"] == "" || after["handlers/project.go"] == "" {
		t.Errorf("--migrated wrote more or less than the model and the handler:\n%s", out)
	}
	routes := after["handlers/routes_gen.go"]
	if !strings.Contains(routes, "projectH.create") || strings.Contains(after["handlers/routes_gen_test.go"], "projectFixture") {
		t.Errorf("--migrated: want the routes registered and no generated fixture")
	}
	if _, err := run(t, root, "check"); err != nil {
		t.Errorf("check after generating: %v", err)
	}
	// Destroying a migrated resource removes its Go files and asks for no
	// drop migration: the table is the hand-written migrations'.
	out, err = run(t, root, "destroy", "project")
	if err != nil {
		t.Fatal(err)
	}
	gone := tree(t, root)
	if gone["models/project.go"] != "" || gone["handlers/project.go"] != "" || strings.Contains(out, "DROP TABLE") {
		t.Errorf("destroy of a migrated resource:\n%s", out)
	}
}
