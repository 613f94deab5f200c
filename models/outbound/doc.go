// Package outbound owns every HTTP request the server makes to an address
// it did not choose itself: project webhooks (registered by users) and the
// anomaly alert webhook (configured by the operator). It is where OWASP
// API7 (server-side request forgery) and API10 (unsafe consumption of
// APIs) are defended.
//
// Three layers, each enough on its own for what it covers:
//
//   - ValidateURL checks a URL without touching the network: https only,
//     no user information or fragment, the default port or an allowed one,
//     at most 2048 bytes, the host name normalised with IDNA, and an IP
//     literal refused unless it is public, whatever its notation (decimal,
//     octal, hex, short forms and IPv4-mapped IPv6 are refused outright).
//   - CheckResolves resolves a host name and refuses it when any of its
//     addresses is not public (the check at registration time).
//   - The Client's transport checks the address it actually connects to,
//     after resolution, in net.Dialer.Control (code.dny.dev/ssrf), so a
//     name that resolved to a public address at registration and to
//     127.0.0.1 now (DNS rebinding) is still refused. It follows no
//     redirect, verifies TLS (1.2 at least), takes no proxy from the
//     environment, sends no cookies, asks for no compression, bounds the
//     connection, the headers, the whole request and the response size,
//     and opens a circuit breaker (github.com/sony/gobreaker/v2) per
//     destination that keeps failing.
//
// What a receiver answers is untrusted: Post reads at most
// Options.MaxResponseBytes of the body and discards it, and returns only
// the status code, the latency and an error class.
//
// Dependency rule: outbound is in the models area. It imports the standard
// library and third-party modules only, nothing of this module, nothing of
// echo or AWS.
package outbound
