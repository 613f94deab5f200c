package app

import (
	"context"
	"encoding/base64"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rampart-go/rampart/middleware"
	"github.com/rampart-go/rampart/models"
)

// anomalyNames lists every variable of the anomaly rules.
var anomalyNames = []string{
	"APP_ANOMALY_SCRAPE_OBJECTS", "APP_ANOMALY_SCRAPE_WINDOW",
	"APP_ANOMALY_KEY_SPIKE_FACTOR", "APP_ANOMALY_KEY_SPIKE_BUCKET", "APP_ANOMALY_KEY_SPIKE_BASELINE", "APP_ANOMALY_KEY_SPIKE_MIN",
	"APP_ANOMALY_BOLA_DENIALS", "APP_ANOMALY_BOLA_WINDOW",
	"APP_ANOMALY_STUFFING_ACCOUNTS", "APP_ANOMALY_STUFFING_WINDOW",
	"APP_GEOIP_DB", "APP_ALERT_WEBHOOK_URL", "APP_ALERT_WEBHOOK_ALLOW",
}

func TestAnomalyConfigDefaults(t *testing.T) {
	cfg, err := LoadConfig(vars{}.get)
	if err != nil {
		t.Fatal(err)
	}
	want := middleware.AnomalyConfig{
		ScrapeObjects: 100, ScrapeWindow: time.Minute,
		KeySpikeFactor: 5, KeySpikeBucket: time.Minute, KeySpikeBaseline: 10, KeySpikeMin: 60,
		BOLADenials: 20, BOLAWindow: 5 * time.Minute,
		StuffingAccounts: 10, StuffingWindow: 10 * time.Minute,
	}
	if cfg.Anomaly != want {
		t.Errorf("defaults %+v, want %+v", cfg.Anomaly, want)
	}
	if cfg.Anomaly != middleware.DefaultAnomalyConfig() {
		t.Error("the defaults differ from middleware.DefaultAnomalyConfig")
	}
}

func TestAnomalyConfigAcceptsGoodValues(t *testing.T) {
	geo := filepath.Join(t.TempDir(), "GeoLite2-Country.mmdb")
	if err := os.WriteFile(geo, []byte("checked by the detector, not here"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, value string
		printed     string // in Redacted; "" = value
		check       func(middleware.AnomalyConfig) bool
	}{
		{"APP_ANOMALY_SCRAPE_OBJECTS", "500", "", func(a middleware.AnomalyConfig) bool { return a.ScrapeObjects == 500 }},
		{"APP_ANOMALY_SCRAPE_OBJECTS", "off", "", func(a middleware.AnomalyConfig) bool { return a.ScrapeObjects == 0 }},
		{"APP_ANOMALY_SCRAPE_OBJECTS", "10000", "", func(a middleware.AnomalyConfig) bool { return a.ScrapeObjects == 10_000 }},
		{"APP_ANOMALY_SCRAPE_WINDOW", "10s", "10s", func(a middleware.AnomalyConfig) bool { return a.ScrapeWindow == 10*time.Second }},
		{"APP_ANOMALY_KEY_SPIKE_FACTOR", "2.5", "", func(a middleware.AnomalyConfig) bool { return a.KeySpikeFactor == 2.5 }},
		{"APP_ANOMALY_KEY_SPIKE_FACTOR", "off", "", func(a middleware.AnomalyConfig) bool { return a.KeySpikeFactor == 0 }},
		{"APP_ANOMALY_KEY_SPIKE_BUCKET", "1h", "1h0m0s", func(a middleware.AnomalyConfig) bool { return a.KeySpikeBucket == time.Hour }},
		{"APP_ANOMALY_KEY_SPIKE_BASELINE", "100", "", func(a middleware.AnomalyConfig) bool { return a.KeySpikeBaseline == 100 }},
		{"APP_ANOMALY_KEY_SPIKE_MIN", "1", "", func(a middleware.AnomalyConfig) bool { return a.KeySpikeMin == 1 }},
		{"APP_ANOMALY_BOLA_DENIALS", "3", "", func(a middleware.AnomalyConfig) bool { return a.BOLADenials == 3 }},
		{"APP_ANOMALY_BOLA_WINDOW", "24h", "24h0m0s", func(a middleware.AnomalyConfig) bool { return a.BOLAWindow == 24*time.Hour }},
		{"APP_ANOMALY_STUFFING_ACCOUNTS", "off", "", func(a middleware.AnomalyConfig) bool { return a.StuffingAccounts == 0 }},
		{"APP_ANOMALY_STUFFING_WINDOW", "30m", "30m0s", func(a middleware.AnomalyConfig) bool { return a.StuffingWindow == 30*time.Minute }},
		{"APP_GEOIP_DB", geo, "", func(a middleware.AnomalyConfig) bool { return a.GeoIPDB == geo }},
		{"APP_ALERT_WEBHOOK_URL", "https://alerts.example.com", "", func(a middleware.AnomalyConfig) bool { return a.AlertWebhookURL == "https://alerts.example.com" }},
	} {
		t.Run(tc.name+"="+tc.value, func(t *testing.T) {
			cfg, err := LoadConfig(vars{tc.name: tc.value}.get)
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tc.check(cfg.Anomaly) {
				t.Errorf("%s=%s gives %+v", tc.name, tc.value, cfg.Anomaly)
			}
			printed := tc.printed
			if printed == "" {
				printed = tc.value
			}
			if !slices.Contains(cfg.Redacted(), tc.name+"="+printed) {
				t.Errorf("Redacted does not show %s=%s:\n%s", tc.name, printed, strings.Join(cfg.Redacted(), "\n"))
			}
		})
	}
}

func TestAnomalyConfigRejectsEachBadValue(t *testing.T) {
	type badCase struct{ name, value, mentions string }
	var tests []badCase
	for _, name := range []string{"APP_ANOMALY_SCRAPE_OBJECTS", "APP_ANOMALY_BOLA_DENIALS", "APP_ANOMALY_STUFFING_ACCOUNTS"} {
		for _, v := range []string{"0", "-1", "ten", "1.5", "10001", "OFF", "none"} {
			tests = append(tests, badCase{name, v, "10000, or off"})
		}
	}
	for _, name := range []string{"APP_ANOMALY_SCRAPE_WINDOW", "APP_ANOMALY_BOLA_WINDOW", "APP_ANOMALY_STUFFING_WINDOW"} {
		for _, v := range []string{"0", "9s", "-1m", "15", "25h", "a while", "off"} {
			tests = append(tests, badCase{name, v, "10s"})
		}
	}
	for _, v := range []string{"0", "1", "0.5", "-5", "1001", "five", "NaN", "Inf"} {
		tests = append(tests, badCase{"APP_ANOMALY_KEY_SPIKE_FACTOR", v, "above 1"})
	}
	for _, v := range []string{"9s", "61m", "0", "soon"} {
		tests = append(tests, badCase{"APP_ANOMALY_KEY_SPIKE_BUCKET", v, "1h0m0s"})
	}
	for _, v := range []string{"0", "101", "ten", "off"} {
		tests = append(tests, badCase{"APP_ANOMALY_KEY_SPIKE_BASELINE", v, "100"})
	}
	for _, v := range []string{"0", "-3", "1000001", "off"} {
		tests = append(tests, badCase{"APP_ANOMALY_KEY_SPIKE_MIN", v, "1000000"})
	}
	dir := t.TempDir()
	tests = append(tests,
		badCase{"APP_GEOIP_DB", filepath.Join(dir, "missing.mmdb"), "MaxMind DB file"},
		badCase{"APP_GEOIP_DB", dir, "MaxMind DB file"},
		badCase{"APP_ALERT_WEBHOOK_URL", "http://alerts.example.com/hook", "https://"},
		badCase{"APP_ALERT_WEBHOOK_URL", "alerts.example.com/hook", "https://"},
		badCase{"APP_ALERT_WEBHOOK_URL", "https:///hook", "host"},
		badCase{"APP_ALERT_WEBHOOK_URL", "https://user:hunter2@alerts.example.com/hook", "user information"},
		badCase{"APP_ALERT_WEBHOOK_URL", "https://10.20.0.5/hook", "APP_ALERT_WEBHOOK_ALLOW"},
		badCase{"APP_ALERT_WEBHOOK_URL", "https://169.254.169.254/latest/meta-data/", "cloud metadata"},
		badCase{"APP_ALERT_WEBHOOK_URL", "https://0x7f000001/hook", "dotted quad"},
		badCase{"APP_ALERT_WEBHOOK_URL", "https://localhost/hook", "internal name"},
		badCase{"APP_ALERT_WEBHOOK_ALLOW", "10.20.0.0/16,nonsense", "CIDR"},
		badCase{"APP_ALERT_WEBHOOK_ALLOW", "0.0.0.0/0", "every address"},
		badCase{"APP_ALERT_WEBHOOK_ALLOW", "::/0", "every address"},
		badCase{"APP_ALERT_WEBHOOK_ALLOW", "fe80::1%eth0", "CIDR"},
	)
	for _, tt := range tests {
		t.Run(tt.name+"="+tt.value, func(t *testing.T) {
			problems := configProblems(t, vars{tt.name: tt.value})
			if len(problems) != 1 {
				t.Fatalf("problems = %q, want exactly one", problems)
			}
			if !strings.HasPrefix(problems[0], tt.name+" ") {
				t.Errorf("problem %q does not start with %s", problems[0], tt.name)
			}
			if !strings.Contains(problems[0], tt.mentions) {
				t.Errorf("problem %q does not say %q", problems[0], tt.mentions)
			}
			if strings.Contains(problems[0], "hunter2") {
				t.Errorf("problem %q repeats a password", problems[0])
			}
		})
	}
}

// TestAnomalyConfigIsDocumented: every anomaly variable is in Variables
// with a meaning, and in Redacted, and the default Variables documents
// is the one LoadConfig applies.
func TestAnomalyConfigIsDocumented(t *testing.T) {
	cfg, err := LoadConfig(vars{}.get)
	if err != nil {
		t.Fatal(err)
	}
	printed := map[string]string{}
	for _, line := range cfg.Redacted() {
		name, value, _ := strings.Cut(line, "=")
		printed[name] = value
	}
	documented := map[string]struct{ def, meaning string }{}
	for _, v := range Variables {
		documented[v.Name] = struct{ def, meaning string }{v.Default, v.Meaning}
	}
	for _, name := range anomalyNames {
		doc, ok := documented[name]
		if !ok || doc.meaning == "" {
			t.Errorf("%s is not in Variables with a meaning", name)
			continue
		}
		value, ok := printed[name]
		if !ok {
			t.Errorf("%s is not in Redacted", name)
			continue
		}
		if doc.def == "(none)" && value == "" {
			continue
		}
		if same, err := sameSetting(doc.def, value); err != nil || !same {
			t.Errorf("%s: Variables documents the default %q, LoadConfig applies %q", name, doc.def, value)
		}
	}
}

// TestAnomalyConfigHidesTheWebhookPath: chat and paging services put a
// token in the webhook's path or query; `rampart config` and the start-up
// log show the scheme and host only.
func TestAnomalyConfigHidesTheWebhookPath(t *testing.T) {
	for _, raw := range []string{
		"https://hooks.example.com/services/T000/B000/s3cr3tT0k3n",
		"https://hooks.example.com/alert?token=s3cr3tT0k3n",
	} {
		cfg, err := LoadConfig(vars{"APP_ALERT_WEBHOOK_URL": raw}.get)
		if err != nil {
			t.Fatal(err)
		}
		all := strings.Join(cfg.Redacted(), "\n")
		if strings.Contains(all, "s3cr3tT0k3n") {
			t.Errorf("Redacted shows the webhook token:\n%s", all)
		}
		if !slices.Contains(cfg.Redacted(), "APP_ALERT_WEBHOOK_URL=https://hooks.example.com/(path not shown)") {
			t.Errorf("Redacted does not show the webhook host:\n%s", all)
		}
	}
}

func TestNewAnomalyDetector(t *testing.T) {
	record := func(models.AuditEvent) error { return nil }
	newIt := func(t *testing.T, cfg Config, getenv func(string) string) (*middleware.AnomalyDetector, error) {
		t.Helper()
		d, err := newAnomalyDetector(context.Background(), cfg, nil, nil, testSecretStore(t, cfg, getenv), record,
			discardLogger(), prometheus.NewRegistry())
		if err == nil {
			t.Cleanup(func() { _ = d.Close(context.Background()) })
		}
		return d, err
	}

	t.Run("defaults, without Redis", func(t *testing.T) {
		cfg, err := LoadConfig(vars{"APP_DATA_DIR": t.TempDir()}.get)
		if err != nil {
			t.Fatal(err)
		}
		d, err := newIt(t, cfg, vars{}.get)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{middleware.RuleScraping, middleware.RuleKeySpike, middleware.RuleBOLAProbing, middleware.RuleCredentialStuffing}
		if !slices.Equal(d.Enabled(), want) || d.Shared() {
			t.Errorf("Enabled = %q, Shared = %v", d.Enabled(), d.Shared())
		}
	})

	webhook := vars{"APP_ALERT_WEBHOOK_URL": "https://alerts.example.com/hook"}
	t.Run("the webhook key from the secrets", func(t *testing.T) {
		cfg, err := LoadConfig(webhook.with("APP_DATA_DIR", t.TempDir()).get)
		if err != nil {
			t.Fatal(err)
		}
		key := base64.StdEncoding.EncodeToString(randomKey(t, 32))
		if _, err := newIt(t, cfg, vars{"APP_SECRET_ALERT_WEBHOOK_KEY": key}.get); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(cfg.DataDir, "dev-secrets", alertWebhookKeyName)); err == nil {
			t.Error("a development key was made although the secret is set")
		}
	})

	t.Run("a weak webhook key is refused", func(t *testing.T) {
		cfg, err := LoadConfig(webhook.with("APP_DATA_DIR", t.TempDir()).get)
		if err != nil {
			t.Fatal(err)
		}
		_, err = newIt(t, cfg, vars{"APP_SECRET_ALERT_WEBHOOK_KEY": base64.StdEncoding.EncodeToString([]byte("short"))}.get)
		if err == nil || !strings.Contains(err.Error(), alertWebhookKeyName) {
			t.Errorf("error %v, want one naming %s", err, alertWebhookKeyName)
		}
	})

	t.Run("development makes a webhook key", func(t *testing.T) {
		cfg, err := LoadConfig(webhook.with("APP_DATA_DIR", t.TempDir()).get)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := newIt(t, cfg, vars{}.get); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(cfg.DataDir, "dev-secrets", alertWebhookKeyName)); err != nil {
			t.Errorf("no development key: %v", err)
		}
	})

	t.Run("production needs the webhook key", func(t *testing.T) {
		cfg, err := LoadConfig(webhook.with("APP_DATA_DIR", t.TempDir()).get)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Env, cfg.Secrets = EnvProduction, SecretsSource{Kind: SecretsFile, Dir: t.TempDir()}
		_, err = newIt(t, cfg, vars{}.get)
		if err == nil || !strings.Contains(err.Error(), alertWebhookKeyName) || !strings.Contains(err.Error(), "APP_ALERT_WEBHOOK_URL") {
			t.Errorf("error %v, want one naming %s and APP_ALERT_WEBHOOK_URL", err, alertWebhookKeyName)
		}
	})

	t.Run("without a webhook no key is needed, even in production", func(t *testing.T) {
		cfg, err := LoadConfig(vars{"APP_DATA_DIR": t.TempDir()}.get)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Env, cfg.Secrets = EnvProduction, SecretsSource{Kind: SecretsFile, Dir: t.TempDir()}
		if _, err := newIt(t, cfg, vars{}.get); err != nil {
			t.Fatal(err)
		}
	})
}

// TestAlertWebhookAllow: APP_ALERT_WEBHOOK_ALLOW admits an internal alert
// receiver (and only for the alert webhook's own client); without it
// such a URL is refused, and a plain-http URL is refused whatever it says.
func TestAlertWebhookAllow(t *testing.T) {
	env := vars{
		"APP_ALERT_WEBHOOK_URL":   "https://10.20.0.5:9443/hook",
		"APP_ALERT_WEBHOOK_ALLOW": "10.20.0.0/16, 192.168.1.7",
		"APP_DATA_DIR":            t.TempDir(),
	}
	cfg, err := LoadConfig(env.get)
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.20.0.0/16"), netip.MustParsePrefix("192.168.1.7/32")}
	if !slices.Equal(cfg.AlertWebhookAllow, want) {
		t.Errorf("AlertWebhookAllow = %v, want %v", cfg.AlertWebhookAllow, want)
	}
	if !slices.Contains(cfg.Redacted(), "APP_ALERT_WEBHOOK_ALLOW=10.20.0.0/16,192.168.1.7/32") {
		t.Errorf("Redacted: %q", cfg.Redacted())
	}
	// The detector starts with it (nothing is sent until an alert).
	d, err := newAnomalyDetector(context.Background(), cfg, nil, nil, testSecretStore(t, cfg, vars{}.get),
		func(models.AuditEvent) error { return nil }, discardLogger(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close(context.Background()) })

	for _, tc := range []struct{ url, says string }{
		{"http://10.20.0.5/hook", "https://"},
		{"https://10.21.0.5/hook", "APP_ALERT_WEBHOOK_ALLOW"},
		{"https://[::ffff:10.20.0.5]/hook", "IPv4-mapped"},
	} {
		problems := configProblems(t, env.with("APP_ALERT_WEBHOOK_URL", tc.url))
		if len(problems) != 1 || !strings.Contains(problems[0], tc.says) {
			t.Errorf("%s: problems %q, want one saying %q", tc.url, problems, tc.says)
		}
	}
}
