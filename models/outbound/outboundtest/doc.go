// Package outboundtest is test support for code that makes server-side
// requests: a DNS server on 127.0.0.1 whose answers a test chooses, so
// that host names can be made to resolve to loopback, to change between
// two lookups (DNS rebinding), or to fail. Only _test.go files import it.
package outboundtest
