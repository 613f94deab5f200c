package outbound

import (
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// MaxURLLength is the longest URL ValidateURL accepts, in bytes, before and
// after normalisation.
const MaxURLLength = 2048

// DefaultPort is the port of an https URL that names none. It is always
// allowed; Options.Ports adds others.
const DefaultPort = 443

// RefusedError says why a URL or the address it leads to is refused. Its
// message is one line, safe to show to the client who supplied the URL
// and to log: it never repeats the URL (whose path or query may hold a
// token) nor an address it resolved to.
type RefusedError struct {
	// Reason is the whole message, e.g. "the URL's host resolves to a
	// non-public address (loopback)".
	Reason string
}

func (e *RefusedError) Error() string { return e.Reason }

func refused(reason string) *RefusedError { return &RefusedError{Reason: reason} }

// ValidateURL checks a user-supplied URL without network access and
// returns it normalised, or a *RefusedError. Only o.Ports and
// o.AllowPrefixes are used.
//
// It accepts an absolute https URL of at most MaxURLLength bytes, without
// user information, fragment, white space, control characters or
// backslashes, on DefaultPort or a port of o.Ports, whose host is
//   - a DNS name: normalised with IDNA (the lookup profile of
//     golang.org/x/net/idna: lower case, Unicode mapped, punycode), one
//     trailing dot removed, with at least two labels, and not a
//     special-use or internal name (localhost, *.localhost, *.internal
//     such as metadata.google.internal, *.home.arpa, *.localdomain,
//     *.invalid); or
//   - a canonical dotted-quad IPv4 address or a bracketed IPv6 address,
//     either public or inside o.AllowPrefixes.
//
// A host that looks numeric (its last label is digits, or 0x and hex
// digits) but is not a canonical dotted quad is refused outright: 2130706433,
// 0177.0.0.1, 0x7f000001, 0x7f.1 and 127.1 all mean 127.0.0.1 to some
// resolvers and nothing to others. IPv4-mapped and IPv4-compatible IPv6
// addresses and IPv6 zones are refused too.
//
// The result has no explicit default port, an empty path written "/", no
// fragment and no empty query; ValidateURL(result.String()) returns the
// same URL.
func ValidateURL(raw string, o Options) (*url.URL, error) {
	p, err := newPolicy(o)
	if err != nil {
		return nil, err
	}
	return p.validateURL(raw)
}

// validateURL is ValidateURL under an already checked policy.
func (p *policy) validateURL(raw string) (*url.URL, error) {
	if len(raw) > MaxURLLength {
		return nil, refused("the URL is longer than " + strconv.Itoa(MaxURLLength) + " bytes")
	}
	if raw == "" {
		return nil, refused("the URL is empty")
	}
	if !utf8.ValidString(raw) {
		return nil, refused("the URL is not valid UTF-8")
	}
	for _, r := range raw {
		switch {
		case r <= ' ' || r == 0x7f:
			return nil, refused("the URL must not contain white space or control characters")
		case r == '\\':
			// Browsers and some libraries read a backslash as a slash; Go
			// does not. Refusing it avoids parsers disagreeing on the host.
			return nil, refused("the URL must not contain a backslash")
		case r == '#':
			return nil, refused("the URL must not have a fragment (#...)")
		}
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return nil, refused("the URL cannot be parsed")
	case u.Scheme == "http":
		return nil, refused("the URL must be an https:// URL: plain http is not allowed")
	case u.Scheme != "https":
		return nil, refused("the URL must be an absolute https:// URL")
	case u.Opaque != "":
		return nil, refused("the URL must be an absolute https:// URL (https://host/path)")
	case u.User != nil:
		return nil, refused("the URL must not hold user information (user:password@)")
	case u.Hostname() == "":
		return nil, refused("the URL must name a host")
	}

	port := DefaultPort
	if ps := u.Port(); ps != "" {
		n, err := strconv.Atoi(ps)
		if err != nil || n < 1 || n > 65535 {
			return nil, refused("the URL's port is not a valid port number")
		}
		port = n
	} // "https://host:/" names no port: the default one.
	if !slices.Contains(p.ports, port) {
		return nil, refused("the URL's port is not allowed (allowed: " + p.portList() + ")")
	}

	host, err := p.normaliseHost(u)
	if err != nil {
		return nil, err
	}
	out := &url.URL{Scheme: "https", Host: host, Path: u.Path, RawPath: u.RawPath, RawQuery: u.RawQuery}
	if port != DefaultPort {
		out.Host = host + ":" + strconv.Itoa(port)
	}
	if out.Path == "" {
		out.Path, out.RawPath = "/", ""
	}
	if len(out.String()) > MaxURLLength {
		return nil, refused("the URL is longer than " + strconv.Itoa(MaxURLLength) + " bytes once normalised")
	}
	return out, nil
}

// normaliseHost returns the host of u as it is written in the normalised
// URL (IPv6 in brackets), or a *RefusedError.
func (p *policy) normaliseHost(u *url.URL) (string, error) {
	name := u.Hostname()
	if strings.HasPrefix(u.Host, "[") {
		a, err := netip.ParseAddr(name)
		switch {
		case err != nil:
			return "", refused("the URL's host is not a valid IPv6 address")
		case a.Zone() != "":
			return "", refused("the URL's host must not carry an IPv6 zone")
		case !a.Is6():
			return "", refused("the URL's host puts an IPv4 address in brackets; write it as a dotted quad")
		case a.Is4In6():
			return "", refused("the URL's host is an IPv4-mapped IPv6 address; these are not allowed")
		}
		if err := p.checkAddr(a, "is"); err != nil {
			return "", err
		}
		return "[" + a.String() + "]", nil
	}

	ascii, err := idna.Lookup.ToASCII(name)
	if err != nil {
		return "", refused("the URL's host is not a valid domain name (IDNA)")
	}
	ascii = strings.ToLower(strings.TrimSuffix(ascii, "."))
	// The result must be a fixed point: a name that IDNA would read
	// differently the next time (a mapped label that does not survive
	// its own validation) is not one name.
	if again, err := idna.Lookup.ToASCII(ascii); err != nil || again != ascii {
		return "", refused("the URL's host is not a valid domain name (IDNA)")
	}
	if ascii == "" || len(ascii) > 253 {
		return "", refused("the URL's host is not a valid domain name (length)")
	}
	labels := strings.Split(ascii, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return "", refused("the URL's host is not a valid domain name (empty or long label)")
		}
	}

	if looksNumeric(labels[len(labels)-1]) {
		a, err := netip.ParseAddr(ascii)
		if err != nil || !a.Is4() {
			return "", refused("the URL's host looks like an IP address but is not a dotted quad (a.b.c.d in decimal, no leading zeros)")
		}
		if err := p.checkAddr(a, "is"); err != nil {
			return "", err
		}
		return a.String(), nil
	}
	if internalName(ascii) {
		return "", refused("the URL's host is a local or internal name")
	}
	if len(labels) < 2 {
		// A single label is completed by the resolver's search domains:
		// it names a machine of the local network.
		return "", refused("the URL's host must be a fully qualified domain name (at least one dot)")
	}
	return ascii, nil
}

// looksNumeric reports whether label (the last label of a host) makes the
// host an IPv4 address to a WHATWG URL parser or to inet_aton: decimal
// digits, or 0x followed by hex digits (or nothing).
func looksNumeric(label string) bool {
	if label == "" {
		return false
	}
	digits := label
	hex := false
	if len(label) >= 2 && label[0] == '0' && (label[1] == 'x' || label[1] == 'X') {
		digits, hex = label[2:], true
	}
	for _, c := range digits {
		switch {
		case c >= '0' && c <= '9':
		case hex && (c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'):
		default:
			return false
		}
	}
	return true
}

// internalSuffixes are names that lead into the local machine or network,
// whatever DNS says: RFC 6761 localhost and invalid, ICANN's private-use
// .internal (metadata.google.internal, *.ec2.internal), RFC 8375
// home.arpa, and the traditional localdomain.
var internalSuffixes = []string{"localhost", "internal", "home.arpa", "localdomain", "invalid"}

// internalName reports whether name (ASCII, lower case, no trailing dot)
// is one of internalSuffixes or under one.
func internalName(name string) bool {
	for _, s := range internalSuffixes {
		if name == s || strings.HasSuffix(name, "."+s) {
			return true
		}
	}
	return false
}

// checkAddr refuses a that is not public (and not allowed by the policy),
// with a message saying the host "is" or "resolves to" such an address.
func (p *policy) checkAddr(a netip.Addr, verb string) error {
	if p.guardian.SafeAddr(a) == nil {
		return nil
	}
	return refused("the URL's host " + verb + " a non-public address (" + describe(a) + ")")
}

// Special ranges named in messages. Whether an address is refused is
// decided by the ssrf Guardian alone; these only say why.
var (
	metadataV4   = netip.MustParseAddr("169.254.169.254")
	metadataV6   = netip.MustParseAddr("fd00:ec2::254")
	thisNetwork  = netip.MustParsePrefix("0.0.0.0/8")
	cgnat        = netip.MustParsePrefix("100.64.0.0/10")
	benchmarking = netip.MustParsePrefix("198.18.0.0/15")
	reserved4    = netip.MustParsePrefix("240.0.0.0/4")
	broadcast    = netip.MustParseAddr("255.255.255.255")
	nat64        = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour    = netip.MustParsePrefix("2002::/16")
	compatV6     = netip.MustParsePrefix("::/96")
	docs         = []netip.Prefix{
		netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("198.51.100.0/24"),
		netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("2001:db8::/32"),
		netip.MustParsePrefix("3fff::/20"),
	}
)

// describe names the kind of non-public address a is, for messages.
func describe(a netip.Addr) string {
	a = a.WithZone("")
	switch {
	case a.Is4In6():
		return "IPv4-mapped IPv6"
	case a == metadataV4 || a == metadataV6:
		return "link-local, the cloud metadata service"
	case a.IsUnspecified():
		return "unspecified"
	case a.IsLoopback():
		return "loopback"
	case a.IsLinkLocalUnicast():
		return "link-local"
	case a.IsMulticast():
		return "multicast"
	case a.IsPrivate() && a.Is4():
		return "private"
	case a.IsPrivate():
		return "unique-local"
	case a == broadcast:
		return "broadcast"
	case thisNetwork.Contains(a):
		return "this network, 0.0.0.0/8"
	case cgnat.Contains(a):
		return "carrier-grade NAT"
	case benchmarking.Contains(a):
		return "benchmarking"
	case reserved4.Contains(a):
		return "reserved"
	case slices.ContainsFunc(docs, func(p netip.Prefix) bool { return p.Contains(a) }):
		return "documentation"
	case nat64.Contains(a):
		return "NAT64"
	case sixToFour.Contains(a):
		return "6to4"
	case compatV6.Contains(a):
		return "IPv4-compatible IPv6"
	}
	return "special-purpose"
}
