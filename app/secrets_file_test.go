package app

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/rampart-go/rampart/models"
)

// counterValue returns the value of a counter.
func counterValue(tb testing.TB, c prometheus.Counter) float64 {
	tb.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		tb.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// writeSecret writes the secret file dir/name the way a secret mount
// changes: a new file put in place at once.
func writeSecret(tb testing.TB, dir, name, value string) {
	tb.Helper()
	if err := writeFileAtomic(filepath.Join(dir, name), []byte(value+"\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
}

// TestFileSecretsSource: DIR/NAME is the current value, DIR/NAME.previous
// the one before the rotation. A rotation is new file content; the store
// puts it to use on its next refresh and logs and counts it.
func TestFileSecretsSource(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	oldKey, newKey, newerKey := randomKey(t, 32), randomKey(t, 32), randomKey(t, 32)
	writeSecret(t, dir, cursorKeyName, b64(oldKey))
	logs := &syncBuffer{}
	cfg := Config{Env: EnvProduction, DataDir: t.TempDir(), Secrets: SecretsSource{Kind: SecretsFile, Dir: dir}, SecretsRefresh: time.Hour}
	store := newSecretStore(fileSource{dir: dir}, cfg, newLogger(logs, "info"))

	ring, err := store.keyRing(ctx, cursorKeyName, models.CursorKeyMinLength)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ring.Current().RevealBytes(), oldKey) || !ring.Previous().IsZero() {
		t.Fatal("the ring does not hold the file's key alone")
	}

	// Rotation: the new key in NAME, the old one in NAME.previous.
	writeSecret(t, dir, cursorKeyName+".previous", b64(oldKey))
	writeSecret(t, dir, cursorKeyName, b64(newKey))
	store.Refresh(ctx)
	if !bytes.Equal(ring.Current().RevealBytes(), newKey) || !bytes.Equal(ring.Previous().RevealBytes(), oldKey) {
		t.Fatal("after the rotation the ring does not hold NAME and NAME.previous")
	}
	// Without NAME.previous the old key is no longer accepted.
	writeSecret(t, dir, cursorKeyName+".previous", b64(newKey))
	writeSecret(t, dir, cursorKeyName, b64(newerKey))
	store.Refresh(ctx)
	if !bytes.Equal(ring.Current().RevealBytes(), newerKey) || !bytes.Equal(ring.Previous().RevealBytes(), newKey) {
		t.Fatal("a second rotation is not picked up")
	}
	if got := counterValue(t, store.rotations.WithLabelValues(cursorKeyName)); got != 2 {
		t.Errorf("rampart_secret_rotations_total = %v, want 2", got)
	}

	// A removed file, or a weak value: the keys in use stay.
	if err := os.Remove(filepath.Join(dir, cursorKeyName)); err != nil {
		t.Fatal(err)
	}
	store.Refresh(ctx)
	writeSecret(t, dir, cursorKeyName, b64(randomKey(t, 16)))
	store.Refresh(ctx)
	// A weak previous key is left out with a warning; the current one
	// still rotates in.
	writeSecret(t, dir, cursorKeyName+".previous", "changeme")
	writeSecret(t, dir, cursorKeyName, b64(oldKey))
	store.Refresh(ctx)
	if !bytes.Equal(ring.Current().RevealBytes(), oldKey) || !ring.Previous().IsZero() {
		t.Error("a weak previous key was kept, or the current key not rotated in")
	}
	if got := counterValue(t, store.failures.WithLabelValues(cursorKeyName)); got != 2 {
		t.Errorf("rampart_secret_refresh_failures_total = %v, want 2 (the missing file, the weak key)", got)
	}
	out := logs.String()
	for _, w := range []string{`"secret rotated"`, "missing", "weak", "previous version"} {
		if !strings.Contains(out, w) {
			t.Errorf("the log does not say %q:\n%s", w, out)
		}
	}
	for _, key := range [][]byte{oldKey, newKey, newerKey} {
		if strings.Contains(out, b64(key)) {
			t.Errorf("the log shows a key:\n%s", out)
		}
	}
}

// TestServeRotatesFileSecret is TestServeRotatesAWSSecret with a secrets
// folder: the new key is written to cursor_key, the old one to
// cursor_key.previous, and the running server picks both up.
func TestServeRotatesFileSecret(t *testing.T) {
	for _, d := range []models.Dialect{models.SQLite, models.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			dir := t.TempDir()
			oldKey, newKey := randomKey(t, 32), randomKey(t, 32)
			writeSecret(t, dir, cursorKeyName, b64(oldKey))
			env := dialectVars(t, d)
			env["APP_SECRETS"] = "file:" + dir
			env["APP_SECRETS_REFRESH"] = "1s"
			run := startServeWith(t, env, nil)
			testCursorRotation(t, run, oldKey, newKey, func() {
				writeSecret(t, dir, cursorKeyName+".previous", b64(oldKey))
				writeSecret(t, dir, cursorKeyName, b64(newKey))
			})
		})
	}
}
