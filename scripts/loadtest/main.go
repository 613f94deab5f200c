// Command loadtest measures what a login flood does to the other clients
// of a running Rampart server (issue 4, "Measure"): one reader client GETs
// /v1/projects at a steady rate, first alone (idle), then while many
// clients POST /v1/auth/login with wrong passwords (flood). It reports the
// reader's p50/p99 in both phases and their ratio, the answers the flood
// got, and the server's peak resident memory (VmHWM), and fails when the
// budget is broken: flood p99 above 5× idle p99, or peak RSS of 512 MiB
// or more.
//
// scripts/flood-login.sh builds and starts the server and runs this; see
// there. It uses the standard library only and imports nothing of this
// module: it talks to the server over HTTPS like any client, trusting the
// development CA it is given (never skipping verification).
//
//	loadtest freeport
//	loadtest run   -base https://127.0.0.1:PORT -ca data/tls/dev-ca.pem -pid PID [flags]
//	loadtest flood -base ... -ca ... -clients 200 -duration 11s   (started by run)
//
// The flood runs in a child process so that its 200 goroutines do not
// delay the reader's own goroutine: the latency measured is the server's.
// Each flood client connects from its own loopback address
// (127.1.x.y; all of 127.0.0.0/8 is this host on Linux) and the reader
// from 127.0.0.2, so that per-IP limits see 200 attackers and one reader,
// as they would on a network, and the reader is never limited for the
// flood's requests.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "freeport":
		err = freePort()
	case "run":
		err = run(os.Args[2:])
	case "flood":
		err = flood(os.Args[2:])
	default:
		usage()
	}
	if errors.Is(err, errBudget) {
		os.Exit(1)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(2)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: loadtest freeport | run -base URL -ca FILE -pid PID [flags] | flood -base URL -ca FILE [flags]")
	os.Exit(2)
}

// errBudget is the error of a run that measured a broken budget (exit 1;
// any other error is exit 2).
var errBudget = errors.New("budget broken")

func freePort() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	fmt.Println(ln.Addr().(*net.TCPAddr).Port)
	return nil
}

// client returns an HTTPS client that trusts the CA in caFile only and,
// when src is not nil, connects from src. Each client keeps one
// keep-alive connection (HTTP/1.1: a custom TLS configuration switches
// off HTTP/2), as a browser tab or a script would.
func client(caFile string, src net.IP) (*http.Client, error) {
	pemBytes, err := os.ReadFile(caFile) // #nosec G304 -- the operator names the CA file on the command line
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pemBytes) {
		return nil, fmt.Errorf("%s holds no PEM certificate", caFile)
	}
	d := &net.Dialer{Timeout: 10 * time.Second}
	if src != nil {
		d.LocalAddr = &net.TCPAddr{IP: src}
	}
	tr := &http.Transport{
		DialContext:         d.DialContext,
		TLSClientConfig:     &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		MaxIdleConnsPerHost: 1,
		IdleConnTimeout:     time.Minute,
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}, nil
}

// canBind reports whether this host lets a client use src as its address.
func canBind(src net.IP) bool {
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return false
	}
	defer ln.Close()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src}, Timeout: time.Second}
	conn, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		return false
	}
	_ = conn.Close() // only whether the connection could be made matters
	return true
}

// floodSource is the address of flood client i: 127.1.0.1, 127.1.0.2, ...
func floodSource(i int) net.IP {
	n := uint16(i + 1) // #nosec G115 -- i < -clients, far below 65535 addresses
	return net.IPv4(127, 1, byte(n>>8), byte(n&0xff))
}

var readerSource = net.IPv4(127, 0, 0, 2)

// send makes one request and returns the status and the body.
func send(c *http.Client, method, url, token, body string) (int, []byte, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// ---- run -------------------------------------------------------------

type runFlags struct {
	base, ca, metrics, label string
	pid                      int
	idle, flood, ramp        time.Duration
	clients                  int
	rate                     float64
	maxRatio                 float64
	maxRSSMiB                int
	spread                   bool
	jsonOut                  string
}

func run(args []string) error {
	var f runFlags
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	fs.StringVar(&f.base, "base", "", "server URL, https://127.0.0.1:PORT")
	fs.StringVar(&f.ca, "ca", "", "PEM file of the CA to trust (the development CA)")
	fs.StringVar(&f.metrics, "metrics", "", "metrics URL (https://127.0.0.1:PORT/metrics), optional")
	fs.StringVar(&f.label, "label", "", "what this run is, for the report")
	fs.IntVar(&f.pid, "pid", 0, "server process ID, for its peak RSS (/proc/PID/status)")
	fs.DurationVar(&f.idle, "idle", 10*time.Second, "length of the idle phase")
	fs.DurationVar(&f.flood, "flood", 10*time.Second, "length of the measured flood phase")
	fs.DurationVar(&f.ramp, "ramp", time.Second, "flood time before the reader measures (connections being made)")
	fs.IntVar(&f.clients, "clients", 200, "concurrent flood clients")
	fs.Float64Var(&f.rate, "rate", 50, "reader requests a second")
	fs.Float64Var(&f.maxRatio, "max-ratio", 5, "budget: flood p99 / idle p99")
	fs.IntVar(&f.maxRSSMiB, "max-rss-mib", 512, "budget: peak RSS must stay below this many MiB")
	fs.BoolVar(&f.spread, "spread", true, "give every flood client its own loopback address")
	fs.StringVar(&f.jsonOut, "json", "", "also write the figures to this file as JSON (scripts/bench)")
	_ = fs.Parse(args) // ExitOnError: Parse exits on a bad flag
	if f.base == "" || f.ca == "" || f.pid == 0 {
		return errors.New("run needs -base, -ca and -pid")
	}
	if f.spread && (!canBind(readerSource) || !canBind(floodSource(f.clients-1))) {
		fmt.Println("note: this host does not let clients use 127.0.0.2 and 127.1.x.y; every client connects from 127.0.0.1")
		f.spread = false
	}
	var src net.IP
	if f.spread {
		src = readerSource
	}
	reader, err := client(f.ca, src)
	if err != nil {
		return err
	}
	if err := waitHealthy(reader, f.base, 60*time.Second); err != nil {
		return err
	}
	token, err := setUp(reader, f.base)
	if err != nil {
		return err
	}
	listURL := f.base + "/v1/projects"
	// Warm up: the connection, the TLS session, the server's caches.
	for range 20 {
		if _, err := readOnce(reader, listURL, token); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}

	mem := watchMemory(f.pid)
	idleCPU, idleHost := startCPU(f.pid), startHostCPU()
	idle := readFor(reader, listURL, token, f.rate, f.idle)
	idleCores, idleHostCores := idleCPU.cores(), idleHost.cores()
	idleRSS := mem.peakSince()
	before := scrape(f.ca, f.metrics)

	// The flood: a child process, for ramp + flood + a little more.
	self, err := os.Executable()
	if err != nil {
		return err
	}
	floodFor := f.ramp + f.flood + 500*time.Millisecond
	var out bytes.Buffer
	// #nosec G204 -- runs this program itself with its own flags
	child := exec.Command(self, "flood", "-base", f.base, "-ca", f.ca, "-clients", strconv.Itoa(f.clients),
		"-duration", floodFor.String(), "-spread="+strconv.FormatBool(f.spread))
	child.Stdout, child.Stderr = &out, os.Stderr
	if err := child.Start(); err != nil {
		return err
	}
	time.Sleep(f.ramp)
	floodCPU, floodHost := startCPU(f.pid), startHostCPU()
	childCPU := startCPU(child.Process.Pid)
	flooded := readFor(reader, listURL, token, f.rate, f.flood)
	floodCores, childCores, floodHostCores := floodCPU.cores(), childCPU.cores(), floodHost.cores()
	if err := child.Wait(); err != nil {
		return fmt.Errorf("flood: %w", err)
	}
	after := scrape(f.ca, f.metrics)
	var logins floodResult
	if err := json.Unmarshal(out.Bytes(), &logins); err != nil {
		return fmt.Errorf("flood answered %q: %w", out.String(), err)
	}
	floodRSS := mem.peakSince()
	mem.stop()
	hwm, err := procStatusKiB(f.pid, "VmHWM")
	if err != nil {
		return err
	}

	// The report.
	fmt.Printf("\n== %s\n", f.label)
	floodFrom := "127.0.0.1"
	if f.spread {
		floodFrom = "127.1.0.1 and up (one address each)"
	}
	fmt.Printf("reader: GET /v1/projects at %.0f/s from %s; flood: %d clients POSTing /v1/auth/login (unknown e-mail addresses, wrong passwords) from %s\n",
		f.rate, srcName(src, "127.0.0.1"), f.clients, floodFrom)
	fmt.Printf("%-14s %8s %9s %9s %9s %9s %s\n", "", "requests", "p50", "p90", "p99", "max", "not 200")
	idle.print("reader idle")
	flooded.print("reader flood")
	ratio := flooded.pct(0.99).Seconds() / idle.pct(0.99).Seconds()
	ratioOK := ratio <= f.maxRatio && flooded.failed == 0 && idle.failed == 0
	fmt.Printf("reader p99 flood/idle: %.1f× (budget ≤ %.0f×)%s\n", ratio, f.maxRatio, verdict(ratioOK))
	if flooded.failed > 0 || idle.failed > 0 {
		fmt.Printf("  the reader got answers other than 200: %v idle, %v flood (counted as a failure)\n", idle.statuses, flooded.statuses)
	}
	fmt.Printf("logins during the flood (%.1f s): %d sent, %.0f/s; answers: %s\n",
		floodFor.Seconds(), logins.Sent, float64(logins.Sent)/floodFor.Seconds(), logins.summary())
	fmt.Printf("  login latency (as the attackers see it): p50 %s, p99 %s, max %s\n",
		ms(logins.P50), ms(logins.P99), ms(logins.Max))
	if v, ok := after.delta(before, "rampart_password_verifications_total"); ok {
		fmt.Printf("  Argon2id verifications the server ran: %.0f (%.0f/s)\n", v, v/(after.at.Sub(before.at).Seconds()))
	}
	for _, name := range []string{"rampart_ratelimit_store_errors_total", "rampart_ratelimit_fail_closed_total", "rampart_ratelimit_fallback_total"} {
		if v, ok := after.delta(before, name); ok && v > 0 {
			fmt.Printf("  %s: +%.0f\n", name, v)
		}
	}
	fmt.Printf("CPU (cores busy; %d CPUs, server GOMAXPROCS %s):\n", runtime.NumCPU(), after.value("go_sched_gomaxprocs_threads", "?"))
	fmt.Printf("  idle:  server %.2f, whole host %.2f\n", idleCores, idleHostCores)
	fmt.Printf("  flood: server %.2f, flood clients %.2f, whole host %.2f\n", floodCores, childCores, floodHostCores)
	if other := floodHostCores - floodCores - childCores; other > 0.3 || idleHostCores-idleCores > 0.3 {
		fmt.Printf("  note: other processes used about %.1f cores idle and %.1f during the flood: the numbers are not from a quiet host\n",
			max(idleHostCores-idleCores, 0), max(other, 0))
	}
	rssOK := hwm < int64(f.maxRSSMiB)<<10
	fmt.Printf("server RSS: peak %s during idle, %s during the flood; VmHWM (peak of the process) %s (budget < %d MiB)%s\n",
		mib(idleRSS), mib(floodRSS), mib(hwm), f.maxRSSMiB, verdict(rssOK))
	if f.jsonOut != "" {
		summary := map[string]any{
			"reader_idle_p50_ms": msf(idle.pct(0.5)), "reader_idle_p99_ms": msf(idle.pct(0.99)),
			"reader_flood_p50_ms": msf(flooded.pct(0.5)), "reader_flood_p99_ms": msf(flooded.pct(0.99)),
			"p99_ratio": ratio, "reader_failures": idle.failed + flooded.failed,
			"logins_sent": logins.Sent, "peak_rss_mib": float64(hwm) / 1024, "ok": ratioOK && rssOK,
		}
		b, err := json.Marshal(summary)
		if err != nil {
			return err
		}
		if err := os.WriteFile(f.jsonOut, b, 0o600); err != nil {
			return err
		}
	}
	if !ratioOK || !rssOK {
		fmt.Println("RESULT: FAIL")
		return errBudget
	}
	fmt.Println("RESULT: ok")
	return nil
}

// msf is d in milliseconds, for JSON.
func msf(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func srcName(ip net.IP, def string) string {
	if ip == nil {
		return def
	}
	return ip.String()
}

func verdict(ok bool) string {
	if ok {
		return "  ok"
	}
	return "  FAIL"
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond)) }

func mib(kib int64) string { return fmt.Sprintf("%.0f MiB", float64(kib)/1024) }

func waitHealthy(c *http.Client, base string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		status, _, err := send(c, http.MethodGet, base+"/healthz", "", "")
		if err == nil && status == http.StatusOK {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the server did not answer /healthz within %s (last: %d %v)", limit, status, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// setUp registers a user, logs in and creates a project; it returns the
// session token.
func setUp(c *http.Client, base string) (string, error) {
	email := "reader-" + randomHex(6) + "@example.com"
	password := "reader passphrase " + randomHex(8)
	body := fmt.Sprintf(`{"email":%q,"password":%q,"display_name":"Flood Reader"}`, email, password)
	if status, b, err := send(c, http.MethodPost, base+"/v1/auth/register", "", body); err != nil || status != http.StatusCreated {
		return "", fmt.Errorf("register: %d %s %v", status, b, err)
	}
	status, b, err := send(c, http.MethodPost, base+"/v1/auth/login", "", fmt.Sprintf(`{"email":%q,"password":%q}`, email, password))
	var login struct{ Token string }
	if err != nil || status != http.StatusOK || json.Unmarshal(b, &login) != nil || login.Token == "" {
		return "", fmt.Errorf("login: %d %s %v", status, b, err)
	}
	if status, b, err := send(c, http.MethodPost, base+"/v1/projects", login.Token, `{"name":"flood reader","description":"read during the login flood"}`); err != nil || status != http.StatusCreated {
		return "", fmt.Errorf("create a project: %d %s %v", status, b, err)
	}
	return login.Token, nil
}

func readOnce(c *http.Client, url, token string) (int, error) {
	status, _, err := send(c, http.MethodGet, url, token, "")
	if err == nil && status != http.StatusOK {
		return status, fmt.Errorf("GET %s: %d", url, status)
	}
	return status, err
}

// phase is what the reader saw in one phase.
type phase struct {
	lat      []time.Duration // of the 200 answers, sorted
	failed   int
	statuses map[string]int // of the others
}

// readFor GETs url at rate requests a second for d, one request at a
// time; a request that takes longer than the interval delays the next one.
// The latency is from sending the request to having read the whole answer.
func readFor(c *http.Client, url, token string, rate float64, d time.Duration) phase {
	p := phase{statuses: map[string]int{}}
	interval := time.Duration(float64(time.Second) / rate)
	end := time.Now().Add(d)
	next := time.Now()
	for next.Before(end) {
		time.Sleep(time.Until(next))
		start := time.Now()
		status, err := readOnce(c, url, token)
		took := time.Since(start)
		switch {
		case err == nil:
			p.lat = append(p.lat, took)
		case status != 0:
			p.failed++
			p.statuses[strconv.Itoa(status)]++
		default:
			p.failed++
			p.statuses["error"]++
		}
		next = next.Add(interval)
		if now := time.Now(); next.Before(now) {
			next = now
		}
	}
	slices.Sort(p.lat)
	return p
}

// pct is the nearest-rank percentile q (0 < q ≤ 1) of sorted latencies.
func pct(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(i, 0)]
}

func (p phase) pct(q float64) time.Duration { return pct(p.lat, q) }

func (p phase) print(name string) {
	var maxLat time.Duration
	if len(p.lat) > 0 {
		maxLat = p.lat[len(p.lat)-1]
	}
	fmt.Printf("%-14s %8d %9s %9s %9s %9s %d\n", name, len(p.lat)+p.failed,
		ms(p.pct(0.5)), ms(p.pct(0.9)), ms(p.pct(0.99)), ms(maxLat), p.failed)
}

// ---- server memory and CPU -------------------------------------------

// procStatusKiB reads a "Vm...: N kB" line of /proc/PID/status.
func procStatusKiB(pid int, field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if ok && name == field {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no %s", pid, field)
}

// memWatch samples the server's VmRSS every 50 ms.
type memWatch struct {
	peak atomic.Int64
	done chan struct{}
	wg   sync.WaitGroup
}

func watchMemory(pid int) *memWatch {
	m := &memWatch{done: make(chan struct{})}
	m.wg.Go(func() {
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			if kib, err := procStatusKiB(pid, "VmRSS"); err == nil && kib > m.peak.Load() {
				m.peak.Store(kib)
			}
			select {
			case <-m.done:
				return
			case <-t.C:
			}
		}
	})
	return m
}

// peakSince returns the peak since the last call.
func (m *memWatch) peakSince() int64 { return m.peak.Swap(0) }

func (m *memWatch) stop() { close(m.done); m.wg.Wait() }

// cpuClock measures the CPU time a process used from its start.
type cpuClock struct {
	pid   int
	ticks int64
	at    time.Time
}

// clockTicks is USER_HZ, 100 on every Linux that Go supports.
const clockTicks = 100

func cpuTicks(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name may hold spaces; the fields after it do not.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return utime + stime
}

func startCPU(pid int) cpuClock { return cpuClock{pid, cpuTicks(pid), time.Now()} }

// cores is the CPU used since start, in cores (1.0 = one core all along).
func (c cpuClock) cores() float64 {
	used := float64(cpuTicks(c.pid)-c.ticks) / clockTicks
	return used / time.Since(c.at).Seconds()
}

// hostCPU measures the CPU time of the whole host (/proc/stat).
type hostCPU struct {
	busy float64 // seconds
	at   time.Time
}

func hostBusy() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	fields := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	var busy int64
	for i, f := range fields[1:] {
		n, _ := strconv.ParseInt(f, 10, 64)
		if i != 3 && i != 4 && i < 8 { // not idle, not iowait; no guest (counted in user)
			busy += n
		}
	}
	return float64(busy) / clockTicks
}

func startHostCPU() hostCPU { return hostCPU{hostBusy(), time.Now()} }

func (h hostCPU) cores() float64 { return (hostBusy() - h.busy) / time.Since(h.at).Seconds() }

// ---- metrics ----------------------------------------------------------

// metricsSample holds the sums of the samples of each metric name.
type metricsSample struct {
	at   time.Time
	vals map[string]float64
}

func scrape(caFile, url string) metricsSample {
	s := metricsSample{at: time.Now(), vals: map[string]float64{}}
	if url == "" {
		return s
	}
	c, err := client(caFile, nil)
	if err != nil {
		return s
	}
	status, b, err := send(c, http.MethodGet, url, "", "")
	if err != nil || status != http.StatusOK {
		return s
	}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		name := line[:i]
		if j := strings.IndexByte(name, '{'); j >= 0 {
			name = name[:j]
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			s.vals[name] += v
		}
	}
	return s
}

func (s metricsSample) delta(before metricsSample, name string) (float64, bool) {
	a, ok1 := s.vals[name]
	b, ok2 := before.vals[name]
	return a - b, ok1 && ok2
}

func (s metricsSample) value(name, def string) string {
	if v, ok := s.vals[name]; ok {
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return def
}

// ---- flood ------------------------------------------------------------

// floodResult is what the flood child prints (JSON) when it is done.
type floodResult struct {
	Sent     int            `json:"sent"`
	Statuses map[string]int `json:"statuses"`
	P50      time.Duration  `json:"p50"`
	P99      time.Duration  `json:"p99"`
	Max      time.Duration  `json:"max"`
}

func (r floodResult) summary() string {
	var parts []string
	for _, k := range []string{"401", "429", "503"} {
		parts = append(parts, fmt.Sprintf("%s: %d", k, r.Statuses[k]))
	}
	var other []string
	for k, n := range r.Statuses {
		if k != "401" && k != "429" && k != "503" {
			other = append(other, fmt.Sprintf("%s: %d", k, n))
		}
	}
	slices.Sort(other)
	if len(other) > 0 {
		parts = append(parts, "other "+strings.Join(other, ", "))
	}
	return strings.Join(parts, ", ")
}

func flood(args []string) error {
	fs := flag.NewFlagSet("flood", flag.ExitOnError)
	base := fs.String("base", "", "server URL")
	caFile := fs.String("ca", "", "PEM file of the CA to trust")
	clients := fs.Int("clients", 200, "concurrent clients")
	duration := fs.Duration("duration", 10*time.Second, "how long to flood")
	spread := fs.Bool("spread", true, "one loopback address per client")
	_ = fs.Parse(args) // ExitOnError: Parse exits on a bad flag
	if *base == "" || *caFile == "" {
		return errors.New("flood needs -base and -ca")
	}
	ctx, cancel := context.WithTimeout(context.Background(), *duration)
	defer cancel()
	type tally struct {
		statuses map[string]int
		lat      []time.Duration
	}
	tallies := make([]tally, *clients)
	var wg sync.WaitGroup
	for i := range *clients {
		var src net.IP
		if *spread {
			src = floodSource(i)
		}
		c, err := client(*caFile, src)
		if err != nil {
			return err
		}
		tallies[i].statuses = map[string]int{}
		wg.Go(func() {
			t := &tallies[i]
			for n := 0; ctx.Err() == nil; n++ {
				body := fmt.Sprintf(`{"email":"flood-%d-%d-%s@example.com","password":"not the password %d"}`, i, n, randomHex(3), n)
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, *base+"/v1/auth/login", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				start := time.Now()
				resp, err := c.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						t.statuses["error"]++
						time.Sleep(10 * time.Millisecond)
					}
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body) // drained for keep-alive; its content does not matter
				_ = resp.Body.Close()
				t.statuses[strconv.Itoa(resp.StatusCode)]++
				t.lat = append(t.lat, time.Since(start))
			}
		})
	}
	wg.Wait()
	res := floodResult{Statuses: map[string]int{}}
	var all []time.Duration
	for _, t := range tallies {
		for k, n := range t.statuses {
			res.Statuses[k] += n
			res.Sent += n
		}
		all = append(all, t.lat...)
	}
	slices.Sort(all)
	res.P50, res.P99 = pct(all, 0.5), pct(all, 0.99)
	if len(all) > 0 {
		res.Max = all[len(all)-1]
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}
