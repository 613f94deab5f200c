package handlers

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rampart-go/rampart/models"
	"github.com/rampart-go/rampart/models/outbound"
	"github.com/rampart-go/rampart/models/outbound/outboundtest"
)

// The webhook tests run against real network peers on this machine: a DNS
// server (miekg/dns) that answers test host names with the addresses a
// test chooses, and HTTPS receivers (httptest TLS servers) on 127.0.0.1.
// A receiver on loopback is reachable only because the test's outbound
// client admits 127.0.0.1/32 (Options.AllowPrefixes, a test-only
// allowlist); without it, the same URL is refused.

// testDNS is a DNS server answering from a table the test changes; names
// that start with "servfail." always answer SERVFAIL.
type testDNS struct {
	*outboundtest.DNS
	table *outboundtest.Table
}

func newTestDNS(tb testing.TB, answers map[string][]string) *testDNS {
	tb.Helper()
	table := outboundtest.NewTable(answers)
	d := outboundtest.NewDNS(tb, func(name string, n int) outboundtest.Answer {
		if strings.HasPrefix(name, "servfail.") {
			return outboundtest.Answer{ServFail: true}
		}
		return table.Answer(name, n)
	})
	return &testDNS{DNS: d, table: table}
}

// set makes name answer with addrs (none: NXDOMAIN).
func (d *testDNS) set(name string, addrs ...string) { d.table.Set(name, addrs...) }

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
		Resolver:       h.dns.Resolver(),
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
