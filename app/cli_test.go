package app

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/rampart-go/rampart/models"
	"github.com/rampart-go/rampart/models/dbtest"
)

// adminPassword is the password of the admin the CLI tests create.
const adminPassword = "vivid-Orchard-7-sextant"

// migrationState is what `migrate status|up|down` printed.
type migrationState struct {
	current  int
	versions []int
	applied  map[int]bool
}

var (
	versionLine = regexp.MustCompile(`(?m)^version: (\d+) \(clean\)$`)
	stepLine    = regexp.MustCompile(`(?m)^  (\d{4}) (applied|pending)$`)
)

// parseMigrations reads the output of a successful migrate command.
func parseMigrations(tb testing.TB, r cliResult) migrationState {
	tb.Helper()
	if r.code != 0 || r.stderr != "" {
		tb.Fatalf("migrate: exit %d, stderr %q", r.code, r.stderr)
	}
	m := versionLine.FindStringSubmatch(r.stdout)
	if m == nil {
		tb.Fatalf("migrate printed no clean version line:\n%s", r.stdout)
	}
	st := migrationState{applied: map[int]bool{}}
	st.current, _ = strconv.Atoi(m[1])
	for _, s := range stepLine.FindAllStringSubmatch(r.stdout, -1) {
		v, _ := strconv.Atoi(s[1])
		st.versions = append(st.versions, v)
		st.applied[v] = s[2] == "applied"
	}
	if len(st.versions) == 0 {
		tb.Fatalf("migrate lists no migrations:\n%s", r.stdout)
	}
	return st
}

func (st migrationState) last() int { return st.versions[len(st.versions)-1] }

// previous is the version one roll-back leaves: the one before the last.
func (st migrationState) previous() int {
	if len(st.versions) < 2 {
		return 0
	}
	return st.versions[len(st.versions)-2]
}

// wantFailure checks a failed command: the exit code, exactly one line on
// stderr (containing each of want), nothing on stdout, and none of the
// secrets anywhere.
func wantFailure(tb testing.TB, r cliResult, code int, want []string, secrets ...string) {
	tb.Helper()
	if r.code != code {
		tb.Errorf("exit code %d, want %d (stderr %q)", r.code, code, r.stderr)
	}
	if strings.Count(r.stderr, "\n") != 1 || !strings.HasSuffix(r.stderr, "\n") {
		tb.Errorf("stderr is not exactly one line: %q", r.stderr)
	}
	if r.stdout != "" {
		tb.Errorf("stdout %q, want nothing", r.stdout)
	}
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			tb.Errorf("stderr %q does not say %q", r.stderr, w)
		}
	}
	for _, s := range secrets {
		if strings.Contains(r.stdout+r.stderr, s) {
			tb.Errorf("the output shows a secret: %q %q", r.stdout, r.stderr)
		}
	}
}

func TestCLI(t *testing.T) {
	for _, d := range dbtest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			v := dialectVars(t, d)
			t.Run("migrate", func(t *testing.T) { testMigrate(t, v) })
			t.Run("user create", func(t *testing.T) { testUserCreate(t, v) })
			t.Run("migrate in production", func(t *testing.T) { testMigrateProduction(t, d) })
		})
	}
}

func testMigrate(t *testing.T, v vars) {
	r := runCLI(t, v, "", "migrate", "status")
	st := parseMigrations(t, r)
	if st.current != 0 || st.applied[st.versions[0]] {
		t.Errorf("a fresh database: %+v", st)
	}
	if !strings.HasPrefix(r.stdout, "database: ") {
		t.Errorf("status does not say which database: %q", r.stdout)
	}

	st = parseMigrations(t, runCLI(t, v, "", "migrate", "up"))
	if st.current != st.last() {
		t.Errorf("after up: version %d, want %d", st.current, st.last())
	}
	for _, ver := range st.versions {
		if !st.applied[ver] {
			t.Errorf("after up: %04d is pending", ver)
		}
	}
	// up is idempotent.
	if again := parseMigrations(t, runCLI(t, v, "", "migrate", "up")); again.current != st.last() {
		t.Errorf("second up: version %d", again.current)
	}

	st = parseMigrations(t, runCLI(t, v, "", "migrate", "down"))
	if st.current != st.previous() || st.applied[st.last()] {
		t.Errorf("after down: version %d (want %d), %04d applied: %v", st.current, st.previous(), st.last(), st.applied[st.last()])
	}
	if status := parseMigrations(t, runCLI(t, v, "", "migrate", "status")); status.current != st.previous() {
		t.Errorf("status after down: version %d", status.current)
	}
	if st := parseMigrations(t, runCLI(t, v, "", "migrate", "up")); st.current != st.last() {
		t.Errorf("up after down: version %d", st.current)
	}

	wantFailure(t, runCLI(t, v, "", "migrate"), exitUsage, []string{"up, down, status"})
	wantFailure(t, runCLI(t, v, "", "migrate", "sideways"), exitUsage, []string{"sideways"})
	wantFailure(t, runCLI(t, v, "", "migrate", "up", "down"), exitUsage, nil)
	wantFailure(t, runCLI(t, v, "", "migrate", "--force", "up"), exitUsage, nil)
}

// nonTempDir returns a new folder outside the temporary folders, which
// production refuses for SQLite: under the user's cache folder.
func nonTempDir(tb testing.TB) string {
	tb.Helper()
	base, err := os.UserCacheDir()
	if err != nil {
		tb.Fatalf("no folder outside the temporary folder for a production SQLite file: %v", err)
	}
	if err := os.MkdirAll(base, 0o700); err != nil {
		tb.Fatal(err)
	}
	dir, err := os.MkdirTemp(base, "rampart-test-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	if inTempDir(dir) {
		tb.Fatalf("the user cache folder %s is a temporary folder; production refuses SQLite there", base)
	}
	return dir
}

func testMigrateProduction(t *testing.T, d models.Dialect) {
	v := vars{
		"APP_ENV":           EnvProduction,
		"APP_DATA_DIR":      t.TempDir(),
		"APP_TLS_CERT_FILE": "/etc/rampart/tls/cert.pem", // not read by migrate
		"APP_TLS_KEY_FILE":  "/etc/rampart/tls/key.pem",
		"APP_SECRETS":       "file:/run/secrets/rampart",
	}
	if d == models.Postgres {
		v["APP_DATABASE_URL"] = postgresURL(t)
	} else {
		v["APP_DATABASE_URL"] = "sqlite:" + filepath.Join(nonTempDir(t), "rampart.db")
	}

	st := parseMigrations(t, runCLI(t, v, "", "migrate", "up"))
	wantFailure(t, runCLI(t, v, "", "migrate", "down"), exitUsage, []string{"--yes"})
	if now := parseMigrations(t, runCLI(t, v, "", "migrate", "status")); now.current != st.last() {
		t.Fatalf("the refused roll-back changed the version to %d", now.current)
	}
	if now := parseMigrations(t, runCLI(t, v, "", "migrate", "down", "--yes")); now.current != st.previous() {
		t.Errorf("migrate down --yes: version %d, want %d", now.current, st.previous())
	}
	parseMigrations(t, runCLI(t, v, "", "migrate", "up"))
	if now := parseMigrations(t, runCLI(t, v, "", "migrate", "--yes", "down")); now.current != st.previous() {
		t.Errorf("migrate --yes down: version %d, want %d", now.current, st.previous())
	}
}

// accountsFor opens the database of v the way the app does and returns
// its account service.
func accountsFor(tb testing.TB, v vars) (*models.DB, *models.Accounts) {
	tb.Helper()
	cfg, err := LoadConfig(v.get)
	if err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	db, err := models.OpenDB(ctx, cfg.Database)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	policy, err := models.NewPasswordPolicy()
	if err != nil {
		tb.Fatal(err)
	}
	accounts, err := models.NewAccounts(ctx, db, models.AccountsConfig{
		Hasher: models.NewPasswordHasher(models.DefaultArgon2Params), Policy: policy,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return db, accounts
}

func testUserCreate(t *testing.T, v vars) {
	ctx := context.Background()
	r := runCLI(t, v, adminPassword+"\n", "user", "create", "--email", "a@example.com", "--role", "admin", "--password-stdin")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("user create: exit %d, stderr %q", r.code, r.stderr)
	}
	if !strings.HasPrefix(r.stdout, "created admin a@example.com (id ") {
		t.Errorf("stdout %q", r.stdout)
	}
	if strings.Contains(r.stdout+r.stderr, adminPassword) {
		t.Errorf("the output shows the password")
	}

	db, accounts := accountsFor(t, v)
	login, err := accounts.Login(ctx, "a@example.com", adminPassword)
	if err != nil {
		t.Fatalf("the new admin cannot log in: %v", err)
	}
	p, err := accounts.Authenticate(ctx, login.Token)
	if err != nil {
		t.Fatal(err)
	}
	if !p.IsAdmin() {
		t.Errorf("the new user is not an admin: %+v", p)
	}
	admin, err := models.NewAdminUsers(db, p)
	if err != nil {
		t.Fatal(err)
	}
	countUsers := func() int {
		t.Helper()
		page, err := admin.List(ctx, models.PageRequest{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		return len(page.Items)
	}
	if n := countUsers(); n != 1 {
		t.Fatalf("%d users after one user create", n)
	}

	const other = "b@example.com"
	tests := []struct {
		what  string
		stdin string
		args  []string
		code  int
		want  []string
	}{
		{"no --password-stdin", adminPassword + "\n",
			[]string{"--email", other, "--role", "admin"}, exitUsage, []string{"--password-stdin"}},
		{"a --password flag", "",
			[]string{"--email", other, "--role", "admin", "--password", adminPassword}, exitUsage, []string{"password"}},
		{"a --password= flag", "",
			[]string{"--email", other, "--role", "admin", "--password=" + adminPassword, "--password-stdin"}, exitUsage, []string{"password"}},
		{"a bad role", adminPassword + "\n",
			[]string{"--email", other, "--role", "root", "--password-stdin"}, exitUsage, []string{"--role"}},
		{"no --email", adminPassword + "\n",
			[]string{"--role", "admin", "--password-stdin"}, exitUsage, []string{"--email"}},
		{"a positional argument", adminPassword + "\n",
			[]string{"--email", other, "--password-stdin", adminPassword}, exitUsage, nil},
		{"a short password", "Short-pw7\n",
			[]string{"--email", other, "--role", "admin", "--password-stdin"}, exitFail, []string{"password", "12"}},
		{"the e-mail as password", other + "\n",
			[]string{"--email", other, "--role", "admin", "--password-stdin"}, exitFail, []string{"password"}},
		{"a common password", "password1234\n",
			[]string{"--email", other, "--role", "admin", "--password-stdin"}, exitFail, []string{"password"}},
		{"no password on stdin", "",
			[]string{"--email", other, "--role", "admin", "--password-stdin"}, exitFail, []string{"stdin"}},
		{"a bad e-mail", adminPassword + "\n",
			[]string{"--email", "not-an-email", "--role", "admin", "--password-stdin"}, exitFail, []string{"email"}},
		{"a duplicate e-mail", adminPassword + "\n",
			[]string{"--email", "a@example.com", "--role", "user", "--password-stdin"}, exitFail, []string{"already exists"}},
		{"a duplicate e-mail in other case", adminPassword + "\n",
			[]string{"--email", "A@Example.COM", "--role", "user", "--password-stdin"}, exitFail, []string{"already exists"}},
	}
	for _, tt := range tests {
		t.Run(tt.what, func(t *testing.T) {
			r := runCLI(t, v, tt.stdin, append([]string{"user", "create"}, tt.args...)...)
			secrets := []string{adminPassword}
			if pw := strings.TrimSpace(tt.stdin); pw != "" && pw != other {
				secrets = append(secrets, pw)
			}
			wantFailure(t, r, tt.code, tt.want, secrets...)
		})
	}
	for _, args := range [][]string{{"frobnicate"}, {"user"}, {"user", "delete", "--email", other}, {"serve", "now"}} {
		t.Run(fmt.Sprint(args), func(t *testing.T) {
			wantFailure(t, runCLI(t, v, adminPassword+"\n", args...), exitUsage, nil, adminPassword)
		})
	}

	if n := countUsers(); n != 1 {
		t.Errorf("%d users after the failed commands, want 1", n)
	}
	if _, err := accounts.Login(ctx, other, adminPassword); models.KindOf(err) != models.KindUnauthenticated {
		t.Errorf("login as %s after the failed commands: %v", other, err)
	}
}
