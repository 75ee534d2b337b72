// Package hubtest starts a real camhub hub for tests, as net/http/httptest
// starts HTTP servers.
package hubtest

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"camhub/hub"
)

// Start starts a real in-process camhub hub on loopback with cfg (a 30 s,
// 1 GiB memory buffer if nil) and closes it when the test ends.
func Start(t testing.TB, cfg *hub.Config) *hub.Server {
	t.Helper()
	if cfg == nil {
		cfg = &hub.Config{Listen: "127.0.0.1:0", Replay: 30 * time.Second, ReplayBytes: 1 << 30}
	}
	h, err := hub.Start(context.Background(), *cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("starting the hub: %v", err)
	}
	t.Cleanup(h.Close)
	return h
}
