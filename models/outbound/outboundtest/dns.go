package outboundtest

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"
)

// Answer is what the server answers for a name: its addresses (A for the
// IPv4 ones, AAAA for the IPv6 ones), NXDOMAIN when there are none, or
// SERVFAIL (a resolver failure, not an answer).
type Answer struct {
	Addrs    []netip.Addr
	ServFail bool
}

// DNS is a DNS server on 127.0.0.1 (TCP). Its answers come from a function
// of the name (lower case, no trailing dot) and of how many A questions
// for that name it has had, this one included; AAAA questions see the
// same answer without being counted.
type DNS struct {
	addr    string
	mu      sync.Mutex
	asked   map[string]int
	answer  func(name string, n int) Answer
	queries atomic.Int64
}

// NewDNS starts a server answering with answer; it stops with the test.
func NewDNS(tb testing.TB, answer func(name string, n int) Answer) *DNS {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	d := &DNS{addr: ln.Addr().String(), asked: map[string]int{}, answer: answer}
	started := make(chan struct{})
	srv := &dns.Server{Listener: ln, Net: "tcp", Handler: dns.HandlerFunc(d.serve), NotifyStartedFunc: func() { close(started) }}
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	tb.Cleanup(func() { _ = srv.Shutdown() })
	return d
}

func (d *DNS) serve(w dns.ResponseWriter, req *dns.Msg) {
	d.queries.Add(1)
	m := new(dns.Msg)
	m.SetReply(req)
	for _, q := range req.Question {
		name := strings.TrimSuffix(strings.ToLower(q.Name), ".")
		a := d.answerFor(name, q.Qtype == dns.TypeA)
		switch {
		case a.ServFail:
			m.Rcode = dns.RcodeServerFailure
			continue
		case len(a.Addrs) == 0:
			m.Rcode = dns.RcodeNameError
			continue
		}
		for _, addr := range a.Addrs {
			hdr := dns.RR_Header{Name: q.Name, Class: dns.ClassINET, Ttl: 0}
			switch {
			case q.Qtype == dns.TypeA && addr.Is4():
				hdr.Rrtype = dns.TypeA
				m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: addr.AsSlice()})
			case q.Qtype == dns.TypeAAAA && addr.Is6():
				hdr.Rrtype = dns.TypeAAAA
				m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr, AAAA: addr.AsSlice()})
			}
		}
	}
	_ = w.WriteMsg(m)
}

// answerFor returns the answer for name; count tells whether the question
// counts (A) or only looks (AAAA).
func (d *DNS) answerFor(name string, count bool) Answer {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := d.asked[name]
	if count {
		n++
		d.asked[name] = n
	}
	return d.answer(name, n)
}

// Resolver is a Go resolver that asks only this server.
func (d *DNS) Resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var dl net.Dialer
		return dl.DialContext(ctx, "tcp", d.addr)
	}}
}

// Queries is how many DNS messages the server has had.
func (d *DNS) Queries() int64 { return d.queries.Load() }

// Table is a name → addresses table that a test can change while the
// server answers from it (Table.Answer).
type Table struct {
	mu sync.Mutex
	m  map[string][]netip.Addr
}

// NewTable returns a table of names, each with its addresses.
func NewTable(entries map[string][]string) *Table {
	t := &Table{m: map[string][]netip.Addr{}}
	for name, addrs := range entries {
		t.Set(name, addrs...)
	}
	return t
}

// Set makes name answer with addrs (none: NXDOMAIN).
func (t *Table) Set(name string, addrs ...string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var as []netip.Addr
	for _, a := range addrs {
		as = append(as, netip.MustParseAddr(a))
	}
	t.m[strings.TrimSuffix(strings.ToLower(name), ".")] = as
}

// Answer answers from the table, whatever the count.
func (t *Table) Answer(name string, _ int) Answer {
	t.mu.Lock()
	defer t.mu.Unlock()
	return Answer{Addrs: t.m[name]}
}
