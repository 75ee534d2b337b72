// Package cli holds what camhub's commands (cmd/agent, cmd/hub, cmd/viewer)
// share when they read their command line and set up the process: the
// logger, signal handling and flag value types. Only cmd/ imports it; the
// components get what they need from it as plain values.
package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// Every command has the same shape:
//
//	func main() {
//		ctx, stop := cli.SignalContext()
//		code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
//		stop()
//		os.Exit(code)
//	}
//
// run prints --help and --version to stdout and returns ExitOK; it reports
// a usage error with UsageError (to stderr) and returns ExitUsage; it logs
// a failure to stderr and returns ExitFailure.

// Exit statuses of camhub's commands.
const (
	ExitOK      = 0
	ExitFailure = 1 // failed while running
	ExitUsage   = 2 // bad flags, configuration or request
)

// UsageError reports err, a mistake in how command was called, on stderr
// and returns ExitUsage.
func UsageError(stderr io.Writer, command string, err error) int {
	fmt.Fprintf(stderr, "%s: %v\nRun %s --help for usage.\n", command, err, command)
	return ExitUsage
}

// NewLogger builds the process's logger: text to w (the process's stderr)
// at level ("debug", "info", "warn" or "error").
func NewLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// SignalContext returns a context cancelled on SIGINT or SIGTERM. A second
// signal restores the default behaviour, so it kills the process.
func SignalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}
