// Package hubtest starts a real camhub hub for tests, as net/http/httptest
// starts HTTP servers.
package hubtest

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"camhub/hub"
	"camhub/internal/testenv"
)

// Start starts a real in-process camhub hub on loopback with cfg (a 30 s,
// 1 GiB memory buffer if nil) and closes it when the test ends.
func Start(t testing.TB, cfg *hub.Config) *hub.Server {
	t.Helper()
	if cfg == nil {
		c := Config()
		cfg = &c
	}
	h, err := hub.Start(context.Background(), *cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("starting the hub: %v", err)
	}
	t.Cleanup(h.Close)
	return h
}

// Config is the hub configuration Start uses when given none: loopback, a
// 30 s, 1 GiB buffer in memory.
func Config() hub.Config {
	return hub.Config{Listen: "127.0.0.1:0", Replay: 30 * time.Second, ReplayBytes: 1 << 30, Storage: hub.StorageMemory}
}

// StartJS is Start, with a JetStream context on a connection to the hub
// that closes when the test ends.
func StartJS(t testing.TB, cfg *hub.Config) (*hub.Server, jetstream.JetStream) {
	t.Helper()
	h := Start(t, cfg)
	return h, JetStream(t, h.ClientURL())
}

// JetStream returns a JetStream context on a new connection to the NATS
// server at url, closed when the test ends.
func JetStream(t testing.TB, url string) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(testenv.Conn(t, url))
	if err != nil {
		t.Fatal(err)
	}
	return js
}
