package app

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/rampart-go/rampart/models"
	"github.com/rampart-go/rampart/models/dbtest"
)

// vars is a test environment: Getenv reads from the map only, so the tests
// never see the APP_* variables of the machine they run on.
type vars map[string]string

func (v vars) get(name string) string { return v[name] }

// with returns a copy of v with the given name=value pairs set ("" unsets).
func (v vars) with(kv ...string) vars {
	out := vars{}
	for k, val := range v {
		out[k] = val
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			delete(out, kv[i])
		} else {
			out[kv[i]] = kv[i+1]
		}
	}
	return out
}

// syncBuffer is a bytes.Buffer that a running server and the test may use
// at the same time.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// discardLogger is a logger for code under test whose log is not checked.
func discardLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// cliResult is what one run of Main produced.
type cliResult struct {
	code           int
	stdout, stderr string
}

// runCLI runs Main with args, the environment v and stdin, as the binary
// would, and returns its exit code and output.
func runCLI(tb testing.TB, v vars, stdin string, args ...string) cliResult {
	tb.Helper()
	var stdout, stderr bytes.Buffer
	code := Main(context.Background(), args, Env{
		Stdin: strings.NewReader(stdin), Stdout: &stdout, Stderr: &stderr, Getenv: v.get,
	})
	return cliResult{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// postgresURL returns a URL for a fresh, empty PostgreSQL schema (made by
// dbtest, dropped when the test ends), as APP_DATABASE_URL would hold it.
// dbtest only hands out the parsed URL, whose printable form hides the
// password; the schema it names is put into TEST_DATABASE_URL instead.
func postgresURL(tb testing.TB) string {
	tb.Helper()
	u := dbtest.URL(tb, models.Postgres)
	printed, err := url.Parse(u.Redacted())
	if err != nil {
		tb.Fatalf("dbtest URL: %v", err)
	}
	schema := printed.Query().Get("search_path")
	if schema == "" {
		tb.Fatalf("dbtest URL names no schema")
	}
	base, err := url.Parse(os.Getenv("TEST_DATABASE_URL"))
	if err != nil {
		tb.Fatalf("TEST_DATABASE_URL is not a URL")
	}
	q := base.Query()
	q.Set("search_path", schema)
	base.RawQuery = q.Encode()
	return base.String()
}

// dialectVars returns the environment of a development setup with its own
// data folder on dialect d: the default SQLite file under APP_DATA_DIR, or
// a fresh PostgreSQL schema.
func dialectVars(tb testing.TB, d models.Dialect) vars {
	tb.Helper()
	v := vars{"APP_DATA_DIR": tb.TempDir()}
	if d == models.Postgres {
		v["APP_DATABASE_URL"] = postgresURL(tb)
	}
	return v
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func itoa(n int) string { return strconv.Itoa(n) }
