package main

// Checks of the container files (issue 6, items 6 and 7). No Docker engine
// runs on the project's machines, so nothing here builds an image or starts
// a container: docker-compose.yml is loaded with compose-go (the loader of
// `docker compose` itself: interpolation from .env.example, the compose
// schema, defaults and normalisation), the Dockerfile is parsed with
// BuildKit's Dockerfile parser (the one `docker build` uses), .dockerignore
// with Docker's own pattern matcher, and the security properties are
// asserted on what those parsers return. What only a running engine could
// show (that PostgreSQL accepts the copied key, that Redis answers on TLS)
// was tried by hand with the same commands against local servers; see the
// README.

import (
	"bufio"
	"context"
	"math"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/distribution/reference"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

const (
	composeFile   = "docker-compose.yml"
	envExample    = ".env.example"
	dockerfile    = "Dockerfile"
	dockerignore  = ".dockerignore"
	secretsMount  = "/run/secrets/"
	appService    = "app"
	httpsPort     = 8443
	backendNet    = "backend"
	probeInImage  = "/usr/local/bin/healthcheck"
	serverInImage = "/usr/local/bin/rampart"
)

// loadCompose loads docker-compose.yml as `docker compose` would, from the
// repository folder, with the variables of .env.example and nothing of
// this process's environment (the test must not depend on who runs it).
func loadCompose(tb testing.TB) *types.Project {
	tb.Helper()
	wd, err := filepath.Abs(".")
	if err != nil {
		tb.Fatal(err)
	}
	opts, err := cli.NewProjectOptions([]string{composeFile},
		cli.WithWorkingDirectory(wd),
		cli.WithEnvFiles(filepath.Join(wd, envExample)),
		cli.WithDotEnv,
		cli.WithInterpolation(true),
		cli.WithNormalization(true),
		cli.WithConsistency(true),
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		tb.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		tb.Fatalf("%s does not load: %v", composeFile, err)
	}
	for _, name := range []string{appService, "postgres", "redis"} {
		if _, ok := p.Services[name]; !ok {
			tb.Fatalf("%s has no %s service", composeFile, name)
		}
	}
	return p
}

// secretishName matches variable and argument names that announce a
// credential.
var secretishName = regexp.MustCompile(`(?i)pass|secret|token|key|credential|private|auth|cookie|session|salt|pepper`)

var (
	pemBlock     = regexp.MustCompile(`-----BEGIN [A-Z ]*(PRIVATE KEY|CERTIFICATE)`)
	awsKeyID     = regexp.MustCompile(`\b(AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}\b`)
	ourToken     = regexp.MustCompile(`rp[sk]_[A-Za-z0-9_-]{20,}`)
	secretishArg = regexp.MustCompile(`(?i)(--?(requirepass|password|passwd|pass|secret|token|api-?key)[= ]|(password|secret|token)=)`)
	tokenRun     = regexp.MustCompile(`[A-Za-z0-9+/_-]{20,}={0,2}`)
)

// entropy is the Shannon entropy of s in bits a character.
func entropy(s string) float64 {
	counts := map[rune]int{}
	for _, r := range s {
		counts[r]++
	}
	var h float64
	n := float64(len([]rune(s)))
	for _, c := range counts {
		p := float64(c) / n
		h -= p * math.Log2(p)
	}
	return h
}

// secretInValue says why v looks like a credential, or "" when it does not:
// a PEM block, an AWS access key ID, one of our tokens, a URL with a
// password, or a long random-looking run of characters (a key in base64 or
// hex).
func secretInValue(v string) string {
	switch {
	case pemBlock.MatchString(v):
		return "a PEM block"
	case awsKeyID.MatchString(v):
		return "an AWS access key ID"
	case ourToken.MatchString(v):
		return "a Rampart token"
	}
	for _, f := range strings.Fields(v) {
		if u, err := url.Parse(f); err == nil && u.User != nil {
			if _, has := u.User.Password(); has {
				return "a URL with a password"
			}
		}
	}
	for _, run := range tokenRun.FindAllString(v, -1) {
		if digitLetterSwitches(run) >= 4 && entropy(run) >= 3 {
			return "a long random-looking string (" + strconv.Itoa(len(run)) + " characters)"
		}
	}
	return ""
}

// digitLetterSwitches counts the places where a digit follows a letter or
// a letter a digit: random base64 and hex switch often, names and words
// (ssl_min_protocol_version, scram-sha-256) hardly ever.
func digitLetterSwitches(s string) int {
	n, last := 0, 0 // last: 1 digit, 2 letter
	for _, r := range s {
		kind := 0
		switch {
		case r >= '0' && r <= '9':
			kind = 1
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
			kind = 2
		}
		if kind != 0 && last != 0 && kind != last {
			n++
		}
		if kind != 0 {
			last = kind
		}
	}
	return n
}

// TestSecretDetector checks the detector the other tests rely on: it must
// flag the shapes of real secrets and leave this project's ordinary values
// alone.
func TestSecretDetector(t *testing.T) {
	secrets := []string{
		"postgres://rampart:s3cr3t-Passw0rd@postgres:5432/rampart",
		"redis://:hunter2@redis:6379/0",
		"q2Zl0mC3fX9yB7nTk1vR8sJ4uW6aE5dH0gL2pO9iU3c=",     // openssl rand -base64 32
		"5f1d0c9e8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a", // openssl rand -hex 24
		"AKIAIOSFODNN7EXAMPLE",                             // the example key ID of the AWS documentation
		"rps_x6Zq1t9Lw3Kd8Rj5Vn2Hb7Mf4Ys0Pc1Ge6Ta9Uk3Qo",
		"-----BEGIN EC PRIVATE KEY-----",
	}
	for _, v := range secrets {
		if secretInValue(v) == "" {
			t.Errorf("not flagged: %q", v)
		}
	}
	plain := []string{
		"production", "0.0.0.0:8443", "file:/run/secrets", "/run/secrets/app_tls_cert",
		"postgres://rampart@postgres:5432/rampart?sslmode=verify-full&sslrootcert=/run/secrets/compose_ca",
		"rediss://redis:6379/0", "ssl_key_file=/var/lib/postgresql/tls/server.key",
		"https://127.0.0.1:8443/readyz", "password_encryption=scram-sha-256",
		"/tmp:size=16m,mode=1777,noexec,nosuid,nodev", "no-new-privileges:true",
		"ssl_min_protocol_version=TLSv1.2", "--tls-ca-cert-file", "application_name_for_compose_2026",
	}
	for _, v := range plain {
		if why := secretInValue(v); why != "" {
			t.Errorf("flagged as %s: %q", why, v)
		}
	}
}

// serviceNames returns the project's service names, sorted.
func serviceNames(p *types.Project) []string {
	names := make([]string, 0, len(p.Services))
	for n := range p.Services {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// nonRootUser reports whether a compose or Dockerfile user is a numeric,
// non-zero uid (with an optional numeric gid): a name could map to root
// in some image, and Kubernetes' runAsNonRoot can only check numbers.
func nonRootUser(user string) bool {
	uid, gid, hasGID := strings.Cut(user, ":")
	n, err := strconv.Atoi(uid)
	if err != nil || n <= 0 {
		return false
	}
	if hasGID {
		if g, err := strconv.Atoi(gid); err != nil || g < 0 {
			return false
		}
	}
	return true
}

// TestComposeAppHardening checks the app container: non-root numeric user,
// read-only root filesystem, no-new-privileges, every capability dropped
// and none added, tmpfs only where it is needed and not executable, named
// volumes only (no host folder, no Docker socket).
func TestComposeAppHardening(t *testing.T) {
	app := loadCompose(t).Services[appService]
	if !nonRootUser(app.User) {
		t.Errorf("app user = %q, want a numeric non-root uid:gid", app.User)
	}
	if !app.ReadOnly {
		t.Error("app: read_only is not true: the root filesystem must be read-only")
	}
	if len(app.Tmpfs) == 0 {
		t.Error("app: no tmpfs for /tmp: a read-only container needs one")
	}
	for _, tmp := range app.Tmpfs {
		path, opts, _ := strings.Cut(tmp, ":")
		for _, want := range []string{"noexec", "nosuid", "nodev", "size="} {
			if !strings.Contains(opts, want) {
				t.Errorf("app: tmpfs %s lacks %s", path, want)
			}
		}
	}
	for _, v := range app.Volumes {
		if v.Type != types.VolumeTypeVolume {
			t.Errorf("app: volume %s → %s is a %s mount: only named volumes (the data folder)", v.Source, v.Target, v.Type)
		}
	}
	if app.PidsLimit <= 0 {
		t.Error("app: no pids_limit")
	}
}

// TestComposeEveryServiceHardened checks what every service must have:
// no-new-privileges, all capabilities dropped (PostgreSQL's entrypoint gets
// back only the five it needs to drop to its own user), not privileged, no
// host namespaces, no Docker socket, a health check.
func TestComposeEveryServiceHardened(t *testing.T) {
	p := loadCompose(t)
	mayAdd := map[string][]string{
		"postgres": {"CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID"},
	}
	for _, name := range serviceNames(p) {
		s := p.Services[name]
		if !slices.Contains(s.SecurityOpt, "no-new-privileges:true") && !slices.Contains(s.SecurityOpt, "no-new-privileges") {
			t.Errorf("%s: security_opt lacks no-new-privileges:true (has %v)", name, s.SecurityOpt)
		}
		if !slices.Contains(s.CapDrop, "ALL") {
			t.Errorf("%s: cap_drop is %v, want ALL", name, s.CapDrop)
		}
		for _, c := range s.CapAdd {
			if !slices.Contains(mayAdd[name], strings.TrimPrefix(strings.ToUpper(c), "CAP_")) {
				t.Errorf("%s: cap_add %s is not allowed (allowed: %v)", name, c, mayAdd[name])
			}
		}
		if s.Privileged {
			t.Errorf("%s is privileged", name)
		}
		for what, mode := range map[string]string{"network_mode": s.NetworkMode, "pid": s.Pid, "ipc": s.Ipc, "uts": s.Uts, "userns_mode": s.UserNSMode} {
			if mode == "host" {
				t.Errorf("%s: %s is host", name, what)
			}
		}
		for _, v := range s.Volumes {
			if strings.Contains(v.Source, "docker.sock") {
				t.Errorf("%s mounts the Docker socket", name)
			}
		}
		if len(s.Devices) > 0 {
			t.Errorf("%s: devices %v", name, s.Devices)
		}
		if s.User != "" && !nonRootUser(s.User) {
			t.Errorf("%s: user %q is not a numeric non-root uid", name, s.User)
		}
	}
	// Redis needs no root step at all: it runs as its user from the start.
	// (PostgreSQL's entrypoint starts as root to copy its key, then drops.)
	if u := p.Services["redis"].User; !nonRootUser(u) {
		t.Errorf("redis user = %q, want a numeric non-root uid", u)
	}
	if !p.Services["redis"].ReadOnly {
		t.Error("redis: read_only is not true")
	}
}

// TestComposePublishesOnlyHTTPS checks that the app's HTTPS port is the only
// published port of the project, on the loopback address by default, and
// that PostgreSQL and Redis publish nothing.
func TestComposePublishesOnlyHTTPS(t *testing.T) {
	p := loadCompose(t)
	for _, name := range serviceNames(p) {
		s := p.Services[name]
		if name != appService {
			if len(s.Ports) > 0 {
				t.Errorf("%s publishes %v: only the app's HTTPS port may be published", name, s.Ports)
			}
			continue
		}
		if len(s.Ports) != 1 {
			t.Fatalf("app publishes %d ports, want exactly 1 (HTTPS)", len(s.Ports))
		}
		port := s.Ports[0]
		if port.Target != httpsPort || port.Protocol != "tcp" {
			t.Errorf("app publishes container port %d/%s, want %d/tcp", port.Target, port.Protocol, httpsPort)
		}
		if port.AppProtocol != "https" {
			t.Errorf("app port app_protocol = %q, want https", port.AppProtocol)
		}
		if port.HostIP != "127.0.0.1" {
			t.Errorf("app port is published on %q by default (.env.example), want 127.0.0.1", port.HostIP)
		}
		if port.Published != strconv.Itoa(httpsPort) {
			t.Errorf("app port is published as %q by default, want %d", port.Published, httpsPort)
		}
	}
}

// TestComposeNetworks checks that PostgreSQL and Redis are only on the
// internal network, and that the app is on it and on the one network that
// carries its published port.
func TestComposeNetworks(t *testing.T) {
	p := loadCompose(t)
	backend, ok := p.Networks[backendNet]
	if !ok {
		t.Fatalf("no %s network", backendNet)
	}
	if !backend.Internal {
		t.Errorf("network %s is not internal: true", backendNet)
	}
	for _, name := range []string{"postgres", "redis"} {
		nets := slices.Sorted(func(yield func(string) bool) {
			for n := range p.Services[name].Networks {
				if !yield(n) {
					return
				}
			}
		})
		if !slices.Equal(nets, []string{backendNet}) {
			t.Errorf("%s is on networks %v, want only %s", name, nets, backendNet)
		}
		if len(p.Services[name].Expose) > 0 {
			t.Errorf("%s: expose %v: nothing needs it on an internal network", name, p.Services[name].Expose)
		}
	}
	app := p.Services[appService]
	if _, ok := app.Networks[backendNet]; !ok {
		t.Errorf("app is not on %s: it could not reach PostgreSQL and Redis", backendNet)
	}
	public := 0
	for n := range app.Networks {
		if !p.Networks[n].Internal {
			public++
		}
	}
	if public != 1 {
		t.Errorf("app is on %d non-internal networks, want 1 (for its published port)", public)
	}
}

// TestComposeSecretsAreFiles checks that every secret is a file (not an
// environment variable, inline content or an external store compose
// cannot see) under ./secrets/, that services mount only defined secrets,
// that every /run/secrets path a service names is one it mounts, and that
// the CA's private key is mounted nowhere.
func TestComposeSecretsAreFiles(t *testing.T) {
	p := loadCompose(t)
	secretsDir, _ := filepath.Abs("secrets")
	if len(p.Secrets) == 0 {
		t.Fatal("no top-level secrets")
	}
	for name, s := range p.Secrets {
		switch {
		case s.Environment != "":
			t.Errorf("secret %s comes from the environment variable %s: secrets are files", name, s.Environment)
		case s.Content != "":
			t.Errorf("secret %s has inline content: secrets are files outside the repository", name)
		case s.File == "":
			t.Errorf("secret %s has no file: source", name)
		case filepath.Dir(s.File) != secretsDir:
			t.Errorf("secret %s is %s, want a file in ./secrets/ (git-ignored)", name, s.File)
		case strings.Contains(filepath.Base(s.File), "ca-key"):
			t.Errorf("secret %s mounts the CA's private key: no container needs it", name)
		}
	}
	mountPath := regexp.MustCompile(regexp.QuoteMeta(secretsMount) + `[A-Za-z0-9_.-]+`)
	for _, name := range serviceNames(p) {
		s := p.Services[name]
		mounted := map[string]bool{}
		for _, ref := range s.Secrets {
			if _, ok := p.Secrets[ref.Source]; !ok {
				t.Errorf("%s mounts undefined secret %s", name, ref.Source)
			}
			target := ref.Target
			if target == "" {
				target = ref.Source
			}
			if !strings.HasPrefix(target, "/") {
				target = secretsMount + target
			}
			mounted[target] = true
		}
		// Every /run/secrets/NAME a service names (in its environment,
		// command, entrypoint or health check) must be mounted into it.
		var texts []string
		for _, v := range s.Environment {
			if v != nil {
				texts = append(texts, *v)
			}
		}
		texts = append(texts, s.Command...)
		texts = append(texts, s.Entrypoint...)
		if s.HealthCheck != nil {
			texts = append(texts, s.HealthCheck.Test...)
		}
		for _, text := range texts {
			for _, path := range mountPath.FindAllString(text, -1) {
				if !mounted[path] {
					t.Errorf("%s refers to %s, which is not one of its secrets", name, path)
				}
			}
		}
	}

	app := p.Services[appService]
	if got := app.Environment["APP_SECRETS"]; got == nil || *got != "file:"+strings.TrimSuffix(secretsMount, "/") {
		t.Errorf("app APP_SECRETS = %v, want file:/run/secrets", got)
	}
	appSecrets := map[string]bool{}
	for _, ref := range app.Secrets {
		appSecrets[ref.Source] = true
	}
	// The secrets the app reads by name from APP_SECRETS=file:/run/secrets.
	for _, want := range []string{"cursor_key", "webhook_key", "database_password"} {
		if !appSecrets[want] {
			t.Errorf("app does not mount the secret %s", want)
		}
	}
	pg := p.Services["postgres"]
	if got := pg.Environment["POSTGRES_PASSWORD_FILE"]; got == nil || *got != secretsMount+"database_password" {
		t.Errorf("postgres POSTGRES_PASSWORD_FILE = %v, want %sdatabase_password", got, secretsMount)
	}
}

// TestComposeEnvironmentHoldsNoSecrets checks every service's environment:
// no env_file (it would bring a file's variables in unseen), no variable
// that is a secret (POSTGRES_PASSWORD, APP_SECRET_*, anything named like a
// credential that is not a path to a secret file), and no value that looks
// like one. Commands, entrypoints, health checks, labels and build
// arguments are held to the same rule.
func TestComposeEnvironmentHoldsNoSecrets(t *testing.T) {
	p := loadCompose(t)
	for _, name := range serviceNames(p) {
		s := p.Services[name]
		if len(s.EnvFiles) > 0 {
			t.Errorf("%s has env_file %v: its variables would escape these checks", name, s.EnvFiles)
		}
		for k, v := range s.Environment {
			val := ""
			if v != nil {
				val = *v
			}
			switch {
			case strings.HasPrefix(k, "APP_SECRET_"):
				t.Errorf("%s: %s: the env secret source is for development only; mount a secret file", name, k)
			case k == "APP_SECRETS":
				// The source of secrets, checked above.
			case secretishName.MatchString(k) && !(strings.HasSuffix(k, "_FILE") && strings.HasPrefix(val, secretsMount)):
				t.Errorf("%s: environment %s looks like a secret: pass a file (%s…) instead", name, k, secretsMount)
			}
			if why := secretInValue(val); why != "" {
				t.Errorf("%s: the value of %s holds %s", name, k, why)
			}
		}
		var args []string
		args = append(args, s.Command...)
		args = append(args, s.Entrypoint...)
		if s.HealthCheck != nil {
			args = append(args, s.HealthCheck.Test...)
		}
		for _, v := range s.Labels {
			args = append(args, v)
		}
		if s.Build != nil {
			for k, v := range s.Build.Args {
				if secretishName.MatchString(k) {
					t.Errorf("%s: build argument %s looks like a secret: build arguments stay in the image history", name, k)
				}
				if v != nil {
					args = append(args, *v)
				}
			}
		}
		for _, a := range args {
			if why := secretInValue(a); why != "" {
				t.Errorf("%s: argument %q holds %s", name, a, why)
			}
			if secretishArg.MatchString(a) {
				t.Errorf("%s: argument %q passes a credential on the command line", name, a)
			}
		}
	}
}

// TestComposeImagesPinned checks that every image names an exact version:
// a digest, or a tag with a version number; never latest or no tag. The
// app's own image is built here (pull_policy: build) and tagged with
// RAMPART_VERSION.
func TestComposeImagesPinned(t *testing.T) {
	p := loadCompose(t)
	version := regexp.MustCompile(`^v?\d+\.\d+(\.\d+)?([-.][A-Za-z0-9.]+)?$`)
	for _, name := range serviceNames(p) {
		s := p.Services[name]
		if s.Image == "" {
			t.Errorf("%s has no image", name)
			continue
		}
		ref, err := reference.ParseNormalizedNamed(s.Image)
		if err != nil {
			t.Errorf("%s: image %q does not parse: %v", name, s.Image, err)
			continue
		}
		tagged, hasTag := ref.(reference.Tagged)
		_, hasDigest := ref.(reference.Digested)
		switch {
		case hasTag && tagged.Tag() == "latest":
			t.Errorf("%s: image %s uses latest", name, s.Image)
		case s.Build != nil:
			if !hasTag {
				t.Errorf("%s: the built image %s has no explicit tag", name, s.Image)
			}
			if s.PullPolicy != types.PullPolicyBuild {
				t.Errorf("%s: pull_policy = %q, want build: the image is built from this checkout, never pulled", name, s.PullPolicy)
			}
		case hasDigest:
		case !hasTag:
			t.Errorf("%s: image %s has no tag (that is latest)", name, s.Image)
		case !version.MatchString(strings.SplitN(tagged.Tag(), "-", 2)[0]):
			t.Errorf("%s: image %s: tag %q is not a version (want e.g. 17.10-bookworm) or add a digest", name, s.Image, tagged.Tag())
		case !strings.Contains(tagged.Tag(), "."):
			t.Errorf("%s: image %s: tag %q names only a major version, which moves", name, s.Image, tagged.Tag())
		}
	}
}

// TestComposeHealthAndOrder checks that every service has a working health
// check and that the app waits for PostgreSQL and Redis to be healthy; the
// app's check is the probe that the Dockerfile puts into the image,
// verifying TLS against the compose CA.
func TestComposeHealthAndOrder(t *testing.T) {
	p := loadCompose(t)
	for _, name := range serviceNames(p) {
		hc := p.Services[name].HealthCheck
		switch {
		case hc == nil:
			t.Errorf("%s has no health check", name)
		case hc.Disable || len(hc.Test) < 2 || hc.Test[0] == "NONE":
			t.Errorf("%s: health check is disabled or empty: %v", name, hc.Test)
		case hc.Test[0] != "CMD" && hc.Test[0] != "CMD-SHELL":
			t.Errorf("%s: health check %v is neither CMD nor CMD-SHELL", name, hc.Test)
		case hc.Interval == nil || hc.Timeout == nil || hc.Retries == nil:
			t.Errorf("%s: health check without interval, timeout or retries", name)
		}
	}
	app := p.Services[appService]
	for _, dep := range []string{"postgres", "redis"} {
		d, ok := app.DependsOn[dep]
		if !ok || d.Condition != types.ServiceConditionHealthy {
			t.Errorf("app does not wait for %s to be healthy (depends_on: %+v)", dep, d)
		}
	}
	test := app.HealthCheck.Test
	if test[0] != "CMD" || test[1] != probeInImage {
		t.Fatalf("app health check = %v, want [CMD %s …] (the image has no shell or curl)", test, probeInImage)
	}
	if !slices.Contains(test, "-cacert") || !strings.HasPrefix(test[len(test)-1], "https://127.0.0.1:8443/") {
		t.Errorf("app health check %v: want -cacert and an https URL on port 8443", test)
	}
	if got := finalStageFiles(t); !slices.Contains(got, probeInImage) {
		t.Errorf("the Dockerfile's final stage does not contain %s (it has %v)", probeInImage, got)
	}
}

// TestComposeTLSToBackends checks that the app reaches PostgreSQL with
// sslmode=verify-full against the compose CA and Redis with rediss://, and
// that both servers are set up for TLS only: PostgreSQL with ssl=on and a
// pg_hba.conf that rejects every non-TLS network connection, Redis with its
// plain port off.
func TestComposeTLSToBackends(t *testing.T) {
	p := loadCompose(t)
	env := p.Services[appService].Environment
	get := func(k string) string {
		if v := env[k]; v != nil {
			return *v
		}
		return ""
	}
	db, err := url.Parse(get("APP_DATABASE_URL"))
	if err != nil {
		t.Fatalf("APP_DATABASE_URL does not parse: %v", err)
	}
	if q := db.Query(); q.Get("sslmode") != "verify-full" || !strings.HasPrefix(q.Get("sslrootcert"), secretsMount) {
		t.Errorf("APP_DATABASE_URL: sslmode=%q sslrootcert=%q, want verify-full and the CA under %s", q.Get("sslmode"), q.Get("sslrootcert"), secretsMount)
	}
	if db.Hostname() != "postgres" {
		t.Errorf("APP_DATABASE_URL host = %q, want postgres (the name its certificate is for)", db.Hostname())
	}
	if r, err := url.Parse(get("APP_REDIS_URL")); err != nil || r.Scheme != "rediss" || r.Hostname() != "redis" {
		t.Errorf("APP_REDIS_URL = %q, want rediss://redis:…", get("APP_REDIS_URL"))
	}
	if get("APP_ENV") != "production" {
		t.Errorf("APP_ENV = %q, want production", get("APP_ENV"))
	}

	pg := p.Services["postgres"]
	args := strings.Join(pg.Command, " ")
	for _, want := range []string{"ssl=on", "ssl_cert_file=" + secretsMount, "ssl_key_file=", "ssl_min_protocol_version=TLSv1.2", "hba_file="} {
		if !strings.Contains(args, want) {
			t.Errorf("postgres command lacks %q: %s", want, args)
		}
	}
	var hba string
	for _, c := range pg.Configs {
		if strings.HasSuffix(c.Target, "pg_hba.conf") {
			hba = p.Configs[c.Source].File
		}
	}
	if hba == "" || !strings.Contains(args, "hba_file=/etc/postgresql/pg_hba.conf") {
		t.Fatalf("postgres: pg_hba.conf is not mounted at the hba_file it is started with")
	}
	checkHBA(t, hba)

	redisArgs := p.Services["redis"].Command
	if i := slices.Index(redisArgs, "--port"); i < 0 || redisArgs[i+1] != "0" {
		t.Errorf("redis: the plain port is not off (--port 0): %v", redisArgs)
	}
	if !slices.Contains(redisArgs, "--tls-port") || !slices.Contains(redisArgs, "--tls-cert-file") {
		t.Errorf("redis: no TLS port: %v", redisArgs)
	}
}

// checkHBA reads a pg_hba.conf and fails unless every network entry
// requires TLS (hostssl) or rejects (hostnossl … reject), and the socket
// entries stay inside the container.
func checkHBA(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sawSSL, sawReject := false, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		method := fields[len(fields)-1]
		switch fields[0] {
		case "local":
		case "hostssl":
			sawSSL = true
			if method != "scram-sha-256" && method != "cert" && method != "reject" {
				t.Errorf("pg_hba.conf: %q: a network login must use scram-sha-256 or a certificate", sc.Text())
			}
		case "hostnossl":
			if method != "reject" {
				t.Errorf("pg_hba.conf: %q: connections without TLS must be rejected", sc.Text())
			}
			sawReject = true
		default:
			t.Errorf("pg_hba.conf: %q: only local, hostssl and hostnossl … reject entries are allowed", sc.Text())
		}
	}
	if !sawSSL || !sawReject {
		t.Errorf("pg_hba.conf: want a hostssl entry and a hostnossl … reject entry")
	}
}

// TestEnvExample checks .env.example: placeholders and defaults only, no
// variable named like a secret, no value that looks like one, and every
// variable docker-compose.yml interpolates is listed there.
func TestEnvExample(t *testing.T) {
	raw, err := os.ReadFile(envExample)
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for i, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Errorf("%s:%d: not NAME=value: %q", envExample, i+1, line)
			continue
		}
		listed[k] = true
		if secretishName.MatchString(k) {
			t.Errorf("%s:%d: %s is named like a secret: secrets are files under ./secrets/", envExample, i+1, k)
		}
		if why := secretInValue(v); why != "" {
			t.Errorf("%s:%d: the value of %s holds %s", envExample, i+1, k, why)
		}
	}
	compose, err := os.ReadFile(composeFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`\$\{([A-Z0-9_]+)`).FindAllStringSubmatch(string(compose), -1) {
		if !listed[m[1]] {
			t.Errorf("%s uses ${%s}, which %s does not list", composeFile, m[1], envExample)
		}
	}
}

// TestIgnoredFiles checks that git and the Docker build context both leave
// out runtime data, secret files, keys and env files, using git itself and
// Docker's own .dockerignore matcher.
func TestIgnoredFiles(t *testing.T) {
	private := []string{
		"data/rampart.db", "data/dev-secrets/cursor_key", "data/tls/dev-ca-key.pem",
		"secrets/cursor_key", "secrets/database_password", "secrets/app-key.pem", "secrets/ca-key.pem",
		".env", ".env.local", "production.env", "server.key", "certs/server.pem", "client.p12",
	}
	needed := []string{"go.mod", "go.sum", "main.go", "app/serve.go", "migrations/postgres", "templates", "scripts/healthcheck/main.go"}

	if _, err := exec.LookPath("git"); err != nil {
		t.Fatal("git is not installed")
	}
	for _, path := range private {
		out, err := exec.Command("git", "check-ignore", "--no-index", "-q", path).CombinedOutput()
		if err != nil {
			t.Errorf(".gitignore does not keep %s out of git (git check-ignore: %v %s)", path, err, out)
		}
	}
	if err := exec.Command("git", "check-ignore", "--no-index", "-q", envExample).Run(); err == nil {
		t.Errorf(".gitignore ignores %s, which must be committed", envExample)
	}

	f, err := os.Open(dockerignore)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range append(private, ".git/config", ".git") {
		if ok, err := pm.MatchesOrParentMatches(path); err != nil || !ok {
			t.Errorf(".dockerignore lets %s into the build context", path)
		}
	}
	for _, path := range needed {
		if ok, err := pm.MatchesOrParentMatches(path); err != nil || ok {
			t.Errorf(".dockerignore keeps %s out of the build context, which the build needs", path)
		}
	}
}

// dockerfileStage is one FROM … of the Dockerfile and its instructions.
type dockerfileStage struct {
	base, name string
	nodes      []*parser.Node
}

// parseDockerfile parses the Dockerfile with BuildKit's parser and splits
// it into stages.
func parseDockerfile(tb testing.TB) []dockerfileStage {
	tb.Helper()
	f, err := os.Open(dockerfile)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	res, err := parser.Parse(f)
	if err != nil {
		tb.Fatalf("%s does not parse: %v", dockerfile, err)
	}
	for _, w := range res.Warnings {
		tb.Errorf("%s: parser warning: %s", dockerfile, w.Short)
	}
	var stages []dockerfileStage
	for _, n := range res.AST.Children {
		// The parser keeps the instruction as written; compare in lower case.
		n.Value = strings.ToLower(n.Value)
		if n.Value == "from" {
			st := dockerfileStage{}
			if n.Next != nil {
				st.base = n.Next.Value
				if as := n.Next.Next; as != nil && strings.EqualFold(as.Value, "as") && as.Next != nil {
					st.name = as.Next.Value
				}
			}
			stages = append(stages, st)
			continue
		}
		if len(stages) == 0 {
			if n.Value != "arg" {
				tb.Errorf("%s: %s before the first FROM", dockerfile, n.Original)
			}
			continue
		}
		stages[len(stages)-1].nodes = append(stages[len(stages)-1].nodes, n)
	}
	if len(stages) == 0 {
		tb.Fatalf("%s has no FROM", dockerfile)
	}
	return stages
}

// args returns the values of an instruction's arguments.
func args(n *parser.Node) []string {
	var out []string
	for a := n.Next; a != nil; a = a.Next {
		out = append(out, a.Value)
	}
	return out
}

// finalStageFiles returns the destinations of the final stage's COPY
// instructions.
func finalStageFiles(tb testing.TB) []string {
	tb.Helper()
	stages := parseDockerfile(tb)
	var dst []string
	for _, n := range stages[len(stages)-1].nodes {
		if n.Value == "copy" {
			a := args(n)
			dst = append(dst, a[len(a)-1])
		}
	}
	return dst
}

// TestDockerfile checks the image recipe: several stages, every base image
// pinned (a version tag, and the runtime one a digest), a static Go build
// (CGO_ENABLED=0, -trimpath, the version by -ldflags), a final stage that
// takes only the built files from the build stage, runs as a numeric
// non-root user, exposes only 8443 and starts the server in exec form; and
// no ARG or ENV anywhere that holds or is named like a secret.
func TestDockerfile(t *testing.T) {
	stages := parseDockerfile(t)
	if len(stages) < 2 {
		t.Fatalf("%s has %d stage(s), want a build stage and a runtime stage", dockerfile, len(stages))
	}
	names := map[string]bool{}
	for i, st := range stages {
		if names[st.base] {
			continue // FROM an earlier stage
		}
		if st.name != "" {
			names[st.name] = true
		}
		if strings.Contains(st.base, "$") {
			t.Errorf("stage %d: FROM %s: a base image from a build argument is not pinned", i, st.base)
			continue
		}
		ref, err := reference.ParseNormalizedNamed(st.base)
		if err != nil {
			t.Errorf("stage %d: FROM %s does not parse: %v", i, st.base, err)
			continue
		}
		tagged, hasTag := ref.(reference.Tagged)
		_, hasDigest := ref.(reference.Digested)
		switch {
		case hasTag && tagged.Tag() == "latest":
			t.Errorf("stage %d: FROM %s uses latest", i, st.base)
		case i == len(stages)-1 && !hasDigest:
			t.Errorf("final stage: FROM %s is not pinned by digest", st.base)
		case !hasDigest && (!hasTag || !regexp.MustCompile(`^\d+\.\d+\.\d+`).MatchString(tagged.Tag())):
			t.Errorf("stage %d: FROM %s: want an exact version tag (e.g. 1.26.10-bookworm) or a digest", i, st.base)
		}
	}

	// No secret in any build argument or environment variable, in any
	// stage: both stay in the image's history.
	for _, st := range stages {
		for _, n := range st.nodes {
			switch n.Value {
			case "arg":
				for _, a := range args(n) {
					k, v, _ := strings.Cut(a, "=")
					if secretishName.MatchString(k) {
						t.Errorf("ARG %s is named like a secret: build arguments stay in the image history", k)
					}
					if why := secretInValue(v); why != "" {
						t.Errorf("ARG %s: its default holds %s", k, why)
					}
				}
			case "env":
				a := args(n)
				for i := 0; i+1 < len(a); i += 2 {
					if secretishName.MatchString(a[i]) {
						t.Errorf("ENV %s is named like a secret: image environment is readable by anyone with the image", a[i])
					}
					if why := secretInValue(a[i+1]); why != "" {
						t.Errorf("ENV %s holds %s", a[i], why)
					}
				}
			case "add":
				t.Errorf("%s: use COPY: ADD fetches URLs and unpacks archives", n.Original)
			case "run":
				for _, fl := range n.Flags {
					if strings.Contains(fl, "type=secret") {
						t.Errorf("%s: a build secret: the image needs none", n.Original)
					}
				}
			}
		}
	}

	build := stages[0]
	cgoOff, sawBuild := false, false
	for _, n := range build.nodes {
		switch n.Value {
		case "env":
			a := args(n)
			for i := 0; i+1 < len(a); i += 2 {
				if a[i] == "CGO_ENABLED" {
					cgoOff = a[i+1] == "0"
				}
			}
		case "run":
			cmd := strings.Join(args(n), " ")
			if strings.Contains(cmd, "CGO_ENABLED=1") {
				t.Errorf("%s turns cgo on", n.Original)
			}
			if strings.Contains(cmd, "go build") {
				sawBuild = true
				for _, want := range []string{"-trimpath", "-ldflags", "app.Version=${VERSION}", "-o /out/rampart ."} {
					if !strings.Contains(cmd, want) {
						t.Errorf("the go build lacks %q: %s", want, cmd)
					}
				}
			}
		}
	}
	if !cgoOff {
		t.Error("the build stage does not set ENV CGO_ENABLED=0: the binary must be static for the distroless image")
	}
	if !sawBuild {
		t.Error("the build stage runs no go build")
	}

	final := stages[len(stages)-1]
	user := ""
	var exposed []string
	var entrypoint *parser.Node
	for _, n := range final.nodes {
		switch n.Value {
		case "user":
			user = args(n)[0]
		case "expose":
			exposed = append(exposed, args(n)...)
		case "entrypoint":
			entrypoint = n
		case "copy":
			from := ""
			for _, fl := range n.Flags {
				if v, ok := strings.CutPrefix(fl, "--from="); ok {
					from = v
				}
			}
			if !names[from] {
				t.Errorf("final stage: %s: copy only built files from a build stage, never from the build context", n.Original)
			}
		case "run":
			t.Errorf("final stage: %s: the runtime image has no shell to run it", n.Original)
		}
	}
	if !nonRootUser(user) {
		t.Errorf("final stage USER = %q, want a numeric non-root uid:gid", user)
	}
	if !slices.Equal(exposed, []string{strconv.Itoa(httpsPort)}) && !slices.Equal(exposed, []string{strconv.Itoa(httpsPort) + "/tcp"}) {
		t.Errorf("final stage EXPOSE %v, want only %d", exposed, httpsPort)
	}
	if entrypoint == nil || !entrypoint.Attributes["json"] || args(entrypoint)[0] != serverInImage {
		t.Errorf("final stage: want ENTRYPOINT [%q] in exec form", serverInImage)
	}
	if !strings.Contains(final.base, "distroless") {
		t.Errorf("final stage FROM %s: want a distroless (no shell, no package manager) image", final.base)
	}
}
