package app

import (
	"github.com/rampart-go/rampart/models/outbound"

	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// Env is what the process gives the app: arguments aside, its standard
// streams and environment. Tests pass their own.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string

	// outbound, when set, adjusts the outbound client's options. Tests
	// only (it is unexported: nothing outside this package, and no
	// configuration, can set it): a receiver on 127.0.0.1 is admitted
	// this way and no other.
	outbound func(*outbound.Options)
}

// Version is the build's version, set with -ldflags "-X ...app.Version=v1.2.3".
var Version = "dev"

// Exit codes.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

// usageError is a command-line mistake: exit code 2 and a pointer to help.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// Main runs the command in args (none means serve) and returns the exit
// code. Failures are one line on stderr; nothing is printed twice.
func Main(ctx context.Context, args []string, env Env) int {
	err := run(ctx, args, env)
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, new(usageError)):
		fmt.Fprintf(env.Stderr, "rampart: %s (see `rampart help`)\n", oneLine(err))
		return exitUsage
	default:
		fmt.Fprintf(env.Stderr, "rampart: %s\n", oneLine(err))
		return exitFail
	}
}

func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

func run(ctx context.Context, args []string, env Env) error {
	cmd := "serve"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		if len(args) > 0 {
			return usageError{"serve takes no arguments; configure it with APP_* variables"}
		}
		return serve(ctx, env)
	case "migrate":
		return migrateCmd(ctx, args, env)
	case "user":
		return userCmd(ctx, args, env)
	case "audit":
		return auditCmd(ctx, args, env)
	case "config":
		return configCmd(env)
	case "dev":
		return devCmd(args, env)
	case "generate":
		return generateCmd(args, env)
	case "version":
		fmt.Fprintln(env.Stdout, Version)
		return nil
	case "help", "-h", "--help":
		printHelp(env.Stdout)
		return nil
	}
	return usageError{fmt.Sprintf("unknown command %q", safeArg(cmd))}
}

// safeArg shortens and sanitises a user-supplied argument for a message.
func safeArg(s string) string {
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

func printHelp(w io.Writer) {
	fmt.Fprint(w, `rampart: a secure-by-default REST API

Usage:
  rampart [serve]                       run the HTTPS API (the default)
  rampart migrate up|down|status        apply, roll back one, or show migrations
  rampart user create --email E --role user|admin --password-stdin [--display-name N]
                                        create an account; the password is read from stdin
  rampart audit verify                  check the audit trail's hash chain; prints its head hash
  rampart dev ca                        make (or show) the local development CA; installs nothing
  rampart dev client-cert --name NAME [--days N] [--out DIR]
                                        issue a client certificate for the mTLS listener from that CA
  rampart generate resource NAME FIELD... [--parent R] [--actions list,show,create,update,delete]
                   [--dry-run] [--diff] [--force] [--overwrite FILE]
                                        add an owned resource (README, "Add an endpoint")
  rampart generate destroy NAME [--dry-run] [--force]
                                        remove a generated resource; keeps its migrations
  rampart generate check                fail when generated files drifted from the generator
  rampart config                        print the configuration, secrets redacted
  rampart version                       print the version

Configuration (environment variables):
`)
	for _, v := range Variables {
		fmt.Fprintf(w, "  %-30s %s (default %s)\n", v.Name, v.Meaning, v.Default)
	}
}

func configCmd(env Env) error {
	cfg, err := LoadConfig(env.Getenv)
	if err != nil {
		return err
	}
	for _, line := range cfg.Redacted() {
		fmt.Fprintln(env.Stdout, line)
	}
	return nil
}

// newLogger returns the JSON logger: structured fields, so CR/LF in values
// are escaped and cannot forge log lines.
func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level)) // validated by LoadConfig
	return slog.New(newLogHandler(w, l))
}

// newFlagSet returns a flag set that reports errors to us, not to stderr.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}
