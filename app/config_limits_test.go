package app

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rampart-go/rampart/models"
)

// limitVar is one of the whole-number variables of the rate limits,
// quotas and resource defenses (issue 4): its default, its largest
// accepted value, and where LoadConfig puts it.
type limitVar struct {
	name     string
	def, max int64
	field    func(Config) int64
}

var limitVars = []limitVar{
	{"APP_RATE_IP", 600, 1_000_000, func(c Config) int64 { return int64(c.Limits.IP.Rate) }},
	{"APP_RATE_USER", 1200, 1_000_000, func(c Config) int64 { return int64(c.Limits.User.Rate) }},
	{"APP_RATE_APIKEY_DEFAULT", 600, 1_000_000, func(c Config) int64 { return int64(c.Limits.APIKeyDefault) }},
	{"APP_RATE_APIKEY_MAX", 1200, 1_000_000, func(c Config) int64 { return int64(c.Limits.APIKeyMax) }},
	{"APP_RATE_LOGIN_IP", 20, 1_000_000, func(c Config) int64 { return int64(c.Limits.LoginIP.Rate) }},
	{"APP_RATE_REGISTER_IP", 10, 1_000_000, func(c Config) int64 { return int64(c.Limits.RegisterIP.Rate) }},
	{"APP_LOGIN_MAX_FAILURES", 5, 1000, func(c Config) int64 { return int64(c.Limits.LoginFailures) }},
	{"APP_QUOTA_PROJECTS", 100, 1_000_000, func(c Config) int64 { return int64(c.Quotas.ProjectsPerUser) }},
	{"APP_QUOTA_TASKS", 1000, 1_000_000, func(c Config) int64 { return int64(c.Quotas.TasksPerProject) }},
	{"APP_QUOTA_APIKEYS", 20, 1000, func(c Config) int64 { return int64(c.Quotas.APIKeysPerUser) }},
	// In MiB; the Config holds bytes.
	{"APP_ARGON2_MEMORY_BUDGET", 128, 64 << 10, func(c Config) int64 { return c.Argon2Budget >> 20 }},
	{"APP_REPORT_CONCURRENCY", 2, 100, func(c Config) int64 { return int64(c.ReportConcurrency) }},
}

// durationVar is one of the duration variables of issue 4.
type durationVar struct {
	name          string
	def, min, max time.Duration
	field         func(Config) time.Duration
}

var durationVars = []durationVar{
	{"APP_LOGIN_FAILURE_WINDOW", 15 * time.Minute, time.Minute, 24 * time.Hour, func(c Config) time.Duration { return c.Limits.LoginWindow }},
	{"APP_REQUEST_TIMEOUT", 10 * time.Second, time.Second, 5 * time.Minute, func(c Config) time.Duration { return c.RequestTimeout }},
}

// limitsNames lists every variable of issue 4.
func limitsNames() []string {
	var names []string
	for _, v := range limitVars {
		names = append(names, v.name)
	}
	for _, v := range durationVars {
		names = append(names, v.name)
	}
	return names
}

// needs returns the other variables a value of v needs to be valid: a key
// default above the default key maximum (1200) needs a higher maximum, a
// key maximum below the default key rate (600) a lower default.
func (v limitVar) needs(value int64) vars {
	s := strconv.FormatInt(value, 10)
	switch {
	case v.name == "APP_RATE_APIKEY_DEFAULT" && value > 1200:
		return vars{"APP_RATE_APIKEY_MAX": s}
	case v.name == "APP_RATE_APIKEY_MAX" && value < 600:
		return vars{"APP_RATE_APIKEY_DEFAULT": s}
	}
	return nil
}

func TestLimitsDefaults(t *testing.T) {
	cfg, err := LoadConfig(vars{}.get)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range limitVars {
		if got := v.field(cfg); got != v.def {
			t.Errorf("%s: default %d, want %d", v.name, got, v.def)
		}
	}
	for _, v := range durationVars {
		if got := v.field(cfg); got != v.def {
			t.Errorf("%s: default %s, want %s", v.name, got, v.def)
		}
	}
	if cfg.Argon2Budget != 128<<20 {
		t.Errorf("Argon2Budget = %d bytes, want 128 MiB", cfg.Argon2Budget)
	}
	// The policies keep their names and periods whatever the rates.
	l := cfg.Limits
	for _, p := range []struct {
		name   string
		period time.Duration
		gotN   string
		gotP   time.Duration
	}{
		{"ip", time.Minute, l.IP.Name, l.IP.Period},
		{"user", time.Minute, l.User.Name, l.User.Period},
		{"login-ip", time.Minute, l.LoginIP.Name, l.LoginIP.Period},
		{"register-ip", time.Minute, l.RegisterIP.Name, l.RegisterIP.Period},
	} {
		if p.gotN != p.name || p.gotP != p.period {
			t.Errorf("policy %q per %s, want %q per %s", p.gotN, p.gotP, p.name, p.period)
		}
	}
}

func TestLimitsAcceptGoodValues(t *testing.T) {
	for _, v := range limitVars {
		for _, n := range []int64{1, 7, v.max} {
			t.Run(v.name+"="+strconv.FormatInt(n, 10), func(t *testing.T) {
				s := strconv.FormatInt(n, 10)
				cfg, err := LoadConfig(v.needs(n).with(v.name, s).get)
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if got := v.field(cfg); got != n {
					t.Errorf("%s=%s gives %d", v.name, s, got)
				}
				if !slices.Contains(cfg.Redacted(), v.name+"="+s) {
					t.Errorf("Redacted does not show %s=%s:\n%s", v.name, s, strings.Join(cfg.Redacted(), "\n"))
				}
			})
		}
	}
	// Surrounding spaces are trimmed, as for every variable.
	cfg, err := LoadConfig(vars{"APP_RATE_LOGIN_IP": " 30 "}.get)
	if err != nil || cfg.Limits.LoginIP.Rate != 30 {
		t.Errorf("APP_RATE_LOGIN_IP=' 30 ': %d, %v", cfg.Limits.LoginIP.Rate, err)
	}
	// The rates change, the policy names and periods do not.
	if cfg.Limits.LoginIP.Name != "login-ip" || cfg.Limits.LoginIP.Period != time.Minute {
		t.Errorf("LoginIP = %+v", cfg.Limits.LoginIP)
	}

	for _, v := range durationVars {
		for _, d := range []time.Duration{v.min, 90 * time.Second, v.max} {
			t.Run(v.name+"="+d.String(), func(t *testing.T) {
				cfg, err := LoadConfig(vars{v.name: d.String()}.get)
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if got := v.field(cfg); got != d {
					t.Errorf("%s=%s gives %s", v.name, d, got)
				}
				if !slices.Contains(cfg.Redacted(), v.name+"="+d.String()) {
					t.Errorf("Redacted does not show %s=%s", v.name, d)
				}
			})
		}
	}

	t.Run("key default equal to the key maximum", func(t *testing.T) {
		cfg, err := LoadConfig(vars{"APP_RATE_APIKEY_DEFAULT": "300", "APP_RATE_APIKEY_MAX": "300"}.get)
		if err != nil || cfg.Limits.APIKeyDefault != 300 || cfg.Limits.APIKeyMax != 300 {
			t.Errorf("default %d, max %d, %v", cfg.Limits.APIKeyDefault, cfg.Limits.APIKeyMax, err)
		}
	})
}

func TestLimitsRejectEachBadValue(t *testing.T) {
	type badCase struct {
		name, value string
		extra       vars
		names       string // what the one problem must start with
		mentions    string // and what else it must say ("" = nothing more)
	}
	var tests []badCase
	for _, v := range limitVars {
		for _, bad := range []string{"0", "-1", "-600", "ten", "1.5", "1e3", "0x10", "12 000", strconv.FormatInt(v.max+1, 10), "99999999999999999999"} {
			tests = append(tests, badCase{v.name, bad, nil, v.name, strconv.FormatInt(v.max, 10)})
		}
	}
	for _, v := range durationVars {
		for _, bad := range []string{"0", "-1m", "15", "fortnight", "1d", (v.min - time.Millisecond).String(), (v.max + time.Second).String()} {
			tests = append(tests, badCase{v.name, bad, nil, v.name, v.min.String()})
		}
	}
	tests = append(tests,
		badCase{"APP_RATE_APIKEY_DEFAULT", "1201", nil, "APP_RATE_APIKEY_DEFAULT", "APP_RATE_APIKEY_MAX"},
		badCase{"APP_RATE_APIKEY_DEFAULT", "500", vars{"APP_RATE_APIKEY_MAX": "499"}, "APP_RATE_APIKEY_DEFAULT", "APP_RATE_APIKEY_MAX"},
		// Lowering only the maximum below the default key rate (600) is
		// refused too, and the problem names both variables.
		badCase{"APP_RATE_APIKEY_MAX", "100", nil, "APP_RATE_APIKEY_DEFAULT", "APP_RATE_APIKEY_MAX"},
	)
	for _, tt := range tests {
		t.Run(tt.name+"="+tt.value, func(t *testing.T) {
			v := tt.extra.with(tt.name, tt.value)
			problems := configProblems(t, v)
			if len(problems) != 1 {
				t.Fatalf("problems = %q, want exactly one", problems)
			}
			if !strings.HasPrefix(problems[0], tt.names+" ") {
				t.Errorf("problem %q does not start with %s", problems[0], tt.names)
			}
			if !strings.Contains(problems[0], tt.mentions) {
				t.Errorf("problem %q does not say %q", problems[0], tt.mentions)
			}
			_, err := LoadConfig(v.get)
			if !strings.Contains(err.Error(), tt.names) {
				t.Errorf("error %q does not name %s", err, tt.names)
			}
		})
	}
}

func TestLimitsReportEveryProblemAtOnce(t *testing.T) {
	bad := vars{}
	for _, name := range limitsNames() {
		bad[name] = "0"
	}
	problems := configProblems(t, bad)
	if len(problems) != len(bad) {
		t.Errorf("problems = %q, want one per bad variable (%d)", problems, len(bad))
	}
	for name := range bad {
		if !slices.ContainsFunc(problems, func(p string) bool { return strings.HasPrefix(p, name+" ") }) {
			t.Errorf("no problem names %s: %q", name, problems)
		}
	}
}

// TestLimitsAreDocumented checks that every variable of issue 4 is in
// Variables (for `rampart help` and the README) and in Redacted (for
// `rampart config` and the start-up log), and that the default Variables
// documents is the one LoadConfig applies.
func TestLimitsAreDocumented(t *testing.T) {
	cfg, err := LoadConfig(vars{}.get)
	if err != nil {
		t.Fatal(err)
	}
	printed := map[string]string{}
	for _, line := range cfg.Redacted() {
		name, value, _ := strings.Cut(line, "=")
		printed[name] = value
	}
	documented := map[string]string{}
	for _, v := range Variables {
		documented[v.Name] = v.Default
		if strings.HasPrefix(v.Name, "APP_") && v.Meaning == "" {
			t.Errorf("%s has no meaning in Variables", v.Name)
		}
	}
	for _, name := range limitsNames() {
		def, ok := documented[name]
		if !ok {
			t.Errorf("%s is not in Variables", name)
			continue
		}
		value, ok := printed[name]
		if !ok {
			t.Errorf("%s is not in Redacted", name)
			continue
		}
		if same, err := sameSetting(def, value); err != nil || !same {
			t.Errorf("%s: Variables documents the default %q, LoadConfig applies %q", name, def, value)
		}
	}
}

// sameSetting compares two printed values of one variable: numbers as
// numbers, durations as durations (15m and 15m0s are the same).
func sameSetting(a, b string) (bool, error) {
	if a == b {
		return true, nil
	}
	da, err := time.ParseDuration(a)
	if err != nil {
		return false, err
	}
	db, err := time.ParseDuration(b)
	if err != nil {
		return false, err
	}
	return da == db, nil
}

// TestArgon2ConcurrencySetting: APP_ARGON2_CONCURRENCY defaults to one
// fewer than the cores Go schedules on (at least one), takes a whole
// number from 1 to 1024, names itself when it is wrong, and is printed by
// `rampart config`.
func TestArgon2ConcurrencySetting(t *testing.T) {
	cfg, err := LoadConfig(vars{}.get)
	if err != nil {
		t.Fatal(err)
	}
	if want := models.DefaultArgon2Concurrency(); cfg.Argon2Concurrency != want {
		t.Errorf("default %d, want %d", cfg.Argon2Concurrency, want)
	}
	if !slices.Contains(cfg.Redacted(), "APP_ARGON2_CONCURRENCY="+strconv.Itoa(cfg.Argon2Concurrency)) {
		t.Errorf("APP_ARGON2_CONCURRENCY is not printed: %q", cfg.Redacted())
	}
	if !slices.ContainsFunc(Variables, func(v struct{ Name, Default, Meaning string }) bool {
		return v.Name == "APP_ARGON2_CONCURRENCY" && v.Meaning != ""
	}) {
		t.Error("APP_ARGON2_CONCURRENCY is not in Variables")
	}
	for _, good := range []string{"1", "3", "1024"} {
		cfg, err := LoadConfig(vars{"APP_ARGON2_CONCURRENCY": good}.get)
		if err != nil || strconv.Itoa(cfg.Argon2Concurrency) != good {
			t.Errorf("%s: got %d, %v", good, cfg.Argon2Concurrency, err)
		}
	}
	for _, bad := range []string{"0", "-1", "1025", "two", "1.5"} {
		_, err := LoadConfig(vars{"APP_ARGON2_CONCURRENCY": bad}.get)
		if err == nil || !strings.Contains(err.Error(), "APP_ARGON2_CONCURRENCY must be") {
			t.Errorf("%q: error %v, want one naming APP_ARGON2_CONCURRENCY", bad, err)
		}
	}
}
