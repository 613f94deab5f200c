package app

import (
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"
)

// devCmd runs the development-PKI commands:
//
//	rampart dev ca                                  make (or show) the development CA
//	rampart dev client-cert --name NAME [--days N] [--out DIR]
//
// They refuse to run with APP_ENV=production: production certificates come
// from a real CA.
func devCmd(args []string, env Env) error {
	if len(args) == 0 {
		return usageError{"dev needs ca or client-cert"}
	}
	cfg, err := LoadConfig(env.Getenv)
	if err != nil {
		return err
	}
	if cfg.Env == EnvProduction {
		return usageError{"dev commands are for development only (APP_ENV=production)"}
	}
	p := devPKI{dir: filepath.Join(cfg.DataDir, "tls")}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	switch args[0] {
	case "ca":
		if len(args) > 1 {
			return usageError{"dev ca takes no arguments"}
		}
		ca, err := ensureDevCA(p, log)
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "development CA: %s (valid until %s)\n", p.caCert(), ca.cert.NotAfter.UTC().Format(time.DateOnly))
		fmt.Fprintf(env.Stdout, "it can only vouch for localhost, 127.0.0.0/8 and ::1, and installs nothing; point clients at it:\n")
		fmt.Fprintf(env.Stdout, "  curl --cacert %s https://localhost:8443/\n", p.caCert())
		fmt.Fprintf(env.Stdout, "  browsers: import it as an authority in a development profile\n")
		return nil
	case "client-cert":
		return devClientCertCmd(p, args[1:], env, log)
	}
	return usageError{fmt.Sprintf("dev: unknown command %q; use ca or client-cert", safeArg(args[0]))}
}

func devClientCertCmd(p devPKI, args []string, env Env, log *slog.Logger) error {
	fs := newFlagSet("dev client-cert")
	name := fs.String("name", "", "service name: the certificate's Common Name")
	days := fs.Int("days", 30, "validity in days (1 to 90)")
	out := fs.String("out", p.clientDir(), "folder for NAME.pem and NAME-key.pem")
	if err := fs.Parse(args); err != nil {
		return usageError{"dev client-cert: " + err.Error()}
	}
	switch {
	case fs.NArg() > 0:
		return usageError{"dev client-cert takes no positional arguments"}
	case !serviceName(*name):
		return usageError{"--name must be 1 to 64 characters of a-z, 0-9, '.', '_' or '-' (it becomes the service principal)"}
	case *days < 1 || *days > 90:
		return usageError{"--days must be between 1 and 90"}
	}
	certPath, keyPath, err := issueDevClientCert(p, *name, *out, time.Duration(*days)*24*time.Hour, log)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "client certificate for service %q: %s (key %s)\n", *name, certPath, keyPath)
	fmt.Fprintf(env.Stdout, "  curl --cacert %s --cert %s --key %s https://localhost:8444/internal/v1/stats\n", p.caCert(), certPath, keyPath)
	return nil
}

// serviceName reports whether s is a service name: 1..64 of [a-z0-9._-],
// starting with a letter or digit.
func serviceName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i, c := range s {
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case i > 0 && (c == '.' || c == '_' || c == '-'):
		default:
			return false
		}
	}
	return true
}
