// Package cli holds what camhub's commands (cmd/agent, cmd/hub, cmd/viewer)
// share when they read their command line and set up the process: the
// logger, signal handling and flag value types. Only cmd/ imports it; the
// components get what they need from it as plain values.
package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// NewLogger builds the process's logger: text to stderr at level
// ("debug", "info", "warn" or "error").
func NewLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}

// SignalContext returns a context cancelled on SIGINT or SIGTERM. A second
// signal restores the default behaviour, so it kills the process.
func SignalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}
