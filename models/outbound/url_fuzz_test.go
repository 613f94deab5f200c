package outbound_test

import (
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/rampart-go/rampart/models/outbound"
)

// nonPublic are ranges no accepted IP literal may fall in, written out
// here independently of the ssrf package's list that ValidateURL uses.
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("169.254.0.0/16"), netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.0.0.0/24"), netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("198.18.0.0/15"), netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("224.0.0.0/4"), netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("::/8"), netip.MustParsePrefix("64:ff9b::/96"), netip.MustParsePrefix("2001:db8::/32"),
	netip.MustParsePrefix("2002::/16"), netip.MustParsePrefix("fc00::/7"), netip.MustParsePrefix("fe80::/10"),
	netip.MustParsePrefix("ff00::/8"),
}

// numericLabel is a last label that makes a host an IPv4 address to
// WHATWG URL parsers or inet_aton.
var numericLabel = regexp.MustCompile(`^(?:[0-9]+|0x[0-9a-f]*)$`)

// FuzzWebhookURL: ValidateURL never panics, and whatever it accepts is an
// https URL of at most 2048 bytes, without user information or fragment,
// on an allowed port, whose host is not a non-public IP literal nor a
// numeric form other than a dotted quad, and which validates again to
// itself (the normalisation is idempotent). Seeds: the tables of
// TestSSRFVectors, and testdata/fuzz/FuzzWebhookURL (one file per vector,
// plus the inputs fuzzing found).
func FuzzWebhookURL(f *testing.F) {
	for _, v := range ssrfURLVectors {
		f.Add(v.url)
	}
	for _, v := range ssrfAccepted {
		f.Add(v.url)
	}
	c, err := outbound.New(outbound.Options{Ports: []int{8443}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := c.ValidateURL(raw)
		if err != nil {
			if _, ok := err.(*outbound.RefusedError); !ok {
				t.Fatalf("%q: error %T, want *RefusedError", raw, err)
			}
			if strings.ContainsAny(err.Error(), "\r\n") {
				t.Fatalf("%q: message on several lines: %q", raw, err)
			}
			return
		}
		s := u.String()
		switch {
		case u.Scheme != "https" || !strings.HasPrefix(s, "https://"):
			t.Fatalf("%q accepted as %q: not https", raw, s)
		case u.User != nil || strings.Contains(u.Host, "@"):
			t.Fatalf("%q accepted as %q: user information", raw, s)
		case u.Fragment != "" || strings.Contains(s, "#"):
			t.Fatalf("%q accepted as %q: fragment", raw, s)
		case len(s) > outbound.MaxURLLength:
			t.Fatalf("%q accepted as %d bytes", raw, len(s))
		case u.Hostname() == "" || u.Hostname() != strings.ToLower(u.Hostname()):
			t.Fatalf("%q accepted as %q: host empty or not lower case", raw, s)
		}
		if p := u.Port(); p != "" && p != "8443" {
			t.Fatalf("%q accepted as %q: port %s", raw, s, p)
		}
		host := u.Hostname()
		if a, err := netip.ParseAddr(host); err == nil {
			if a.Zone() != "" || a.Is4In6() || slices.ContainsFunc(nonPublic, func(p netip.Prefix) bool { return p.Contains(a) }) ||
				!a.IsGlobalUnicast() {
				t.Fatalf("%q accepted as %q: non-public address %s", raw, s, a)
			}
		} else {
			labels := strings.Split(host, ".")
			last := labels[len(labels)-1]
			if numericLabel.MatchString(last) || len(labels) < 2 ||
				host == "localhost" || strings.HasSuffix(host, ".localhost") || strings.HasSuffix(host, ".internal") {
				t.Fatalf("%q accepted as %q: a numeric, single-label or internal host", raw, s)
			}
			for _, r := range host {
				if r > 0x7f {
					t.Fatalf("%q accepted as %q: host not ASCII", raw, s)
				}
			}
		}
		again, err := c.ValidateURL(s)
		if err != nil || again.String() != s {
			t.Fatalf("%q accepted as %q, which validates to %v, %v", raw, s, again, err)
		}
	})
}
