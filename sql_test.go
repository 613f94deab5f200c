package main

import (
	"bufio"
	"fmt"
	"go/ast"
	"go/token"
	"go/types"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/tools/go/packages"
	"golang.org/x/tools/go/types/typeutil"
)

// TestSQLIsConstant fails when any non-test code of the module passes SQL
// assembled at run time (concatenation with a variable, fmt.Sprintf, a
// strings.Builder, ...) to a database call: every statement must be a
// constant with placeholders (SECURITY-BASELINE §5).
func TestSQLIsConstant(t *testing.T) {
	found, excused := rampartSQLGuard.check(t, ".", "./...")
	for _, f := range found {
		t.Errorf("%s", f)
	}
	// An exception that no longer excuses anything is stale: remove it, so
	// that it cannot quietly cover new code later.
	for name := range rampartSQLGuard.Exceptions {
		if !slices.ContainsFunc(excused, func(f sqlFinding) bool { return f.Func == name }) {
			t.Errorf("the SQL guard's exception for %s excuses nothing any more: remove it", name)
		}
	}
}

// TestSQLGuardFindsDynamicSQL proves the guard works: over the module in
// testdata/sqlguard it must report exactly the lines marked "want", excuse
// exactly the lines marked "excused", and pass everything else (constant
// queries, constant expressions, a query parameter passed through).
func TestSQLGuardFindsDynamicSQL(t *testing.T) {
	dir := filepath.Join("testdata", "sqlguard")
	guard := sqlGuard{
		Exceptions: map[string]string{"example.com/sqlguard.makeSchema": "test of the exception list"},
		Rebinders:  map[string]bool{"(*example.com/sqlguard.DB).rebind": true},
		NotSQL:     map[string]string{"net/url.ParseQuery": "test of the not-SQL list"},
	}
	found, excused := guard.check(t, dir, "./...")

	want, wantExcused := markedLines(t, dir, "// want"), markedLines(t, dir, "// excused")
	if len(want) < 9 || len(wantExcused) != 1 {
		t.Fatalf("testdata lost its markers: %d want, %d excused", len(want), len(wantExcused))
	}
	if got := findingLines(found); !slices.Equal(got, want) {
		t.Errorf("reported lines:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	if got := findingLines(excused); !slices.Equal(got, wantExcused) {
		t.Errorf("excused lines: %v, want %v", got, wantExcused)
	}

	// The report names the place, so that a failure can be acted on.
	for _, f := range found {
		s := f.String()
		if !strings.HasPrefix(s, fmt.Sprintf("%s:%d:", f.Pos.Filename, f.Pos.Line)) || !strings.Contains(s, f.Callee) {
			t.Errorf("finding %q does not start with file:line or does not name the callee", s)
		}
	}
	for _, line := range []string{"sqlguard.go", "other/other.go"} {
		if !slices.ContainsFunc(found, func(f sqlFinding) bool { return f.Pos.Filename == line }) {
			t.Errorf("nothing reported in %s", line)
		}
	}
	for _, f := range found {
		if strings.Contains(f.Callee, "QueryContext") && f.Pos.Filename == "sqlguard.go" && strings.Contains(f.Arg, "fmt.Sprintf") {
			return
		}
	}
	t.Errorf("the fmt.Sprintf query passed to QueryContext is not reported as such: %v", found)
}

// rampartSQLGuard is the configuration of the guard for this module.
var rampartSQLGuard = sqlGuard{
	Exceptions: map[string]string{
		// Identifiers cannot be bound as parameters: dbtest creates and drops
		// a test schema whose name is "t_" and 16 hex digits it generated.
		// Test support only; no production code imports dbtest.
		"github.com/rampart-go/rampart/models/dbtest.postgresSchema": "CREATE/DROP SCHEMA with a generated hex name",
	},
	Rebinders: map[string]bool{
		// DB.rebind only rewrites '?' placeholders for the dialect.
		"(*github.com/rampart-go/rampart/models.DB).rebind": true,
	},
	NotSQL: map[string]string{
		"net/url.ParseQuery": "its query is a URL query string",
	},
}

// sqlParamNames are the names SQL parameters go by: database/sql, sqlx and
// the models wrappers (q.get/sel/exec, DB.rebind) call theirs query; pgx
// calls its sql.
var sqlParamNames = map[string]bool{"query": true, "sql": true}

// sqlGuard finds calls that pass a non-constant string to a SQL parameter.
// Allowed are constant expressions (the type checker knows their value), a
// SQL parameter of the enclosing function passed through unchanged
// (possibly through a rebinder), and calls inside an excepted function.
type sqlGuard struct {
	// Exceptions maps functions, named as types.Func.FullName writes them
	// ("pkg/path.Func", "(*pkg/path.T).Method"), to why they may pass SQL
	// built at run time. A closure belongs to its enclosing declaration.
	Exceptions map[string]string
	// Rebinders rewrite their query argument's placeholders and nothing
	// else; their result is as acceptable as their argument.
	Rebinders map[string]bool
	// NotSQL maps callees whose parameter named like a SQL parameter holds
	// something else to what it holds. Everything else is SQL until listed:
	// a new database library is covered without a change here.
	NotSQL map[string]string
}

// sqlFinding is one call passing SQL built at run time.
type sqlFinding struct {
	Pos    token.Position // Filename is relative to the loaded module's directory
	Func   string         // the enclosing declaration; "" at package level
	Callee string
	Param  string
	Arg    string
}

func (f sqlFinding) String() string {
	where := f.Func
	if where == "" {
		where = "package level"
	}
	return fmt.Sprintf("%s:%d: SQL built at run time (%s) is passed to parameter %q of %s in %s; use a constant query with placeholders",
		f.Pos.Filename, f.Pos.Line, f.Arg, f.Param, f.Callee, where)
}

// check type-checks the non-test packages matched by patterns in dir and
// returns the findings: those to report, and those an exception excuses.
func (g sqlGuard) check(tb testing.TB, dir string, patterns ...string) (found, excused []sqlFinding) {
	tb.Helper()
	pkgs := loadPackages(tb, dir, packages.NeedName|packages.NeedFiles|packages.NeedImports|
		packages.NeedSyntax|packages.NeedTypes|packages.NeedTypesInfo, patterns...)
	abs, err := filepath.Abs(dir)
	if err != nil {
		tb.Fatal(err)
	}
	for _, pkg := range pkgs {
		for _, f := range g.checkPackage(pkg) {
			if rel, err := filepath.Rel(abs, f.Pos.Filename); err == nil {
				f.Pos.Filename = filepath.ToSlash(rel)
			}
			if _, ok := g.Exceptions[f.Func]; ok {
				excused = append(excused, f)
			} else {
				found = append(found, f)
			}
		}
	}
	return found, excused
}

func (g sqlGuard) checkPackage(pkg *packages.Package) []sqlFinding {
	info := pkg.TypesInfo

	// SQL parameters of every function (closures included), and the
	// variables the code changes or takes the address of: a parameter that
	// is changed is no longer what the caller passed.
	params := map[*types.Var]bool{}
	changed := map[*types.Var]bool{}
	markChanged := func(e ast.Expr) {
		if id, ok := ast.Unparen(e).(*ast.Ident); ok {
			if v, ok := info.Uses[id].(*types.Var); ok {
				changed[v] = true
			}
		}
	}
	for _, file := range pkg.Syntax {
		ast.Inspect(file, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.FuncType:
				if n.Params == nil {
					break
				}
				for _, field := range n.Params.List {
					for _, name := range field.Names {
						if v, ok := info.Defs[name].(*types.Var); ok && sqlParamNames[v.Name()] && isString(v.Type()) {
							params[v] = true
						}
					}
				}
			case *ast.AssignStmt:
				// Uses, not Defs: a redeclaration in := assigns too.
				for _, lhs := range n.Lhs {
					markChanged(lhs)
				}
			case *ast.IncDecStmt:
				markChanged(n.X)
			case *ast.RangeStmt:
				if n.Tok == token.ASSIGN {
					markChanged(n.Key)
					if n.Value != nil {
						markChanged(n.Value)
					}
				}
			case *ast.UnaryExpr:
				if n.Op == token.AND {
					markChanged(n.X)
				}
			}
			return true
		})
	}

	var acceptable func(e ast.Expr) bool
	acceptable = func(e ast.Expr) bool {
		e = ast.Unparen(e)
		if tv, ok := info.Types[e]; ok && tv.Value != nil {
			return true // a constant expression
		}
		switch e := e.(type) {
		case *ast.Ident:
			v, ok := info.Uses[e].(*types.Var)
			return ok && params[v] && !changed[v]
		case *ast.CallExpr:
			fn := typeutil.StaticCallee(info, e)
			return fn != nil && g.Rebinders[fn.FullName()] && len(e.Args) == 1 && acceptable(e.Args[0])
		}
		return false
	}

	var out []sqlFinding
	for _, file := range pkg.Syntax {
		for _, decl := range file.Decls {
			where := ""
			if fd, ok := decl.(*ast.FuncDecl); ok {
				if fn, ok := info.Defs[fd.Name].(*types.Func); ok {
					where = fn.FullName()
				}
			}
			ast.Inspect(decl, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				callee := calleeName(info, call)
				if _, ok := g.NotSQL[callee]; ok {
					return true
				}
				for _, a := range sqlArgs(info, call) {
					if !acceptable(a.expr) {
						out = append(out, sqlFinding{
							Pos:    pkg.Fset.Position(a.expr.Pos()),
							Func:   where,
							Callee: callee,
							Param:  a.param,
							Arg:    shorten(types.ExprString(a.expr)),
						})
					}
				}
				return true
			})
		}
	}
	return out
}

// sqlArg is an argument of a call that lands in a SQL parameter.
type sqlArg struct {
	expr  ast.Expr
	param string
}

// sqlArgs returns the arguments of call that are passed to a string
// parameter named like a SQL parameter.
func sqlArgs(info *types.Info, call *ast.CallExpr) []sqlArg {
	tv, ok := info.Types[call.Fun]
	if !ok || tv.IsType() || tv.Type == nil {
		return nil // a conversion, or not type-checked
	}
	sig, ok := tv.Type.Underlying().(*types.Signature)
	if !ok {
		return nil
	}
	ps := sig.Params()
	isSQL := func(i int, spread bool) (string, bool) {
		if ps.Len() == 0 {
			return "", false
		}
		var p *types.Var
		t := types.Type(nil)
		switch {
		case sig.Variadic() && i >= ps.Len()-1:
			p = ps.At(ps.Len() - 1)
			t = p.Type()
			if !spread {
				t = t.(*types.Slice).Elem()
			}
		case i < ps.Len():
			p = ps.At(i)
			t = p.Type()
		default:
			return "", false
		}
		return p.Name(), sqlParamNames[p.Name()] && isString(t)
	}

	// f(g()) with a multi-value g: each result lands in a parameter, and
	// none of them is a constant.
	if len(call.Args) == 1 {
		if tuple, ok := info.TypeOf(call.Args[0]).(*types.Tuple); ok && tuple.Len() > 1 {
			var out []sqlArg
			for i := range tuple.Len() {
				if name, ok := isSQL(i, false); ok {
					out = append(out, sqlArg{expr: call.Args[0], param: name})
				}
			}
			return out
		}
	}
	var out []sqlArg
	for i, arg := range call.Args {
		spread := call.Ellipsis.IsValid() && i == len(call.Args)-1
		if name, ok := isSQL(i, spread); ok {
			out = append(out, sqlArg{expr: arg, param: name})
		}
	}
	return out
}

func isString(t types.Type) bool {
	b, ok := t.Underlying().(*types.Basic)
	return ok && b.Info()&types.IsString != 0
}

func calleeName(info *types.Info, call *ast.CallExpr) string {
	if fn, ok := typeutil.Callee(info, call).(*types.Func); ok {
		return fn.FullName()
	}
	return types.ExprString(call.Fun)
}

func shorten(s string) string {
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}

// markedLines returns "file:line" for every line of the .go files under dir
// that contains marker, in the order findingLines uses.
func markedLines(tb testing.TB, dir, marker string) []string {
	tb.Helper()
	var lines []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		s := bufio.NewScanner(f)
		for n := 1; s.Scan(); n++ {
			if strings.Contains(s.Text(), marker) {
				lines = append(lines, fmt.Sprintf("%s:%d", filepath.ToSlash(rel), n))
			}
		}
		return s.Err()
	})
	if err != nil {
		tb.Fatal(err)
	}
	slices.Sort(lines)
	return lines
}

func findingLines(fs []sqlFinding) []string {
	var lines []string
	for _, f := range fs {
		lines = append(lines, fmt.Sprintf("%s:%d", f.Pos.Filename, f.Pos.Line))
	}
	slices.Sort(lines)
	return slices.Compact(lines) // a rebinder's argument and its result share a line
}
