package outbound

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"code.dny.dev/ssrf"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/sony/gobreaker/v2"
)

// Defaults of Options.
const (
	DefaultConnectTimeout   = 3 * time.Second
	DefaultTimeout          = 10 * time.Second
	DefaultMaxResponseBytes = 64 << 10
	DefaultUserAgent        = "Rampart-Webhook/1"
	DefaultBreakerFailures  = 5
	DefaultBreakerOpenFor   = 60 * time.Second
	DefaultMaxDestinations  = 10_000
)

// Options configure a Client. The zero value is the production setting
// for user-supplied URLs.
type Options struct {
	// Ports are the destination ports allowed besides DefaultPort (443).
	Ports []int
	// AllowPrefixes are extra ranges admitted although they are not
	// public. For a client of user-supplied URLs: tests only (an httptest
	// TLS server on 127.0.0.1), never from production configuration. A
	// client of its own for an operator-chosen destination (the alert
	// webhook) may admit the operator's internal receiver.
	AllowPrefixes []netip.Prefix
	// Resolver resolves host names, for CheckResolves and for dialling.
	// Nil: net.DefaultResolver. Tests inject one.
	Resolver *net.Resolver
	// RootCAs verify the receivers' certificates. Nil: the system roots.
	RootCAs *x509.CertPool
	// ConnectTimeout bounds the connection: dial and TLS handshake
	// together. Default 3 s.
	ConnectTimeout time.Duration
	// Timeout bounds a whole request, reading the response body included.
	// Default 10 s.
	Timeout time.Duration
	// MaxResponseBytes is the most of a response body that is read (and
	// discarded); a longer body is ClassTooLarge. Default 64 KiB.
	MaxResponseBytes int64
	// UserAgent is sent when the caller's header has none. Default
	// "Rampart-Webhook/1".
	UserAgent string
	// Breaker configures the circuit breaker of each destination.
	Breaker BreakerOptions
}

// BreakerOptions configure the circuit breaker kept for each destination
// (scheme, host and port). A call that fails for the destination's sake
// (ClassRefused at dial time, ClassDNS, ClassConnect, ClassTLS,
// ClassTimeout, ClassTooLarge, or a 429 or 5xx status) counts as a
// failure; Failures of them in a row open the breaker, and calls then
// fail at once with ClassCircuitOpen for OpenFor. Then one call is let
// through (half-open): its success closes the breaker, its failure opens
// it again. A 2xx, 3xx or other 4xx answer is a success for the breaker:
// the destination is up.
type BreakerOptions struct {
	// Failures in a row that open the breaker. Default 5.
	Failures uint32
	// OpenFor is how long an open breaker refuses calls. Default 60 s.
	OpenFor time.Duration
	// MaxDestinations bounds the breakers kept (least recently used
	// forgotten first). Default 10,000.
	MaxDestinations int
	// OnStateChange, when set, is told each change of a destination's
	// breaker ("closed", "open", "half-open"); destination is
	// scheme://host:port.
	OnStateChange func(destination, from, to string)
}

// Error classes of a Result. They are stable strings, safe to store in a
// delivery log and to show to the owner of the URL.
const (
	// ClassRefused: the URL, or an address its host resolved to when
	// dialling, is not allowed (non-public, or a port not allowed).
	ClassRefused = "refused"
	// ClassDNS: the host name could not be resolved.
	ClassDNS = "dns"
	// ClassConnect: the connection could not be made, or broke.
	ClassConnect = "connect"
	// ClassTLS: the TLS handshake failed (certificate not trusted, wrong
	// name, expired, protocol).
	ClassTLS = "tls"
	// ClassTimeout: the connection, the answer or its body took too long.
	ClassTimeout = "timeout"
	// ClassRedirect: the receiver answered 3xx. Redirects are never
	// followed.
	ClassRedirect = "redirect"
	// ClassTooLarge: the response body was over Options.MaxResponseBytes.
	ClassTooLarge = "too_large"
	// ClassStatus: the receiver answered with a status other than 2xx
	// and 3xx.
	ClassStatus = "status"
	// ClassCircuitOpen: the destination failed too often lately; the call
	// was not made.
	ClassCircuitOpen = "circuit_open"
	// ClassCanceled: the caller's context was canceled before an answer.
	// It does not count against the destination.
	ClassCanceled = "canceled"
)

// Result is what a call to a receiver may be trusted for: no header or
// body of the answer is kept.
type Result struct {
	// StatusCode is the answer's status, 0 when there was no answer.
	StatusCode int
	// Latency is the time from the start of the call to the end of the
	// (bounded) body.
	Latency time.Duration
	// Class is "" for a 2xx, else one of the Class constants.
	Class string
	// Err says what went wrong, for logs. It never holds the URL (whose
	// path or query may hold a token) nor anything of the response body;
	// it may name addresses and library messages, so show Class, not
	// Err, to clients.
	Err error
}

// Summary says what happened in one line that is safe to show to the
// owner of the URL (a delivery log, the answer of a test ping): the
// refusal's reason, or a fixed text for the class with the status code.
// Unlike Err, it never names an address, a library message or anything
// of the response.
func (r Result) Summary() string {
	var refusal *RefusedError
	switch r.Class {
	case "":
		return "delivered: the receiver answered " + strconv.Itoa(r.StatusCode)
	case ClassRefused:
		if errors.As(r.Err, &refusal) {
			return refusal.Reason
		}
		return "the URL or the address it leads to is not allowed"
	case ClassDNS:
		return "the URL's host name could not be resolved"
	case ClassConnect:
		return "the connection to the receiver could not be made or broke"
	case ClassTLS:
		return "the TLS handshake failed: the certificate is not trusted or not for this host, or the protocol is not supported"
	case ClassTimeout:
		return "the receiver did not answer in time"
	case ClassRedirect:
		return "the receiver answered " + strconv.Itoa(r.StatusCode) + "; redirects are not followed"
	case ClassTooLarge:
		return "the receiver's answer was too large"
	case ClassStatus:
		return "the receiver answered " + strconv.Itoa(r.StatusCode)
	case ClassCircuitOpen:
		return "the receiver failed too often lately; calls to it are paused"
	case ClassCanceled:
		return "the call was canceled"
	}
	return "the call failed"
}

// Client sends requests through the guarded transport. It is safe for
// concurrent use.
type Client struct {
	policy  *policy
	opts    Options
	http    *http.Client
	breaker BreakerOptions

	mu       sync.Mutex
	breakers *lru.Cache[string, *gobreaker.CircuitBreaker[Result]]
}

// policy is what ValidateURL and the dialer check against.
type policy struct {
	ports    []int
	guardian *ssrf.Guardian
}

func newPolicy(o Options) (*policy, error) {
	ports := []int{DefaultPort}
	for _, p := range o.Ports {
		if p < 1 || p > 65535 {
			return nil, fmt.Errorf("outbound: port %d is not a port number", p)
		}
		if !slices.Contains(ports, p) {
			ports = append(ports, p)
		}
	}
	var v4, v6 []netip.Prefix
	for _, p := range o.AllowPrefixes {
		if !p.IsValid() {
			return nil, errors.New("outbound: an allowed prefix is not valid")
		}
		if p.Addr().Is4() {
			v4 = append(v4, p.Masked())
		} else {
			v6 = append(v6, p.Masked())
		}
	}
	u16 := make([]uint16, len(ports))
	for i, p := range ports {
		u16[i] = uint16(p) // #nosec G115 -- checked to be 1..65535 above
	}
	g := ssrf.New(ssrf.WithPorts(u16...), ssrf.WithAllowedV4Prefixes(v4...), ssrf.WithAllowedV6Prefixes(v6...))
	return &policy{ports: ports, guardian: g}, nil
}

func (p *policy) portList() string {
	s := make([]string, len(p.ports))
	for i, n := range p.ports {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}

// control is the net.Dialer's Control: it runs after resolution, on the
// very address being connected to, so a host name cannot lead anywhere
// ValidateURL would not have let an IP literal go (DNS rebinding
// included).
func (p *policy) control(network, address string, _ syscall.RawConn) error {
	if err := p.guardian.Safe(network, address, nil); err != nil {
		ap, perr := netip.ParseAddrPort(address)
		switch {
		case perr != nil:
			return &dialRefusal{RefusedError{"the URL's host resolves to an address that cannot be checked"}, err}
		case errors.Is(err, ssrf.ErrProhibitedPort):
			return &dialRefusal{RefusedError{"the URL's port is not allowed (allowed: " + p.portList() + ")"}, err}
		case errors.Is(err, ssrf.ErrProhibitedNetwork):
			return &dialRefusal{RefusedError{"the URL's host cannot be reached over TCP"}, err}
		default:
			return &dialRefusal{RefusedError{"the URL's host resolves to a non-public address (" + describe(ap.Addr().Unmap()) + ")"}, err}
		}
	}
	return nil
}

// dialRefusal is a RefusedError from the dialer, keeping the Guardian's
// error (with the address) for logs.
type dialRefusal struct {
	RefusedError
	cause error
}

func (e *dialRefusal) Error() string { return e.Reason + " [" + e.cause.Error() + "]" }
func (e *dialRefusal) Unwrap() error { return &e.RefusedError }

// New returns a Client for o, with the defaults filled in. It refuses
// ports outside 1..65535, invalid prefixes and negative limits.
func New(o Options) (*Client, error) {
	p, err := newPolicy(o)
	if err != nil {
		return nil, err
	}
	if o.ConnectTimeout < 0 || o.Timeout < 0 || o.MaxResponseBytes < 0 || o.Breaker.OpenFor < 0 || o.Breaker.MaxDestinations < 0 {
		return nil, errors.New("outbound: timeouts and limits must not be negative")
	}
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxResponseBytes == 0 {
		o.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if o.UserAgent == "" {
		o.UserAgent = DefaultUserAgent
	}
	if o.Resolver == nil {
		o.Resolver = net.DefaultResolver
	}
	b := o.Breaker
	if b.Failures == 0 {
		b.Failures = DefaultBreakerFailures
	}
	if b.OpenFor == 0 {
		b.OpenFor = DefaultBreakerOpenFor
	}
	if b.MaxDestinations == 0 {
		b.MaxDestinations = DefaultMaxDestinations
	}
	breakers, err := lru.New[string, *gobreaker.CircuitBreaker[Result]](b.MaxDestinations)
	if err != nil {
		return nil, err
	}
	c := &Client{policy: p, opts: o, breaker: b, breakers: breakers}
	c.http = &http.Client{
		Transport: c.transport(),
		// A redirect is answered, not followed: it could lead anywhere,
		// and the caller's URL was the one checked.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       o.Timeout,
		// No Jar: no cookies are kept or sent.
	}
	return c, nil
}

// tlsConfig is the client TLS of every connection: verification on (the
// system roots or Options.RootCAs), TLS 1.2 at least, HTTP/2 offered.
func (c *Client) tlsConfig(serverName string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		RootCAs:    c.opts.RootCAs,
		ServerName: serverName,
		NextProtos: []string{"h2", "http/1.1"},
	}
}

func (c *Client) transport() *http.Transport {
	dialer := &net.Dialer{
		Timeout:  c.opts.ConnectTimeout,
		Resolver: c.opts.Resolver,
		Control:  c.policy.control,
	}
	return &http.Transport{
		// Never a proxy, and none from HTTPS_PROXY & co.: a proxy would
		// make the connection for us, out of the dial check's sight.
		Proxy:       nil,
		DialContext: dialer.DialContext,
		// Dial and handshake under one ConnectTimeout, and TLS failures
		// told apart from the rest.
		DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(ctx, c.opts.ConnectTimeout)
			defer cancel()
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			raw, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			conn := tls.Client(raw, c.tlsConfig(host))
			if err := conn.HandshakeContext(ctx); err != nil {
				_ = raw.Close()
				return nil, &tlsError{err}
			}
			return conn, nil
		},
		TLSClientConfig:        c.tlsConfig(""),
		TLSHandshakeTimeout:    c.opts.ConnectTimeout,
		ForceAttemptHTTP2:      true,
		DisableCompression:     true, // no gzip bombs: the body is read as sent
		ResponseHeaderTimeout:  c.opts.Timeout,
		MaxResponseHeaderBytes: 32 << 10,
		MaxIdleConns:           64,
		MaxIdleConnsPerHost:    2,
		MaxConnsPerHost:        16,
		IdleConnTimeout:        30 * time.Second,
	}
}

// tlsError marks a failed TLS handshake.
type tlsError struct{ err error }

func (e *tlsError) Error() string { return "TLS handshake: " + e.err.Error() }
func (e *tlsError) Unwrap() error { return e.err }

// ValidateURL is the package's ValidateURL with the client's Options.
func (c *Client) ValidateURL(raw string) (*url.URL, error) {
	return c.policy.validateURL(raw)
}

// CheckResolves resolves u's host (every A and AAAA record) and returns a
// *RefusedError if it does not exist or any address is not public (nor
// in Options.AllowPrefixes): the check at registration time. Any other
// error (a time-out, a failing DNS server) is not a *RefusedError; the
// caller may try again later. u should come from ValidateURL.
func (c *Client) CheckResolves(ctx context.Context, u *url.URL) error {
	host := u.Hostname()
	if a, err := netip.ParseAddr(host); err == nil {
		return c.policy.checkAddr(a, "is")
	}
	addrs, err := c.opts.Resolver.LookupNetIP(ctx, "ip", host)
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return refused("the URL's host name does not resolve")
	case err != nil:
		return fmt.Errorf("resolving the URL's host: %w", err)
	case len(addrs) == 0:
		return refused("the URL's host name does not resolve")
	}
	for _, a := range addrs {
		// An A record may come back as an IPv4-mapped address.
		if err := c.policy.checkAddr(a.Unmap(), "resolves to"); err != nil {
			return err
		}
	}
	return nil
}

// errBreakerFailure tells the breaker that a call failed for the
// destination's sake; errCallerGone that it says nothing about it.
var (
	errBreakerFailure = errors.New("destination failure")
	errCallerGone     = errors.New("caller gone")
)

// Post validates rawURL, then POSTs body with header (a User-Agent is
// added when missing) through the guarded transport, unless the
// destination's breaker is open. It returns only what may be trusted of
// the answer: its status, the latency and an error class.
func (c *Client) Post(ctx context.Context, rawURL string, header http.Header, body []byte) Result {
	u, err := c.ValidateURL(rawURL)
	if err != nil {
		return Result{Class: ClassRefused, Err: err}
	}
	dest := u.Scheme + "://" + net.JoinHostPort(u.Hostname(), portOf(u))
	start := time.Now()
	r, err := c.breakerFor(dest).Execute(func() (Result, error) {
		r := c.post(ctx, u, header, body)
		switch {
		case r.Class == ClassCanceled:
			return r, errCallerGone
		case countsAgainst(r):
			return r, errBreakerFailure
		}
		return r, nil
	})
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		return Result{Class: ClassCircuitOpen, Latency: time.Since(start),
			Err: errors.New("the destination failed too often lately; not called until its breaker closes")}
	}
	return r
}

// countsAgainst reports whether r is a failure of the destination, for
// its breaker.
func countsAgainst(r Result) bool {
	switch r.Class {
	case ClassRefused, ClassDNS, ClassConnect, ClassTLS, ClassTimeout, ClassTooLarge:
		return true
	case ClassStatus:
		return r.StatusCode >= 500 || r.StatusCode == http.StatusTooManyRequests
	}
	return false
}

func portOf(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	return strconv.Itoa(DefaultPort)
}

// breakerFor returns the breaker of dest, made on first use.
func (c *Client) breakerFor(dest string) *gobreaker.CircuitBreaker[Result] {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cb, ok := c.breakers.Get(dest); ok {
		return cb
	}
	st := gobreaker.Settings{
		Name:        dest,
		MaxRequests: 1,
		Timeout:     c.breaker.OpenFor,
		ReadyToTrip: func(n gobreaker.Counts) bool { return n.ConsecutiveFailures >= c.breaker.Failures },
		IsExcluded:  func(err error) bool { return errors.Is(err, errCallerGone) },
	}
	if f := c.breaker.OnStateChange; f != nil {
		st.OnStateChange = func(name string, from, to gobreaker.State) { f(name, from.String(), to.String()) }
	}
	cb := gobreaker.NewCircuitBreaker[Result](st)
	c.breakers.Add(dest, cb)
	return cb
}

// post makes one request to the validated u and classifies its outcome.
func (c *Client) post(ctx context.Context, u *url.URL, header http.Header, body []byte) Result {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return Result{Class: ClassRefused, Err: refused("the URL cannot be used")}
	}
	for k, v := range header {
		req.Header[k] = slices.Clone(v)
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", c.opts.UserAgent)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		r := classify(ctx, err)
		r.Latency = time.Since(start)
		return r
	}
	defer resp.Body.Close()
	r := Result{StatusCode: resp.StatusCode}
	// The body is untrusted: read through a limit, discarded, never kept.
	n, readErr := io.Copy(io.Discard, io.LimitReader(resp.Body, c.opts.MaxResponseBytes+1))
	r.Latency = time.Since(start)
	if readErr == nil && ctx.Err() != nil {
		// A read cut short by the deadline may end as a clean EOF (the
		// transport closes the connection under it): not a whole body.
		readErr = ctx.Err()
	}
	switch {
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		r.Class, r.Err = ClassRedirect, fmt.Errorf("the receiver answered %d; redirects are not followed", resp.StatusCode)
	case n > c.opts.MaxResponseBytes:
		r.Class, r.Err = ClassTooLarge, fmt.Errorf("the response body is over %d bytes", c.opts.MaxResponseBytes)
	case readErr != nil:
		cr := classify(ctx, readErr)
		r.Class, r.Err = cr.Class, fmt.Errorf("reading the response body: %w", cr.Err)
	case resp.StatusCode < 200 || resp.StatusCode >= 300:
		r.Class, r.Err = ClassStatus, fmt.Errorf("the receiver answered %d", resp.StatusCode)
	}
	return r
}

// classify turns a transport error into a Result. The URL is taken out of
// the message (url.Error repeats it, token and all).
func classify(ctx context.Context, err error) Result {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var refusal *RefusedError
	var dnsErr *net.DNSError
	var tlsErr *tlsError
	var netErr net.Error
	class := ClassConnect
	switch {
	case errors.As(err, &refusal):
		class = ClassRefused
	case errors.Is(err, context.Canceled) && ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded):
		class = ClassCanceled
	case errors.As(err, &dnsErr) && !dnsErr.IsTimeout:
		class = ClassDNS
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &netErr) && netErr.Timeout():
		class = ClassTimeout
	case errors.As(err, &tlsErr) || isTLSError(err):
		class = ClassTLS
	}
	return Result{Class: class, Err: err}
}

// isTLSError recognises certificate and TLS protocol errors that did not
// come through our handshake (HTTP/2 or a renegotiation).
func isTLSError(err error) bool {
	var (
		unknownAuthority x509.UnknownAuthorityError
		hostname         x509.HostnameError
		invalid          x509.CertificateInvalidError
		verification     *tls.CertificateVerificationError
		record           tls.RecordHeaderError
		alert            tls.AlertError
	)
	return errors.As(err, &unknownAuthority) || errors.As(err, &hostname) || errors.As(err, &invalid) ||
		errors.As(err, &verification) || errors.As(err, &record) || errors.As(err, &alert)
}
