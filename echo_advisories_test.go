package main

import (
	"go/types"
	"slices"
	"strings"
	"testing"

	"golang.org/x/tools/go/packages"
)

// echoAffected are the echo v4 names of the code paths of GO-2026-6875 and
// GO-2026-6872 (their symbol lists name echo v5; these are the same
// functions in v4): the reverse proxy that forwards X-Real-IP, the rate
// limiter keyed on the header-trusting RealIP, the Secure, MethodOverride
// and Static middleware, the scheme taken from X-Forwarded-Proto, JSONP,
// static file handlers, and the extractor that believes X-Real-IP. A
// method is "Type.Method".
var echoAffected = map[string][]string{
	"github.com/labstack/echo/v4": {
		"Context.Scheme", "Context.JSONP", "Context.JSONPBlob",
		"Echo.Static", "Echo.StaticFS", "Echo.File", "Echo.FileFS",
		"Group.Static", "Group.StaticFS", "Group.File", "Group.FileFS",
		"StaticDirectoryHandler", "StaticFileHandler", "ExtractIPFromRealIPHeader",
	},
	"github.com/labstack/echo/v4/middleware": {
		"Proxy", "ProxyWithConfig", "ProxyConfig", "ProxyTarget", "NewRandomBalancer", "NewRoundRobinBalancer",
		"RateLimiter", "RateLimiterWithConfig", "RateLimiterConfig", "DefaultRateLimiterConfig",
		"NewRateLimiterMemoryStore", "NewRateLimiterMemoryStoreWithConfig",
		"Secure", "SecureWithConfig", "SecureConfig", "DefaultSecureConfig",
		"MethodOverride", "MethodOverrideWithConfig", "MethodOverrideConfig",
		"Static", "StaticWithConfig", "StaticConfig",
	},
}

// TestEchoAdvisorySymbolsUnused: no non-test code of the module refers to
// an echo v4 function, method or type of echoAffected, and no other
// package in the build imports echo's middleware package, so none of those
// code paths can run (proxyHTTP, which govulncheck's call graph reaches by
// over-approximation, is only ever called by ProxyWithConfig). Context.RealIP
// is used, with the IPExtractor every echo instance gets: see
// handlers.TestEchoAdvisoriesNotExposed. echo.New is called in one place
// only, handlers.newEcho, which sets that extractor.
func TestEchoAdvisorySymbolsUnused(t *testing.T) {
	pkgs := loadPackages(t, ".", packages.NeedName|packages.NeedFiles|packages.NeedImports|
		packages.NeedSyntax|packages.NeedTypes|packages.NeedTypesInfo, "./...")

	used := map[string][]string{} // "pkg name" -> positions
	echoPkgs := map[string]*types.Package{}
	for _, p := range pkgs {
		for path, imp := range p.Imports {
			if _, ok := echoAffected[path]; ok {
				echoPkgs[path] = imp.Types
			}
		}
		for id, obj := range p.TypesInfo.Uses {
			if obj.Pkg() == nil {
				continue
			}
			if _, ok := echoAffected[obj.Pkg().Path()]; !ok {
				continue
			}
			name := obj.Name()
			if f, ok := obj.(*types.Func); ok {
				if recv := f.Signature().Recv(); recv != nil {
					name = typeName(recv.Type()) + "." + name
				}
			}
			key := obj.Pkg().Path() + " " + name
			used[key] = append(used[key], p.Fset.Position(id.Pos()).String())
		}
	}
	if len(echoPkgs) != 2 {
		t.Fatalf("echo and its middleware package not found among the imports (%d of 2): the test looks at nothing", len(echoPkgs))
	}
	// The collection works: names the code does use are found.
	for _, key := range []string{"github.com/labstack/echo/v4 New", "github.com/labstack/echo/v4/middleware RequestLoggerWithConfig", "github.com/labstack/echo/v4 Context.RealIP"} {
		if len(used[key]) == 0 {
			t.Errorf("%s is used but not found: the test does not see the module's references", key)
		}
	}
	for path, names := range echoAffected {
		for _, name := range names {
			if !exists(echoPkgs[path], name) {
				t.Errorf("%s.%s does not exist in this echo version: update echoAffected", path, name)
			}
			if at := used[path+" "+name]; len(at) > 0 {
				t.Errorf("%s.%s (GO-2026-6875/GO-2026-6872) is used at %s", path, name, strings.Join(at, ", "))
			}
		}
	}
	if at := used["github.com/labstack/echo/v4 New"]; len(at) != 1 || !strings.Contains(at[0], "handlers/server.go") {
		t.Errorf("echo.New is called at %v; only handlers.newEcho may make an echo instance (it sets the IPExtractor)", at)
	}

	// Nothing else in the build imports echo's middleware.
	graph := loadPackages(t, ".", packages.NeedName|packages.NeedImports|packages.NeedDeps, "./...")
	packages.Visit(graph, nil, func(p *packages.Package) {
		if _, ok := p.Imports["github.com/labstack/echo/v4/middleware"]; ok && !strings.HasPrefix(p.PkgPath, modulePath+"/") {
			t.Errorf("%s imports echo's middleware: its use of the affected middleware is not checked", p.PkgPath)
		}
	})
}

// typeName is the name of a method's receiver type, without pointer.
func typeName(t types.Type) string {
	if p, ok := t.(*types.Pointer); ok {
		t = p.Elem()
	}
	if n, ok := t.(*types.Named); ok {
		return n.Obj().Name()
	}
	return t.String()
}

// exists reports whether pkg has name ("Func", "Type" or "Type.Method").
func exists(pkg *types.Package, name string) bool {
	if pkg == nil {
		return false
	}
	typ, method, isMethod := strings.Cut(name, ".")
	obj := pkg.Scope().Lookup(typ)
	if obj == nil || !isMethod {
		return obj != nil
	}
	ms := types.NewMethodSet(types.NewPointer(obj.Type()))
	if types.IsInterface(obj.Type()) {
		ms = types.NewMethodSet(obj.Type())
	}
	return slices.ContainsFunc(slices.Collect(ms.Methods()), func(s *types.Selection) bool { return s.Obj().Name() == method })
}
