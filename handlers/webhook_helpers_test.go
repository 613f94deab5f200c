package handlers

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/rampart-go/rampart/models"
	"github.com/rampart-go/rampart/models/outbound"
)

// The webhook tests run against real network peers on this machine: a DNS
// server (miekg/dns) that answers test host names with the addresses a
// test chooses, and HTTPS receivers (httptest TLS servers) on 127.0.0.1.
// A receiver on loopback is reachable only because the test's outbound
// client admits 127.0.0.1/32 (Options.AllowPrefixes, a test-only
// allowlist); without it, the same URL is refused.

// testDNS is an authoritative-for-everything DNS server with a fixed table.
type testDNS struct {
	addr    string
	mu      sync.Mutex
	answers map[string][]netip.Addr // fully qualified name → addresses
	queries atomic.Int64
}

func newTestDNS(tb testing.TB, answers map[string][]string) *testDNS {
	tb.Helper()
	d := &testDNS{answers: map[string][]netip.Addr{}}
	for name, addrs := range answers {
		d.set(name, addrs...)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("dns listen: %v", err)
	}
	d.addr = pc.LocalAddr().String()
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(d.serve), NotifyStartedFunc: func() { close(started) }}
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	tb.Cleanup(func() { _ = srv.Shutdown() })
	return d
}

// set makes name answer with addrs (none: NXDOMAIN). Names that start
// with "servfail." always answer SERVFAIL.
func (d *testDNS) set(name string, addrs ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var as []netip.Addr
	for _, a := range addrs {
		as = append(as, netip.MustParseAddr(a))
	}
	d.answers[dns.Fqdn(strings.ToLower(name))] = as
}

func (d *testDNS) serve(w dns.ResponseWriter, req *dns.Msg) {
	d.queries.Add(1)
	m := new(dns.Msg)
	m.SetReply(req)
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, q := range req.Question {
		if strings.HasPrefix(strings.ToLower(q.Name), "servfail.") {
			// A resolver failure, not an answer.
			m.Rcode = dns.RcodeServerFailure
			continue
		}
		addrs, ok := d.answers[strings.ToLower(q.Name)]
		if !ok {
			m.Rcode = dns.RcodeNameError
			continue
		}
		for _, a := range addrs {
			hdr := dns.RR_Header{Name: q.Name, Class: dns.ClassINET, Ttl: 0}
			switch {
			case q.Qtype == dns.TypeA && a.Is4():
				hdr.Rrtype = dns.TypeA
				m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: a.AsSlice()})
			case q.Qtype == dns.TypeAAAA && a.Is6():
				hdr.Rrtype = dns.TypeAAAA
				m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr, AAAA: a.AsSlice()})
			}
		}
	}
	_ = w.WriteMsg(m)
}

// resolver is a Go resolver that asks only this server.
func (d *testDNS) resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var dl net.Dialer
		return dl.DialContext(ctx, "udp", d.addr)
	}}
}

// receivedHook is one request a receiver got.
type receivedHook struct {
	header http.Header
	body   []byte
}

// testReceiver is an HTTPS webhook receiver on 127.0.0.1 whose answer a
// test chooses.
type testReceiver struct {
	srv     *httptest.Server
	mu      sync.Mutex
	got     []receivedHook
	respond func(w http.ResponseWriter, r *http.Request) // nil: 204
}

func newTestReceiver(tb testing.TB) *testReceiver {
	tb.Helper()
	rc := &testReceiver{}
	rc.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		rc.mu.Lock()
		rc.got = append(rc.got, receivedHook{header: r.Header.Clone(), body: body})
		respond := rc.respond
		rc.mu.Unlock()
		if respond == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		respond(w, r)
	}))
	tb.Cleanup(rc.srv.Close)
	return rc
}

func (rc *testReceiver) port() int {
	u, _ := url.Parse(rc.srv.URL)
	p, _ := strconv.Atoi(u.Port())
	return p
}

// url is the receiver's URL under a test host name that the test DNS
// answers with 127.0.0.1.
func (rc *testReceiver) url(host, path string) string {
	return "https://" + host + ":" + strconv.Itoa(rc.port()) + path
}

func (rc *testReceiver) setRespond(fn func(w http.ResponseWriter, r *http.Request)) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.respond = fn
}

func (rc *testReceiver) received() []receivedHook {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]receivedHook(nil), rc.got...)
}

// hookHost is the test host name of the receivers: the name in the
// certificate of httptest's TLS servers, which the test DNS answers with
// 127.0.0.1.
const hookHost = "example.com"

// hookEnv is what the outbound client of a test API is built from.
type hookEnv struct {
	dns      *testDNS
	receiver *testReceiver
	roots    *x509.CertPool
}

// defaultHooks is one DNS server and one always-204 receiver shared by
// every test API that does not configure its own (the conformance suite
// sets and tests webhooks through them).
var (
	defaultHooksOnce sync.Once
	defaultHooksEnv  hookEnv
)

// sharedTB keeps shared test servers for the life of the test binary.
type sharedTB struct{ testing.TB }

func (sharedTB) Cleanup(func()) {}

func defaultHooks(tb testing.TB) hookEnv {
	defaultHooksOnce.Do(func() {
		s := sharedTB{tb}
		defaultHooksEnv = newHookEnv(s)
	})
	return defaultHooksEnv
}

func newHookEnv(tb testing.TB) hookEnv {
	rc := newTestReceiver(tb)
	roots := x509.NewCertPool()
	roots.AddCert(rc.srv.Certificate())
	return hookEnv{dns: newTestDNS(tb, map[string][]string{hookHost: {"127.0.0.1"}}), receiver: rc, roots: roots}
}

// options are the outbound options of a test API: the test DNS, the
// receivers' certificate, their port, and 127.0.0.1 admitted (the
// test-only allowlist) unless production is true.
func (h hookEnv) options(production bool) outbound.Options {
	o := outbound.Options{
		Resolver:       h.dns.resolver(),
		RootCAs:        h.roots,
		Ports:          []int{443, h.receiver.port()},
		ConnectTimeout: 2 * time.Second,
		Timeout:        2 * time.Second,
	}
	if !production {
		o.AllowPrefixes = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	}
	return o
}

// webhookDeps builds the webhook parts of Deps over db with client options
// o and dispatcher configuration cfg.
func webhookDeps(tb testing.TB, db *models.DB, o outbound.Options, cfg models.WebhookConfig) WebhookDeps {
	tb.Helper()
	ring, err := models.NewKeyRing(randomBytes(tb, 32), nil)
	if err != nil {
		tb.Fatal(err)
	}
	wh, err := NewWebhookDeps(db, ring, o, cfg)
	if err != nil {
		tb.Fatalf("webhook parts: %v", err)
	}
	return wh
}

// verifySignature checks a Rampart-Signature header the way the README
// tells receivers to, written here independently of the server's code: t
// not older than tolerance, v1 the hex HMAC-SHA256 of "<t>.<body>".
func verifySignature(header, secret string, body []byte, now time.Time, tolerance time.Duration) bool {
	var ts, sig string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	t, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || now.Sub(time.Unix(t, 0)).Abs() > tolerance {
		return false
	}
	want, err := hex.DecodeString(sig)
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "."))
	mac.Write(body)
	return hmac.Equal(mac.Sum(nil), want)
}
