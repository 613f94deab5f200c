// Command rampart runs the Rampart sample API and its tools. It only sets up
// the signal context and the exit code; everything else is in package app.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/rampart-go/rampart/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := app.Main(ctx, os.Args[1:], app.Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv})
	stop()
	os.Exit(code)
}
