// Command benchrun is the benchmark harness of issue 10, run by
// scripts/bench (see there for the options and what is measured). It
// starts the server built with -tags rampart_bench (the bare handler, and
// RAMPART_BENCH_AUDIT=off) on SQLite, and on PostgreSQL (+ Redis) when
// their URLs are given, drives it with wrk, and prints a table, writes a
// JSON summary, and ends with the line "security-tax ratio: R".
//
// It uses the standard library only and imports nothing of this module:
// it talks to the servers over HTTPS like any client, trusting the
// development CA each one makes (never skipping verification; wrk, a C
// load generator, does not verify certificates, and only ever talks to the
// server this program started on the loopback).
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type options struct {
	bench, normal, loadtest string // binaries
	databaseURL, redisURL   string
	duration                time.Duration
	rounds                  int
	connections, threads    int
	small, large            int
	flood                   bool
	startups                int
	profile                 string
	out                     string
	work                    string
}

func main() {
	var o options
	flag.StringVar(&o.bench, "bench", "", "server binary built with -tags rampart_bench")
	flag.StringVar(&o.normal, "normal", "", "server binary of a normal build (start-up and idle RSS)")
	flag.StringVar(&o.loadtest, "loadtest", "", "scripts/loadtest binary (login flood); empty: no flood")
	flag.StringVar(&o.databaseURL, "database-url", "", "postgres:// URL: a second run on PostgreSQL in a fresh schema (needs psql)")
	flag.StringVar(&o.redisURL, "redis-url", "", "redis:// URL for the second run")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "length of each wrk run")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds of each measurement (medians are reported)")
	flag.IntVar(&o.connections, "connections", 16, "wrk connections")
	flag.IntVar(&o.threads, "threads", 1, "wrk threads")
	flag.IntVar(&o.small, "small", 1000, "rows owned by other users, first")
	flag.IntVar(&o.large, "large", 100000, "rows owned by other users, then")
	flag.IntVar(&o.startups, "startups", 5, "start-ups measured (median reported)")
	flag.StringVar(&o.profile, "profile", "", "folder for CPU profiles of the full chain, audit on and off, per backend (pprof on the metrics listener)")
	flag.StringVar(&o.out, "out", "bench-results.json", "JSON summary file")
	flag.StringVar(&o.work, "work", "", "scratch folder (removed by scripts/bench)")
	flag.Parse()
	o.flood = o.loadtest != ""
	if o.bench == "" || o.normal == "" || o.work == "" {
		fmt.Fprintln(os.Stderr, "benchrun: -bench, -normal and -work are required (run scripts/bench)")
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "benchrun:", err)
		os.Exit(2)
	}
}

// ---- the summary -----------------------------------------------------

// Load is one wrk run, or the median of several.
type Load struct {
	RPS   float64 `json:"rps"`
	P50ms float64 `json:"p50_ms"`
	P99ms float64 `json:"p99_ms"`
	// CPUus is the CPU time a request cost the server, and the local
	// database and Redis where the backend has them (see cpuTime), in
	// microseconds: measured for the audit comparison only.
	CPUus float64 `json:"cpu_us_per_request,omitempty"`

	requests int64 // answered in this run
}

type Backend struct {
	Name            string          `json:"backend"`
	Bare            Load            `json:"bare"`
	Full            Load            `json:"full_chain"`
	FullNoAudit     Load            `json:"full_chain_audit_off"`
	TaxRatio        float64         `json:"security_tax_ratio"`     // median of the rounds' full/bare throughput
	P99Ratio        float64         `json:"security_tax_p99_ratio"` // median of the rounds' full/bare p99
	AuditCost       float64         `json:"audit_cost"`             // 1 - median(on/off throughput)
	AuditCPU        float64         `json:"audit_cost_cpu"`         // median of 1 - off/on CPU a request
	Scaling         map[string]Load `json:"scaling"`                // read_small, read_large, list_small, list_large
	ReadGrowth      float64         `json:"read_p50_growth"`        // large/small - 1
	ListGrowth      float64         `json:"list_p50_growth"`
	Flood           json.RawMessage `json:"login_flood,omitempty"`
	Profile         string          `json:"cpu_profile,omitempty"`
	ProfileAuditOff string          `json:"cpu_profile_audit_off,omitempty"`
	Rounds          []Round         `json:"rounds"`
}

type Round struct {
	Bare        Load `json:"bare"`
	Full        Load `json:"full_chain"`
	FullNoAudit Load `json:"full_chain_audit_off"`
}

type Startup struct {
	ReadyMs   float64   `json:"ready_ms"` // median
	AllMs     []float64 `json:"ready_ms_each"`
	IdleRSSMi float64   `json:"idle_rss_mib"` // median, 2 s after ready
}

type Budget struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Limit string  `json:"limit"`
	Met   bool    `json:"met"`
	Shown string  `json:"shown"`
}

type Summary struct {
	Machine  map[string]string `json:"machine"`
	Settings map[string]string `json:"settings"`
	Startup  Startup           `json:"startup"`
	Backends []*Backend        `json:"backends"`
	Budgets  []Budget          `json:"budgets"`
	Ratio    float64           `json:"security_tax_ratio"`
}

func run(o options) error {
	for _, tool := range []string{"wrk", "sqlite3"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is needed (apt-get install %s)", tool, tool)
		}
	}
	s := &Summary{Machine: machine(), Settings: map[string]string{
		"wrk":         fmt.Sprintf("-t%d -c%d -d%s", o.threads, o.connections, o.duration),
		"rounds":      strconv.Itoa(o.rounds),
		"other_rows":  fmt.Sprintf("%d then %d", o.small, o.large),
		"rate_limits": "raised to 1,000,000 a minute (still checked on every request)",
	}}
	fmt.Printf("bench: %s, %s CPUs, %s; %s\n", s.Machine["cpu"], s.Machine["cpus"], s.Machine["memory"], s.Machine["go"])
	fmt.Printf("bench: wrk %s, %d rounds, medians reported; the host is shared: read ratios, which come from the same rounds\n",
		s.Settings["wrk"], o.rounds)

	var err error
	if s.Startup, err = measureStartup(o); err != nil {
		return fmt.Errorf("start-up: %w", err)
	}
	backends := []string{"sqlite"}
	if o.databaseURL != "" || o.redisURL != "" {
		backends = append(backends, "postgres")
		if o.databaseURL == "" {
			backends[1] = "sqlite+redis"
		} else if o.redisURL != "" {
			backends[1] = "postgres+redis"
		}
	}
	for _, name := range backends {
		b, err := measureBackend(o, name)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		s.Backends = append(s.Backends, b)
	}
	s.Ratio = s.Backends[0].TaxRatio
	s.budgets()
	s.print()
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(o.out, append(data, '\n'), 0o644); err != nil { // #nosec G306 -- a report, no secrets
		return err
	}
	fmt.Printf("summary written to %s\n", o.out)
	fmt.Printf("security-tax ratio: %.2f\n", s.Ratio)
	return nil
}

// ---- machine ---------------------------------------------------------

func machine() map[string]string {
	m := map[string]string{"cpus": strconv.Itoa(runtime.NumCPU()), "go": runtime.Version(), "os": runtime.GOOS + "/" + runtime.GOARCH}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m["cpu"] = strings.TrimSpace(v)
				break
			}
		}
	}
	if kib, err := procKiB("/proc/meminfo", "MemTotal"); err == nil {
		m["memory"] = fmt.Sprintf("%.1f GiB RAM", float64(kib)/(1<<20))
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m["kernel"] = strings.TrimSpace(string(b))
	}
	if out, err := exec.Command("wrk", "-v").CombinedOutput(); err == nil || len(out) > 0 {
		m["wrk"] = strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		m["loadavg_at_start"] = strings.TrimSpace(string(b))
	}
	return m
}

func procKiB(file, field string) (int64, error) {
	b, err := os.ReadFile(file) // #nosec G304 -- /proc files named here
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && k == field {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("%s: no %s", file, field)
}

// ---- servers ---------------------------------------------------------

type server struct {
	cmd     *exec.Cmd
	base    string // https://127.0.0.1:PORT
	metrics string
	dataDir string
	client  *http.Client
	ready   time.Duration
	log     *os.File
	exited  chan struct{}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// start runs bin with exactly env (nothing of this process's environment
// but PATH and HOME) and waits until /readyz answers 200.
func start(bin, dataDir, logPath string, env []string) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	mport, err := freePort()
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(logPath) // #nosec G304 -- our scratch folder
	if err != nil {
		return nil, err
	}
	s := &server{base: fmt.Sprintf("https://127.0.0.1:%d", port), metrics: fmt.Sprintf("https://127.0.0.1:%d", mport),
		dataDir: dataDir, log: logf}
	cmd := exec.Command(bin) // #nosec G204 -- the binary scripts/bench built
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "APP_ENV=development",
		"APP_ADDR=127.0.0.1:" + strconv.Itoa(port), "APP_METRICS_ADDR=127.0.0.1:" + strconv.Itoa(mport),
		"APP_DATA_DIR=" + dataDir}, env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	began := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s.cmd = cmd
	exited := make(chan struct{})
	s.exited = exited
	go func() { _ = cmd.Wait(); close(exited) }()
	ca := filepath.Join(dataDir, "tls", "dev-ca.pem")
	for {
		select {
		case <-exited:
			return nil, fmt.Errorf("the server exited at start-up; see %s", logPath)
		default:
		}
		if time.Since(began) > 60*time.Second {
			s.stop()
			return nil, fmt.Errorf("the server was not ready within 60 s; see %s", logPath)
		}
		if s.client == nil {
			if pem, err := os.ReadFile(ca); err == nil { // #nosec G304 -- the server's own data folder
				pool := x509.NewCertPool()
				if pool.AppendCertsFromPEM(pem) {
					s.client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
						TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, MaxIdleConnsPerHost: 4}}
				}
			}
		}
		if s.client != nil {
			if resp, err := s.client.Get(s.base + "/readyz"); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					s.ready = time.Since(began)
					return s, nil
				}
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (s *server) pid() int { return s.cmd.Process.Pid }

func (s *server) stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(30 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
	}
	_ = s.log.Close()
}

// call sends a JSON request and decodes the answer into out.
func (s *server) call(method, path, token, body string, want int, out any) error {
	req, err := http.NewRequest(method, s.base+path, strings.NewReader(body))
	if err != nil {
		return err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, data)
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// ---- e: start-up -----------------------------------------------------

func measureStartup(o options) (Startup, error) {
	var st Startup
	var rss []float64
	for i := range o.startups {
		dir := filepath.Join(o.work, fmt.Sprintf("startup%d", i))
		s, err := start(o.normal, filepath.Join(dir, "data"), filepath.Join(o.work, fmt.Sprintf("startup%d.log", i)), nil)
		if err != nil {
			return st, err
		}
		st.AllMs = append(st.AllMs, ms(s.ready))
		time.Sleep(2 * time.Second)
		kib, err := procKiB(fmt.Sprintf("/proc/%d/status", s.pid()), "VmRSS")
		s.stop()
		if err != nil {
			return st, err
		}
		rss = append(rss, float64(kib)/1024)
	}
	st.ReadyMs, st.IdleRSSMi = median(st.AllMs), median(rss)
	fmt.Printf("e. start-up to a healthy /readyz on a fresh SQLite database (normal build, %d runs): median %.0f ms %v; idle RSS %.1f MiB\n",
		o.startups, st.ReadyMs, st.AllMs, st.IdleRSSMi)
	return st, nil
}

// ---- a, c, d, b: one backend ----------------------------------------

func measureBackend(o options, name string) (*Backend, error) {
	b := &Backend{Name: name, Scaling: map[string]Load{}}
	env := []string{"APP_RATE_IP=1000000", "APP_RATE_USER=1000000", "APP_RATE_LOGIN_IP=1000000",
		"APP_RATE_REGISTER_IP=1000000", "APP_LOGIN_FAILURE_WINDOW=1m"}
	if strings.HasSuffix(name, "redis") {
		env = append(env, "APP_REDIS_URL="+o.redisURL)
	}
	// Two databases: "small" with o.small rows of other owners (a, c, d)
	// and "large" with o.large (d), each with its own server, so that the
	// rounds can alternate between them.
	small, err := newDataset(o, name, "small", env)
	if err != nil {
		return nil, err
	}
	defer small.close()
	large, err := newDataset(o, name, "large", env)
	if err != nil {
		return nil, err
	}
	defer large.close()
	if err := seed(small.sqliteFile, small.pg, small.userID, 0, o.small); err != nil {
		return nil, err
	}
	if err := seed(large.sqliteFile, large.pg, large.userID, 0, o.large); err != nil {
		return nil, err
	}
	a := small.server
	// A second server on the small database, with the audit trail off.
	noAudit, err := start(o.bench, small.dataDir, small.dir+"-noaudit.log", append(small.env, "RAMPART_BENCH_AUDIT=off"))
	if err != nil {
		return nil, err
	}
	defer noAudit.stop()

	read := "/v1/projects/" + small.projectID
	bare := "/bench/bare/projects/" + small.projectID + "?owner=" + small.userID
	list := "/v1/projects"
	w := wrkRunner{o: o, token: small.token, lua: filepath.Join(o.work, "report.lua")}
	wl := wrkRunner{o: o, token: large.token, lua: w.lua}
	readLarge := large.server.base + "/v1/projects/" + large.projectID
	// Warm up: connections, TLS sessions, caches.
	for _, u := range []string{a.base + bare, a.base + read, noAudit.base + read, a.base + list} {
		if _, err := w.run(u, 2*time.Second); err != nil {
			return nil, err
		}
	}
	for _, u := range []string{readLarge, large.server.base + list} {
		if _, err := wl.run(u, 2*time.Second); err != nil {
			return nil, err
		}
	}
	fmt.Printf("\n== %s: %d rounds of a. bare vs full chain, c. audit off, d. read and list with %d vs %d rows of other owners\n",
		name, o.rounds, o.small, o.large)
	var listSmall, readL, listL []Load
	for r := range o.rounds {
		var round Round
		if round.Bare, err = w.run(a.base+bare, o.duration); err != nil {
			return nil, err
		}
		// Audit on and off back to back, in turns first (the host's
		// speed drifts), each with the CPU it cost; in the first round
		// both are profiled if asked (go tool pprof -diff_base shows
		// where the trail's cost goes).
		measure := func(s *server, profile *string) (Load, error) {
			cpu := cpuSampler(s.pid(), name)
			var done chan error
			if profile != nil {
				done = takeProfile(s, o.duration-time.Second, *profile)
			}
			l, err := w.run(s.base+read, o.duration)
			if done != nil {
				if perr := <-done; perr != nil {
					fmt.Printf("   (no profile: %v)\n", perr)
					*profile = ""
				}
			}
			l.CPUus = cpu(l)
			return l, err
		}
		var onProfile, offProfile *string
		if r == 0 && o.profile != "" {
			b.Profile = filepath.Join(o.profile, name+"-full-chain.pprof")
			b.ProfileAuditOff = filepath.Join(o.profile, name+"-audit-off.pprof")
			onProfile, offProfile = &b.Profile, &b.ProfileAuditOff
		}
		if r%2 == 0 {
			if round.Full, err = measure(a, onProfile); err == nil {
				round.FullNoAudit, err = measure(noAudit, offProfile)
			}
		} else {
			if round.FullNoAudit, err = measure(noAudit, offProfile); err == nil {
				round.Full, err = measure(a, onProfile)
			}
		}
		if err != nil {
			return nil, err
		}
		ls, err := w.run(a.base+list, o.duration)
		if err != nil {
			return nil, err
		}
		rl, err := wl.run(readLarge, o.duration)
		if err != nil {
			return nil, err
		}
		ll, err := wl.run(large.server.base+list, o.duration)
		if err != nil {
			return nil, err
		}
		listSmall, readL, listL = append(listSmall, ls), append(readL, rl), append(listL, ll)
		fmt.Printf("   round %d: bare %s | full %s | audit off %s\n            CPU a request: audit on %.0f µs, off %.0f µs\n"+
			"            list %s | read, large %s | list, large %s\n",
			r+1, round.Bare, round.Full, round.FullNoAudit, round.Full.CPUus, round.FullNoAudit.CPUus, ls, rl, ll)
		b.Rounds = append(b.Rounds, round)
	}
	noAudit.stop()
	large.close()
	var tax, p99, audit, auditCPU []float64
	var bares, fulls, offs []Load
	for _, r := range b.Rounds {
		tax = append(tax, r.Full.RPS/r.Bare.RPS)
		p99 = append(p99, r.Full.P99ms/r.Bare.P99ms)
		audit = append(audit, 1-r.Full.RPS/r.FullNoAudit.RPS)
		auditCPU = append(auditCPU, 1-r.FullNoAudit.CPUus/r.Full.CPUus)
		bares, fulls, offs = append(bares, r.Bare), append(fulls, r.Full), append(offs, r.FullNoAudit)
	}
	b.TaxRatio, b.P99Ratio, b.AuditCost, b.AuditCPU = median(tax), median(p99), median(audit), median(auditCPU)
	b.Bare, b.Full, b.FullNoAudit = medianLoad(bares), medianLoad(fulls), medianLoad(offs)
	b.Scaling["read_small"], b.Scaling["list_small"] = b.Full, medianLoad(listSmall)
	b.Scaling["read_large"], b.Scaling["list_large"] = medianLoad(readL), medianLoad(listL)
	b.ReadGrowth = b.Scaling["read_large"].P50ms/b.Scaling["read_small"].P50ms - 1
	b.ListGrowth = b.Scaling["list_large"].P50ms/b.Scaling["list_small"].P50ms - 1

	if o.flood {
		fmt.Printf("\n== %s: b. login flood (scripts/loadtest)\n", name)
		out := filepath.Join(small.dir, "flood.json")
		// #nosec G204 -- the load generator scripts/bench built
		cmd := exec.Command(o.loadtest, "run", "-label", name, "-base", a.base, "-ca", filepath.Join(small.dataDir, "tls", "dev-ca.pem"),
			"-metrics", a.metrics+"/metrics", "-pid", strconv.Itoa(a.pid()), "-json", out)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 {
				return nil, fmt.Errorf("login flood: %w", err)
			}
		}
		if b.Flood, err = os.ReadFile(out); err != nil { // #nosec G304 -- our scratch folder
			return nil, err
		}
	}
	return b, nil
}

// dataset is one database (a SQLite file, or a PostgreSQL schema) with a
// server on it and the reader: a user with 20 projects, logged in.
type dataset struct {
	dir, dataDir, sqliteFile string
	pg                       *postgres
	env                      []string
	server                   *server
	token, userID, projectID string
	dropSchema               bool
}

func newDataset(o options, backend, label string, env []string) (*dataset, error) {
	d := &dataset{dir: filepath.Join(o.work, backend+"-"+label)}
	d.dataDir = filepath.Join(d.dir, "data")
	d.sqliteFile = filepath.Join(d.dataDir, "rampart.db")
	d.env = slices.Clone(env)
	if strings.HasPrefix(backend, "postgres") {
		d.pg = &postgres{url: o.databaseURL, schema: fmt.Sprintf("bench_%s_%d", label, time.Now().UnixNano())}
		if err := d.pg.run(nil, createSchema); err != nil {
			return nil, err
		}
		d.dropSchema = true
		sep := "?"
		if strings.Contains(o.databaseURL, "?") {
			sep = "&"
		}
		d.env = append(d.env, "APP_DATABASE_URL="+o.databaseURL+sep+"search_path="+d.pg.schema)
	}
	var err error
	if d.server, err = start(o.bench, d.dataDir, d.dir+".log", d.env); err != nil {
		d.close()
		return nil, err
	}
	const email, password = "bench@example.com", "benchmark-Passphrase-2026"
	s := d.server
	if err := s.call("POST", "/v1/auth/register", "", fmt.Sprintf(`{"email":%q,"password":%q,"display_name":"Bench"}`, email, password), 201, nil); err != nil {
		d.close()
		return nil, err
	}
	var login struct{ Token string }
	if err := s.call("POST", "/v1/auth/login", "", fmt.Sprintf(`{"email":%q,"password":%q}`, email, password), 200, &login); err != nil {
		d.close()
		return nil, err
	}
	var me struct{ ID string }
	if err := s.call("GET", "/v1/me", login.Token, "", 200, &me); err != nil {
		d.close()
		return nil, err
	}
	var project struct{ ID string }
	for i := range 20 {
		if err := s.call("POST", "/v1/projects", login.Token, fmt.Sprintf(`{"name":"Reader project %d"}`, i), 201, &project); err != nil {
			d.close()
			return nil, err
		}
	}
	d.token, d.userID, d.projectID = login.Token, me.ID, project.ID
	return d, nil
}

// close stops the server and drops the PostgreSQL schema; it may be
// called more than once.
func (d *dataset) close() {
	if d.server != nil {
		d.server.stop()
		d.server = nil
	}
	if d.dropSchema {
		_ = d.pg.run(nil, dropSchema)
		d.dropSchema = false
	}
}

// takeProfile takes a CPU profile of the server for d, from the pprof
// endpoint of its metrics listener (benchmark builds only).
func takeProfile(s *server, d time.Duration, file string) chan error {
	done := make(chan error, 1)
	go func() {
		resp, err := s.client.Get(fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", s.metrics, int(d.Seconds())))
		if err != nil {
			done <- err
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			done <- fmt.Errorf("pprof: %s", resp.Status)
			return
		}
		data, err := io.ReadAll(resp.Body)
		if err == nil {
			err = os.WriteFile(file, data, 0o644) // #nosec G306 -- a profile of a benchmark server
		}
		done <- err
	}()
	return done
}

// ---- seeding other owners' rows --------------------------------------

// The seeding scripts are constants; the numbers and names go in as
// variables (sqlite3 .parameter, psql -v), never into the SQL text.
const (
	seedSQLite = `.timeout 30000
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < :users)
INSERT INTO users (id, email, email_key, display_name, password_hash, role, created_at, updated_at)
SELECT lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2) || '-a' ||
       substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6))),
       :batch || '-' || i || '@bench.invalid', :batch || '-' || i || '@bench.invalid', 'Other owner', 'not a hash', 'user',
       r.created_at, r.created_at
FROM n, (SELECT created_at FROM users WHERE id = :reader) r;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 100)
INSERT INTO projects (id, owner_id, name, description, created_at, updated_at)
SELECT lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2) || '-a' ||
       substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6))),
       u.id, 'Other project ' || n.i, 'seeded by scripts/bench', u.created_at, u.created_at
FROM users u, n WHERE u.email LIKE :batch || '-%@bench.invalid';
COMMIT;
ANALYZE;
`
	seedPostgres = `SET search_path TO :"schema";
BEGIN;
INSERT INTO users (id, email, email_key, display_name, password_hash, role, created_at, updated_at)
SELECT gen_random_uuid(), :'batch' || '-' || i || '@bench.invalid', :'batch' || '-' || i || '@bench.invalid',
       'Other owner', 'not a hash', 'user', now(), now()
FROM generate_series(1, :users) i;
INSERT INTO projects (id, owner_id, name, description, created_at, updated_at)
SELECT gen_random_uuid(), u.id, 'Other project ' || n, 'seeded by scripts/bench', now(), now()
FROM users u, generate_series(1, 100) n WHERE u.email LIKE :'batch' || '-%@bench.invalid';
COMMIT;
ANALYZE users;
ANALYZE projects;
`
	createSchema = `CREATE SCHEMA :"schema";`
	dropSchema   = `DROP SCHEMA IF EXISTS :"schema" CASCADE;`
)

// seed brings the rows owned by other users from have to want: users with
// 100 projects each, written straight into the database (the API's quota
// would stop them, and 100,000 requests would take minutes).
func seed(sqliteFile string, pg *postgres, reader string, have, want int) error {
	if want <= have {
		return nil
	}
	vars := map[string]string{"users": strconv.Itoa((want - have) / 100), "batch": fmt.Sprintf("b%d", have), "reader": reader}
	began := time.Now()
	var err error
	if pg == nil {
		err = runSQLite(sqliteFile, vars, seedSQLite)
	} else {
		err = pg.run(vars, seedPostgres)
	}
	if err != nil {
		return fmt.Errorf("seeding: %w", err)
	}
	fmt.Printf("   seeded %s users with 100 projects each (%d other owners' rows in all) in %.1f s\n", vars["users"], want, time.Since(began).Seconds())
	return nil
}

// runSQLite runs a constant script with sqlite3, vars bound as :name
// parameters (text).
func runSQLite(file string, vars map[string]string, query string) error {
	args := []string{"-bail", "-cmd", ".parameter init"}
	for k, v := range vars {
		if _, err := strconv.Atoi(v); err != nil {
			v = "'" + strings.ReplaceAll(v, "'", "''") + "'" // text; numbers stay numbers
		}
		args = append(args, "-cmd", ".parameter set :"+k+" "+v)
	}
	cmd := exec.Command("sqlite3", append(args, file)...) // #nosec G204 -- our scratch database
	cmd.Stdin = strings.NewReader(query)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("sqlite3: %v: %s", err, out)
	}
	return nil
}

// postgres is the schema of one run on PostgreSQL.
type postgres struct{ url, schema string }

// run runs a constant script with psql, vars as psql variables (:name,
// :'name', :"name"), the schema among them.
func (p *postgres) run(vars map[string]string, query string) error {
	args := []string{p.url, "-qX", "-v", "ON_ERROR_STOP=1", "-v", "schema=" + p.schema}
	for k, v := range vars {
		args = append(args, "-v", k+"="+v)
	}
	cmd := exec.Command("psql", args...) // #nosec G204 -- the URL the caller gave
	cmd.Stdin = strings.NewReader(query)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("psql: %v: %s", err, out)
	}
	return nil
}

// ---- wrk -------------------------------------------------------------

type wrkRunner struct {
	o     options
	token string
	lua   string
}

// The Lua report of one wrk run, as one JSON line.
const reportLua = `done = function(summary, latency, requests)
  io.write(string.format('WRKJSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"timeout":%d,"non2xx":%d,"p50_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.timeout, summary.errors.status, latency:percentile(50), latency:percentile(99)))
end
`

func (w wrkRunner) run(url string, d time.Duration) (Load, error) {
	if _, err := os.Stat(w.lua); err != nil {
		if err := os.WriteFile(w.lua, []byte(reportLua), 0o600); err != nil {
			return Load{}, err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), d+30*time.Second)
	defer cancel()
	args := []string{"-t", strconv.Itoa(w.o.threads), "-c", strconv.Itoa(w.o.connections), "-d", fmt.Sprintf("%ds", int(d.Seconds())),
		"-s", w.lua, url}
	if !strings.Contains(url, "/bench/bare/") {
		args = append([]string{"-H", "Authorization: Bearer " + w.token}, args...)
	}
	out, err := exec.CommandContext(ctx, "wrk", args...).CombinedOutput() // #nosec G204 -- wrk on our own server
	if err != nil {
		return Load{}, fmt.Errorf("wrk: %v: %s", err, out)
	}
	i := bytes.Index(out, []byte("WRKJSON "))
	if i < 0 {
		return Load{}, fmt.Errorf("wrk printed no report: %s", out)
	}
	var r struct {
		Requests, DurationUs, Connect, Read, Write, Timeout, Non2xx, P50us, P99us int64
	}
	line, _, _ := bytes.Cut(out[i+8:], []byte("\n"))
	if err := json.Unmarshal(bytes.ReplaceAll(line, []byte("_us"), []byte("us")), &r); err != nil {
		return Load{}, fmt.Errorf("wrk report %q: %w", line, err)
	}
	if r.Non2xx > 0 || r.Connect+r.Read+r.Write+r.Timeout > 0 {
		return Load{}, fmt.Errorf("wrk on %s: %d answers not 2xx, %d socket errors (the server log says why)",
			url, r.Non2xx, r.Connect+r.Read+r.Write+r.Timeout)
	}
	return Load{RPS: float64(r.Requests) / (float64(r.DurationUs) / 1e6), P50ms: float64(r.P50us) / 1000, P99ms: float64(r.P99us) / 1000,
		requests: r.Requests}, nil
}

func (l Load) String() string {
	return fmt.Sprintf("%6.0f/s p50 %5.2f p99 %6.2f ms", l.RPS, l.P50ms, l.P99ms)
}

// ---- CPU time ----------------------------------------------------------

// cpuSampler starts measuring the CPU time of the server pid and of the
// backend's local database and Redis processes (cpuTime); the function it
// returns gives the CPU a request of l cost since then, in microseconds.
func cpuSampler(pid int, backend string) func(l Load) float64 {
	var names []string
	if strings.Contains(backend, "postgres") {
		names = append(names, "postgres")
	}
	if strings.Contains(backend, "redis") {
		names = append(names, "redis-server")
	}
	began := cpuTime(pid, names)
	return func(l Load) float64 {
		if l.requests <= 0 {
			return 0
		}
		return float64((cpuTime(pid, names) - began).Microseconds()) / float64(l.requests)
	}
}

// cpuTime is the user and system CPU time of process pid, plus that of
// every process whose name is in names (a local PostgreSQL's postmaster
// and backends, with the backends that exited counted through their
// parent; a local Redis), from /proc. A database on another machine is
// not counted: the figure is then the server's alone. /proc counts in
// clock ticks of 1/100 s (USER_HZ on Linux); a 10 s run of thousands of
// requests a second makes that resolution a fraction of a microsecond a
// request.
func cpuTime(pid int, names []string) time.Duration {
	ticks := procTicks(pid, false)
	if len(names) > 0 {
		dirs, _ := os.ReadDir("/proc")
		for _, d := range dirs {
			p, err := strconv.Atoi(d.Name())
			if err != nil || p == pid {
				continue
			}
			comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", p)) // #nosec G304 -- /proc
			if err == nil && slices.Contains(names, strings.TrimSpace(string(comm))) {
				ticks += procTicks(p, true)
			}
		}
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}

// procTicks reads utime and stime (and, with children, cutime and cstime)
// from /proc/pid/stat; 0 if the process is gone.
func procTicks(pid int, children bool) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)) // #nosec G304 -- /proc
	if err != nil {
		return 0
	}
	// The name, in parentheses, may hold spaces: fields count from after it.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	n := 2 // utime, stime (fields 14 and 15; f[0] is field 3)
	if children {
		n = 4 // and cutime, cstime
	}
	if len(f) < 11+n {
		return 0
	}
	var t int64
	for _, v := range f[11 : 11+n] {
		x, _ := strconv.ParseInt(v, 10, 64)
		t += x
	}
	return t
}

// ---- numbers ---------------------------------------------------------

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func medianLoad(ls []Load) Load {
	var rps, p50, p99, cpu []float64
	for _, l := range ls {
		rps, p50, p99, cpu = append(rps, l.RPS), append(p50, l.P50ms), append(p99, l.P99ms), append(cpu, l.CPUus)
	}
	return Load{RPS: median(rps), P50ms: median(p50), P99ms: median(p99), CPUus: median(cpu)}
}

// ---- budgets and the report -----------------------------------------

// shownOnly is the limit of a figure reported beside a budget, not judged.
const shownOnly = "(shown)"

func (s *Summary) budgets() {
	add := func(name string, v float64, limit string, met bool, shown string) {
		s.Budgets = append(s.Budgets, Budget{Name: name, Value: v, Limit: limit, Met: met, Shown: shown})
	}
	for _, b := range s.Backends {
		add("security tax: throughput full/bare ("+b.Name+")", b.TaxRatio, "≥ 0.75", b.TaxRatio >= 0.75, fmt.Sprintf("%.2f", b.TaxRatio))
		add("security tax: p99 full/bare ("+b.Name+")", b.P99Ratio, "≤ 1.5×", b.P99Ratio <= 1.5, fmt.Sprintf("%.2f×", b.P99Ratio))
		// Judged on the CPU a request costs (its inverse is what a
		// CPU-bound server can serve); the wall-clock figure is shown
		// beside it: on a shared host, with wrk on the same cores, it
		// swings by several points from round to round.
		add("audit on: throughput lost, by CPU a request ("+b.Name+")", b.AuditCPU, "≤ 10%", b.AuditCPU <= 0.10,
			fmt.Sprintf("%.1f%%", 100*b.AuditCPU))
		add("audit on: throughput lost, wall clock ("+b.Name+")", b.AuditCost, shownOnly, true, fmt.Sprintf("%.1f%%", 100*b.AuditCost))
		add("100× other owners' rows: read p50 ("+b.Name+")", b.ReadGrowth, "≤ +20%", b.ReadGrowth <= 0.20, fmt.Sprintf("%+.1f%%", 100*b.ReadGrowth))
		add("100× other owners' rows: list p50 ("+b.Name+")", b.ListGrowth, "≤ +20%", b.ListGrowth <= 0.20, fmt.Sprintf("%+.1f%%", 100*b.ListGrowth))
		if b.Flood != nil {
			var f struct {
				Ratio float64 `json:"p99_ratio"`
				RSS   float64 `json:"peak_rss_mib"`
			}
			if json.Unmarshal(b.Flood, &f) == nil {
				add("login flood: reader p99 flood/idle ("+b.Name+")", f.Ratio, "≤ 5×", f.Ratio <= 5, fmt.Sprintf("%.1f×", f.Ratio))
				add("login flood: peak RSS ("+b.Name+")", f.RSS, "< 512 MiB", f.RSS < 512, fmt.Sprintf("%.0f MiB", f.RSS))
			}
		}
	}
	add("start-up to ready (sqlite, fresh)", s.Startup.ReadyMs/1000, "< 1 s", s.Startup.ReadyMs < 1000, fmt.Sprintf("%.0f ms", s.Startup.ReadyMs))
	add("idle RSS", s.Startup.IdleRSSMi, "< 40 MiB", s.Startup.IdleRSSMi < 40, fmt.Sprintf("%.1f MiB", s.Startup.IdleRSSMi))
}

func (s *Summary) print() {
	fmt.Printf("\n%-16s %-34s %9s %9s %9s\n", "backend", "GET, through TLS", "req/s", "p50 ms", "p99 ms")
	for _, b := range s.Backends {
		for _, row := range []struct {
			what string
			l    Load
		}{
			{"bare handler /projects/:id", b.Bare},
			{"full chain /projects/:id", b.Full},
			{"full chain, audit off", b.FullNoAudit},
			{"list /projects, fewer others", b.Scaling["list_small"]},
			{"read /projects/:id, 100× others", b.Scaling["read_large"]},
			{"list /projects, 100× others", b.Scaling["list_large"]},
		} {
			fmt.Printf("%-16s %-34s %9.0f %9.2f %9.2f\n", b.Name, row.what, row.l.RPS, row.l.P50ms, row.l.P99ms)
		}
	}
	fmt.Printf("\n%-52s %10s %10s %s\n", "budget", "measured", "limit", "")
	for _, b := range s.Budgets {
		verdict := "met"
		switch {
		case b.Limit == shownOnly:
			verdict = ""
		case !b.Met:
			verdict = "NOT MET"
		}
		fmt.Printf("%-52s %10s %10s %s\n", b.Name, b.Shown, b.Limit, verdict)
	}
}
