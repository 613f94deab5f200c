package outbound_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampart-go/rampart/models/outbound"
	"github.com/rampart-go/rampart/models/outbound/outboundtest"
)

// receiver is a local HTTPS server that counts the requests reaching it.
type receiver struct {
	srv  *httptest.Server
	hits atomic.Int64
}

func newReceiver(tb testing.TB, h http.HandlerFunc) *receiver {
	tb.Helper()
	r := &receiver{}
	r.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.hits.Add(1)
		h(w, req)
	}))
	// Handshakes the client refuses on purpose are not worth a line.
	r.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	r.srv.StartTLS()
	tb.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) port() int { return r.srv.Listener.Addr().(*net.TCPAddr).Port }

// url is the receiver's URL with path, on 127.0.0.1.
func (r *receiver) url(path string) string { return r.srv.URL + path }

// urlAt is the receiver's URL under another host name (its certificate
// is valid for example.com).
func (r *receiver) urlAt(host, path string) string {
	return "https://" + host + ":" + strconv.Itoa(r.port()) + path
}

// otherRoot is a pool holding one fresh self-signed certificate, not
// the one every httptest server shares.
func otherRoot(tb testing.TB) *x509.CertPool {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "other"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"example.com"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}

// loopback admits 127.0.0.1, where the test receivers listen.
var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}

// optionsFor trusts the receivers' certificates and allows their ports,
// but admits no non-public address: add AllowPrefixes for that.
func optionsFor(rs ...*receiver) outbound.Options {
	pool := x509.NewCertPool()
	var o outbound.Options
	for _, r := range rs {
		pool.AddCert(r.srv.Certificate())
		o.Ports = append(o.Ports, r.port())
	}
	o.RootCAs = pool
	return o
}

func newClient(tb testing.TB, o outbound.Options) *outbound.Client {
	tb.Helper()
	c, err := outbound.New(o)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// newFakeDNS starts a DNS server on 127.0.0.1 whose A answers come from
// answer (nil: NXDOMAIN), given the name and how many times it was asked.
func newFakeDNS(tb testing.TB, answer func(name string, n int) []netip.Addr) *outboundtest.DNS {
	return outboundtest.NewDNS(tb, func(name string, n int) outboundtest.Answer {
		return outboundtest.Answer{Addrs: answer(name, n)}
	})
}

// every answers each name in names with addrs, others with NXDOMAIN.
func every(addrs map[string]string) func(string, int) []netip.Addr {
	return func(name string, _ int) []netip.Addr {
		a, ok := addrs[name]
		if !ok {
			return nil
		}
		return []netip.Addr{netip.MustParseAddr(a)}
	}
}
