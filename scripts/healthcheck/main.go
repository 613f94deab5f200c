// Command healthcheck is the container health probe of the Rampart image
// (Dockerfile, docker-compose.yml). The runtime image is distroless: it has
// no shell, no curl and no wget, so the probe is this small static program
// beside the server binary. It GETs one https:// URL and exits 0 when the
// answer is 200 OK, 1 otherwise (Docker's "healthy" and "unhealthy"), and
// 2 when it is called wrongly.
//
//	healthcheck -cacert /run/secrets/compose_ca https://127.0.0.1:8443/readyz
//
// Verification stays on: the server's certificate must chain to the CA in
// -cacert (or to the system roots when -cacert is not given) and be valid
// for the URL's host, or for -servername when the certificate names the
// public host and the probe dials the loopback address. Redirects are not
// followed, plain http:// is refused, nothing of the answer is printed
// except its status, and the whole probe has a deadline (-timeout).
//
// It uses the standard library only and imports nothing of this module: it
// talks to the server over HTTPS like any client (and so it cannot grow
// into a second way into the application).
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"
)

// Exit codes: Docker reads 0 as healthy and 1 as unhealthy; 2 is a usage
// error, which Docker also counts as unhealthy.
const (
	exitHealthy   = 0
	exitUnhealthy = 1
	exitUsage     = 2
)

// defaultURL is the readiness endpoint of the container's listener
// (APP_ADDR=0.0.0.0:8443 in the image).
const defaultURL = "https://127.0.0.1:8443/readyz"

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stderr))
}

// run probes once and returns the exit code; problems go to stderr, which
// Docker keeps in the container's health log.
func run(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	caFile := fs.String("cacert", "", "PEM file of the CA(s) the server certificate must chain to (default: the system roots)")
	serverName := fs.String("servername", "", "host name the certificate must be valid for (default: the URL's host)")
	timeout := fs.Duration("timeout", 3*time.Second, "deadline of the whole probe")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: healthcheck [-cacert FILE] [-servername NAME] [-timeout 3s] [https://127.0.0.1:8443/readyz]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	target := defaultURL
	switch fs.NArg() {
	case 0:
	case 1:
		target = fs.Arg(0)
	default:
		fs.Usage()
		return exitUsage
	}
	u, err := url.Parse(target)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
		fmt.Fprintln(stderr, "healthcheck: the URL must be https://host:port/path (there is no plain-HTTP listener)")
		return exitUsage
	}
	if *timeout <= 0 {
		fmt.Fprintln(stderr, "healthcheck: -timeout must be positive")
		return exitUsage
	}

	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: *serverName}
	if *caFile != "" {
		pem, err := os.ReadFile(*caFile)
		if err != nil {
			fmt.Fprintf(stderr, "healthcheck: -cacert: %v\n", err)
			return exitUsage
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			fmt.Fprintf(stderr, "healthcheck: -cacert %s holds no PEM certificate\n", *caFile)
			return exitUsage
		}
		tlsConfig.RootCAs = pool
	}
	client := &http.Client{
		// No proxy from the environment: the probe is for this container's
		// own listener.
		Transport: &http.Transport{TLSClientConfig: tlsConfig, ForceAttemptHTTP2: true},
		// A health endpoint never redirects; following one could take the
		// probe anywhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		fmt.Fprintf(stderr, "healthcheck: %v\n", err)
		return exitUsage
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		// The error says what failed (refused, timeout, certificate) and
		// holds nothing secret: the URL carries no credentials.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		fmt.Fprintf(stderr, "healthcheck: GET %s: %v\n", u.Redacted(), err)
		return exitUnhealthy
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "healthcheck: GET %s: %s\n", u.Redacted(), resp.Status)
		return exitUnhealthy
	}
	return exitHealthy
}
