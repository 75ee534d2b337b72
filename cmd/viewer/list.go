package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"camhub/internal/cli"
	"camhub/internal/natsconn"
	"camhub/viewer"
)

// runList prints the camera list.
func runList(ctx context.Context, o *options, stdout, stderr io.Writer, log *slog.Logger) int {
	nc, js, err := dialOnce(o, stderr, log)
	if err != nil {
		fmt.Fprintln(stderr, "viewer list:", err)
		return cli.ExitFailure
	}
	defer natsconn.Close(nc)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// camlist.ErrNoHub's message says what to do
	if err := viewer.PrintList(ctx, js, stdout, o.json); err != nil {
		fmt.Fprintln(stderr, "viewer list:", err)
		return cli.ExitFailure
	}
	return cli.ExitOK
}
