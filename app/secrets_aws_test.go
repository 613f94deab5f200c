package app

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/sivchari/kumo"

	"github.com/rampart-go/rampart/models"
)

// kumoSecrets is kumo, a local AWS emulator written in Go, running in the
// test process, with an SDK client of its Secrets Manager. Its storage is
// shared by every server in the process, so each test names its secrets
// after itself.
type kumoSecrets struct {
	url    string
	client *secretsmanager.Client
}

// Made-up credentials for the emulator, which does not check them.
const (
	kumoRegion    = "eu-west-1"
	kumoAccessKey = "kumo-test-access"
	kumoSecretKey = "kumo-test-secret"
)

func startKumo(tb testing.TB) *kumoSecrets {
	tb.Helper()
	srv := kumo.NewServer()
	tb.Cleanup(srv.Close)
	client := secretsmanager.New(secretsmanager.Options{
		Region:       kumoRegion,
		BaseEndpoint: aws.String(srv.URL),
		Credentials:  credentials.NewStaticCredentialsProvider(kumoAccessKey, kumoSecretKey, ""),
	})
	return &kumoSecrets{url: srv.URL, client: client}
}

// vars is the environment that points the app's AWS configuration chain
// at the emulator.
func (k *kumoSecrets) vars() vars {
	return vars{
		"AWS_ENDPOINT_URL":      k.url,
		"AWS_REGION":            kumoRegion,
		"AWS_ACCESS_KEY_ID":     kumoAccessKey,
		"AWS_SECRET_ACCESS_KEY": kumoSecretKey,
	}
}

// create makes a secret named after the test holding fields as JSON, and
// returns its name.
func (k *kumoSecrets) create(tb testing.TB, fields map[string]string) string {
	tb.Helper()
	name := fmt.Sprintf("rampart/%s/%d", strings.NewReplacer("/", "-", " ", "-").Replace(tb.Name()), time.Now().UnixNano())
	_, err := k.client.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{
		Name: aws.String(name), SecretString: aws.String(jsonFields(tb, fields)),
	})
	if err != nil {
		tb.Fatalf("CreateSecret: %v", err)
	}
	return name
}

// put stores a new version of the secret name (a rotation: it becomes
// AWSCURRENT, the version before it AWSPREVIOUS).
func (k *kumoSecrets) put(tb testing.TB, name, value string) {
	tb.Helper()
	_, err := k.client.PutSecretValue(context.Background(), &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(name), SecretString: aws.String(value),
	})
	if err != nil {
		tb.Fatalf("PutSecretValue: %v", err)
	}
}

func jsonFields(tb testing.TB, fields map[string]string) string {
	tb.Helper()
	b, err := json.Marshal(fields)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

func b64(key []byte) string { return base64.StdEncoding.EncodeToString(key) }

// awsStore returns a store over the emulator's secret name, with its log
// written to logs.
func (k *kumoSecrets) store(tb testing.TB, env, name string, logs *syncBuffer) *SecretStore {
	tb.Helper()
	cfg := Config{Env: env, DataDir: tb.TempDir(), Secrets: SecretsSource{Kind: SecretsAWS, ID: name}, SecretsRefresh: time.Hour}
	src, err := newSecretSource(context.Background(), cfg, k.vars().get)
	if err != nil {
		tb.Fatal(err)
	}
	src.(*awsSource).coalesce = 0 // every Get reads the emulator
	return newSecretStore(src, cfg, newLogger(logs, "info"))
}

// TestAWSSecretsManagerSource reads a JSON secret through the SDK from
// the emulator, then rotates it with PutSecretValue: the key ring picks up
// the new AWSCURRENT key and keeps AWSPREVIOUS as the previous one, the
// rotation is logged by name and counted, and a new value that breaks the
// key rules is refused while the old keys stay in use.
func TestAWSSecretsManagerSource(t *testing.T) {
	k := startKumo(t)
	ctx := context.Background()
	oldKey, newKey := randomKey(t, 32), randomKey(t, 32)
	name := k.create(t, map[string]string{cursorKeyName: b64(oldKey), alertWebhookKeyName: b64(randomKey(t, 32))})
	logs := &syncBuffer{}
	store := k.store(t, EnvProduction, name, logs)

	ring, err := store.keyRing(ctx, cursorKeyName, models.CursorKeyMinLength)
	if err != nil {
		t.Fatalf("keyRing: %v", err)
	}
	if !bytes.Equal(ring.Current().RevealBytes(), oldKey) || !ring.Previous().IsZero() {
		t.Fatal("the ring does not hold the secret's key alone")
	}
	if _, err := store.Get(ctx, databasePasswordName); !errors.Is(err, errSecretMissing) {
		t.Errorf("a name the JSON does not have: %v, want errSecretMissing", err)
	}

	k.put(t, name, jsonFields(t, map[string]string{cursorKeyName: b64(newKey)}))
	store.Refresh(ctx)
	if !bytes.Equal(ring.Current().RevealBytes(), newKey) || !bytes.Equal(ring.Previous().RevealBytes(), oldKey) {
		t.Fatal("after PutSecretValue the ring does not hold AWSCURRENT and AWSPREVIOUS")
	}
	if got := counterValue(t, store.rotations.WithLabelValues(cursorKeyName)); got != 1 {
		t.Errorf("rampart_secret_rotations_total{secret=cursor_key} = %v, want 1", got)
	}
	if !strings.Contains(logs.String(), `"msg":"secret rotated"`) || !strings.Contains(logs.String(), `"secret_name":"cursor_key"`) {
		t.Errorf("the rotation is not logged by name:\n%s", logs)
	}
	for _, key := range [][]byte{oldKey, newKey} {
		if strings.Contains(logs.String(), b64(key)) {
			t.Errorf("the log shows a key:\n%s", logs)
		}
	}

	// A value that breaks the rules is refused; both keys stay.
	kumoPutAndRefresh := func(value string) {
		t.Helper()
		k.put(t, name, value)
		store.Refresh(ctx)
		if !bytes.Equal(ring.Current().RevealBytes(), newKey) {
			t.Errorf("the ring took a refused value")
		}
	}
	kumoPutAndRefresh(jsonFields(t, map[string]string{cursorKeyName: "change-me"}))
	if got := counterValue(t, store.failures.WithLabelValues(cursorKeyName)); got != 1 {
		t.Errorf("rampart_secret_refresh_failures_total{secret=cursor_key} = %v, want 1", got)
	}
	if !strings.Contains(logs.String(), "known default or placeholder") || strings.Contains(logs.String(), "change-me") {
		t.Errorf("the refusal is not logged with its rule, or shows the value:\n%s", logs)
	}
	// A secret that is no longer JSON, or lost the key: the source fails,
	// the cached keys stay in use.
	kumoPutAndRefresh("not json " + b64(newKey))
	kumoPutAndRefresh(jsonFields(t, map[string]string{"other": "x"}))
	if strings.Contains(logs.String(), b64(newKey)) {
		t.Errorf("the log shows the value of a secret that is not JSON:\n%s", logs)
	}
	if got := counterValue(t, store.failures.WithLabelValues(cursorKeyName)); got != 3 {
		t.Errorf("rampart_secret_refresh_failures_total{secret=cursor_key} = %v, want 3", got)
	}
}

func TestAWSSecretsManagerSourceErrors(t *testing.T) {
	k := startKumo(t)
	ctx := context.Background()
	get := func(t *testing.T, secret, name string) error {
		t.Helper()
		cfg := Config{Env: EnvDevelopment, Secrets: SecretsSource{Kind: SecretsAWS, ID: secret}}
		src, err := newSecretSource(ctx, cfg, k.vars().get)
		if err != nil {
			t.Fatal(err)
		}
		_, err = src.Get(ctx, name)
		return err
	}

	t.Run("no such secret", func(t *testing.T) {
		err := get(t, "rampart/does-not-exist", cursorKeyName)
		if err == nil || errors.Is(err, errSecretMissing) || !strings.Contains(err.Error(), "rampart/does-not-exist") {
			t.Errorf("error %v, want a read error naming the secret (not a missing key)", err)
		}
	})
	t.Run("not a JSON object of strings", func(t *testing.T) {
		for _, value := range []string{"s3cr3t-value-not-json", `["s3cr3t-value"]`, `{"cursor_key": 42}`, `{"a":"s3cr3t-value"} {}`} {
			name := k.create(t, map[string]string{"placeholder": "x"})
			k.put(t, name, value)
			err := get(t, name, cursorKeyName)
			if err == nil || !strings.Contains(err.Error(), name) {
				t.Errorf("%s: error %v, want one naming the secret", value, err)
			} else if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("the error shows the value: %v", err)
			}
		}
	})
	t.Run("no region", func(t *testing.T) {
		cfg := Config{Env: EnvDevelopment, Secrets: SecretsSource{Kind: SecretsAWS, ID: "rampart"}}
		v := k.vars().with("AWS_REGION", "")
		if _, err := newSecretSource(ctx, cfg, v.get); err != nil && !strings.Contains(err.Error(), "AWS_REGION") {
			t.Errorf("error %v does not say AWS_REGION", err)
		}
		// An ARN names its region.
		cfg.Secrets.ID = "arn:aws:secretsmanager:eu-central-1:123456789012:secret:rampart-AbCdEf"
		src, err := newSecretSource(ctx, cfg, v.get)
		if err != nil {
			t.Fatalf("with an ARN: %v", err)
		}
		if got := src.(*awsSource).client.(*secretsmanager.Client).Options().Region; got != "eu-central-1" {
			t.Errorf("region %q, want the ARN's eu-central-1", got)
		}
	})
	t.Run("plain-HTTP endpoint in production", func(t *testing.T) {
		cfg := Config{Env: EnvProduction, Secrets: SecretsSource{Kind: SecretsAWS, ID: "rampart"}}
		for endpoint, ok := range map[string]bool{
			"http://secrets.internal.example:4566": false,
			"https://secrets.internal.example":     true,
			"http://127.0.0.1:4566":                true,
			"http://localhost:4566":                true,
			"ftp://secrets.example":                false,
			"https://user:pw@secrets.example":      false,
		} {
			_, err := newSecretSource(ctx, cfg, k.vars().with("AWS_ENDPOINT_URL", endpoint).get)
			if (err == nil) != ok || (err != nil && !strings.Contains(err.Error(), "AWS_ENDPOINT_URL")) {
				t.Errorf("%s: %v, want accepted=%v", endpoint, err, ok)
			}
		}
	})
}

// TestServeRotatesAWSSecret runs the whole server with its secrets in the
// emulator, refreshed every second, on SQLite and PostgreSQL. It reads a
// page cursor, rotates cursor_key with PutSecretValue, and waits until the
// running server signs cursors with the new key; the cursor made before
// the rotation still works, one signed with an unknown key does not.
func TestServeRotatesAWSSecret(t *testing.T) {
	for _, d := range []models.Dialect{models.SQLite, models.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			k := startKumo(t)
			oldKey, newKey := randomKey(t, 32), randomKey(t, 32)
			name := k.create(t, map[string]string{cursorKeyName: b64(oldKey)})
			env := dialectVars(t, d)
			for key, v := range k.vars() {
				env[key] = v
			}
			env["APP_SECRETS"] = "aws-secretsmanager:" + name
			env["APP_SECRETS_REFRESH"] = "1s"
			run := startServeWith(t, env, nil)
			testCursorRotation(t, run, oldKey, newKey, func() {
				k.put(t, name, jsonFields(t, map[string]string{cursorKeyName: b64(newKey)}))
			})
		})
	}
}

// testCursorRotation signs up on run, lists projects a page at a time,
// calls rotate (which must make newKey current and keep oldKey as the
// previous key), and checks that the server picks the new key up without
// a restart while the cursor signed before still decodes.
func testCursorRotation(t *testing.T, run *serveRun, oldKey, newKey []byte, rotate func()) {
	t.Helper()
	token, userID := signUp(t, run, "rotate@example.com")
	for i := range 3 {
		body := fmt.Sprintf(`{"name":"Project %d","description":"rotation"}`, i)
		if code := run.call(t, http.MethodPost, "/v1/projects", token, body, nil); code != http.StatusCreated {
			t.Fatalf("create project: %d", code)
		}
	}
	scope := "projects:" + userID
	firstPage := func() string {
		t.Helper()
		var page struct {
			NextCursor string `json:"next_cursor"`
		}
		if code := run.call(t, http.MethodGet, "/v1/projects?limit=1", token, "", &page); code != http.StatusOK || page.NextCursor == "" {
			t.Fatalf("first page: %d, cursor %q", code, page.NextCursor)
		}
		return page.NextCursor
	}
	before := firstPage()
	after := cursorPosition(t, before)
	if before != cursorWith(t, oldKey, scope, after) {
		t.Fatal("the server does not sign cursors with the secret's key")
	}

	rotate()
	want := cursorWith(t, newKey, scope, after)
	deadline := time.Now().Add(hangGuard)
	for firstPage() != want {
		if time.Now().After(deadline) {
			t.Fatalf("the server never signed with the rotated key:\n%s", run.output)
		}
		time.Sleep(100 * time.Millisecond)
	}

	for what, cursor := range map[string]string{"made before the rotation": before, "made after it": want} {
		var page struct {
			Items []struct{ Name string } `json:"items"`
		}
		code := run.call(t, http.MethodGet, "/v1/projects?limit=1&cursor="+url.QueryEscape(cursor), token, "", &page)
		if code != http.StatusOK || len(page.Items) != 1 {
			t.Errorf("the cursor %s: %d, %d items", what, code, len(page.Items))
		}
	}
	forged := cursorWith(t, randomKey(t, 32), scope, after)
	if code := run.call(t, http.MethodGet, "/v1/projects?limit=1&cursor="+url.QueryEscape(forged), token, "", nil); code != http.StatusBadRequest {
		t.Errorf("a cursor signed with a key the server never had: %d, want 400", code)
	}

	out := run.output.String()
	if !strings.Contains(out, `"msg":"secret rotated"`) || !strings.Contains(out, `"secret_name":"cursor_key"`) {
		t.Errorf("the rotation is not logged:\n%s", out)
	}
	for _, key := range [][]byte{oldKey, newKey} {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawURLEncoding} {
			if strings.Contains(out, enc.EncodeToString(key)) {
				t.Errorf("the log shows a key")
			}
		}
	}
}

// signUp registers and logs in email on run and returns the token and the
// user's id.
func signUp(t *testing.T, run *serveRun, email string) (token, userID string) {
	t.Helper()
	var user struct{ ID string }
	if code := run.call(t, http.MethodPost, "/v1/auth/register", "", registerBody(email), &user); code != http.StatusCreated {
		t.Fatalf("register: %d", code)
	}
	var login struct {
		Token string `json:"token"`
	}
	body := fmt.Sprintf(`{"email":%q,"password":%q}`, email, servePassword)
	if code := run.call(t, http.MethodPost, "/v1/auth/login", "", body, &login); code != http.StatusOK || login.Token == "" {
		t.Fatalf("login: %d", code)
	}
	return login.Token, user.ID
}

// cursorPosition reads the list position out of a cursor (its bytes 1 to
// 8; the MAC follows).
func cursorPosition(t *testing.T, cursor string) int64 {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil || len(b) < 9 {
		t.Fatalf("cursor %q: %v", cursor, err)
	}
	return int64(binary.BigEndian.Uint64(b[1:9]))
}

// cursorWith is the cursor that a codec with key makes.
func cursorWith(t *testing.T, key []byte, scope string, after int64) string {
	t.Helper()
	c, err := models.NewCursorCodec(key)
	if err != nil {
		t.Fatal(err)
	}
	return c.Encode(scope, after)
}

// TestProductionRefusesDefaultSecrets: a production start with a secret
// that is a known default, too short or missing fails before anything is
// opened, and the message names the secret and the rule, never the value;
// for the file source and Secrets Manager alike.
func TestProductionRefusesDefaultSecrets(t *testing.T) {
	k := startKumo(t)
	goodKey := b64(randomKey(t, 32))
	sealKey := b64(randomKey(t, 32))
	// The webhook key is read after the certificate and the database are
	// opened: those must be usable in production.
	certFile, keyFile := newTestCA(t).issue(t, t.TempDir())
	webhookVars := vars{
		"APP_ALERT_WEBHOOK_URL": "https://alerts.example.com/hook",
		"APP_TLS_CERT_FILE":     certFile, "APP_TLS_KEY_FILE": keyFile,
		"APP_DATABASE_URL": "sqlite:" + filepath.Join(nonTempDir(t), "rampart.db"),
	}
	tests := []struct {
		what   string
		fields map[string]string
		extra  vars
		want   []string
	}{
		{"a placeholder cursor key", map[string]string{cursorKeyName: "change-me"}, nil,
			[]string{"cursor_key", "known default or placeholder"}},
		{"a cursor key of 16 bytes", map[string]string{cursorKeyName: b64(randomKey(t, 16))}, nil,
			[]string{"cursor_key", "at least 32 random bytes"}},
		{"no cursor key", map[string]string{alertWebhookKeyName: goodKey}, nil,
			[]string{"cursor_key", "missing"}},
		{"a placeholder webhook key", map[string]string{cursorKeyName: goodKey, webhookKeyName: "change-me"}, nil,
			[]string{"webhook_key", "known default or placeholder"}},
		{"no webhook key", map[string]string{cursorKeyName: goodKey}, nil,
			[]string{"webhook_key", "missing"}},
		{"a placeholder database password", map[string]string{cursorKeyName: goodKey, webhookKeyName: sealKey, databasePasswordName: "changeme"},
			vars{"APP_DATABASE_URL": "postgres://rampart@127.0.0.1:1/rampart?sslmode=disable"},
			[]string{"database_password", "known default or placeholder"}},
		{"a short database password", map[string]string{cursorKeyName: goodKey, webhookKeyName: sealKey, databasePasswordName: "Xy7!kQ2"},
			vars{"APP_DATABASE_URL": "postgres://rampart@127.0.0.1:1/rampart?sslmode=disable"},
			[]string{"database_password", "shorter than 16"}},
		{"a placeholder alert webhook key", map[string]string{cursorKeyName: goodKey, webhookKeyName: sealKey, alertWebhookKeyName: "your-secret-here"},
			webhookVars, []string{"alert_webhook_key", "known default or placeholder"}},
	}
	for _, tt := range tests {
		sources := map[string]func(t *testing.T) vars{
			"aws-secretsmanager": func(t *testing.T) vars {
				return k.vars().with("APP_SECRETS", "aws-secretsmanager:"+k.create(t, tt.fields))
			},
			"file": func(t *testing.T) vars {
				dir := t.TempDir()
				for name, value := range tt.fields {
					writeSecret(t, dir, name, value)
				}
				return vars{"APP_SECRETS": "file:" + dir}
			},
		}
		for source, secretVars := range sources {
			t.Run(tt.what+"/"+source, func(t *testing.T) {
				v := productionVars().with("APP_DATA_DIR", t.TempDir(), "APP_ADDR", "127.0.0.1:"+itoa(freePort(t)), "APP_METRICS_ADDR", "off")
				for key, val := range secretVars(t) {
					v[key] = val
				}
				for key, val := range tt.extra {
					v[key] = val
				}
				res := runCLI(t, v, "")
				if res.code != exitFail {
					t.Fatalf("exit %d, want %d; stderr %q", res.code, exitFail, res.stderr)
				}
				for _, w := range tt.want {
					if !strings.Contains(res.stderr, w) {
						t.Errorf("stderr %q does not say %q", res.stderr, w)
					}
				}
				for _, value := range tt.fields {
					if strings.Contains(res.stderr+res.stdout, value) {
						t.Errorf("the output shows a secret value:\n%s\n%s", res.stderr, res.stdout)
					}
				}
			})
		}
	}
}
