// Package cli holds what camhub's commands (cmd/agent, cmd/hub, cmd/viewer, cmd/detector)
// share when they read their command line and set up the process: the
// logger, signal handling and flag value types. Only cmd/ imports it; the
// components get what they need from it as plain values.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/pflag"

	"camhub/internal/version"
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
//	func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
//		o, err := parse(args, stdout) // o embeds cli.Common
//		if err != nil {
//			return cli.ParseError(stderr, "hub", err)
//		}
//		log, code, done := o.Start("hub", stdout, stderr)
//		if done {
//			return code
//		}
//		...
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

// ParseError ends a command whose command line did not parse: after --help
// (already printed to stdout) it returns ExitOK, otherwise it reports err
// as a usage error.
func ParseError(stderr io.Writer, command string, err error) int {
	if errors.Is(err, pflag.ErrHelp) {
		return ExitOK
	}
	return UsageError(stderr, command, err)
}

// Common holds the flags every command has.
type Common struct {
	LogLevel string // --log-level
	Version  bool   // --version
}

// AddFlags adds --log-level and --version to fs.
func (c *Common) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.LogLevel, "log-level", "info", "log `level`: debug, info, warn or error")
	fs.BoolVar(&c.Version, "version", false, "print the version and exit")
}

// Start begins a command whose command line parsed: for --version it
// prints the version to stdout and says the command is done; otherwise it
// returns the process's logger (a bad --log-level is a usage error, done).
func (c *Common) Start(command string, stdout, stderr io.Writer) (log *slog.Logger, code int, done bool) {
	if c.Version {
		fmt.Fprintln(stdout, "camhub "+command, version.String())
		return nil, ExitOK, true
	}
	log, err := NewLogger(stderr, c.LogLevel)
	if err != nil {
		return nil, UsageError(stderr, command, fmt.Errorf("--log-level: %w", err)), true
	}
	return log, ExitOK, false
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
