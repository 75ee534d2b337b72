package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"camhub/internal/wire"
)

// srvProc is a hub or a bare nats-server in its own process.
type srvProc struct {
	c        *child
	url      string
	storeDir string // the hub's JetStream directory, removed by stop; "" for nats-server
}

// startServer starts bin/hub (mode is its storage: memory or file) or,
// for mode raw, camhub-bench natsd, and waits until it takes clients
// (and, for the hub, has its buffer). The hub runs without its motion
// detector, which decodes every camera's pictures, unless mode ends in
// "+motion": the benchmarks measure the relay and its buffer.
func startServer(o opts, mode string) (*srvProc, error) { return startServerOn(o, mode, "") }

// startServerOn is startServer with the server on cpus (taskset -c's
// list; "": wherever the system runs it).
func startServerOn(o opts, mode, cpus string) (*srvProc, error) {
	mode, motion := strings.CutSuffix(mode, "+motion")
	port := freePort()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	s := &srvProc{url: "nats://" + addr}
	var err error
	if mode == "raw" {
		name, args := pinnedCommand(cpus, o.self, "natsd", "-listen", addr)
		s.c, _, err = startChild(true, name, args...)
	} else {
		if s.storeDir, err = os.MkdirTemp("", "camhub-bench-"); err != nil {
			return nil, err
		}
		name, args := pinnedCommand(cpus, filepath.Join(o.bin, "hub"), "--insecure", "--listen", addr, "--monitor", "",
			"--storage", mode, "--store-dir", s.storeDir, "--log-level", "warn", fmt.Sprintf("--motion=%v", motion))
		s.c, _, err = startChild(false, name, args...)
	}
	if err != nil {
		if s.storeDir != "" {
			os.RemoveAll(s.storeDir)
		}
		return nil, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		nc, err := nats.Connect(s.url)
		if err == nil {
			ok := true
			if mode != "raw" {
				js, _ := jetstream.New(nc)
				_, err = js.Stream(context.Background(), wire.FramesStream)
				ok = err == nil
			}
			nc.Close()
			if ok {
				return s, nil
			}
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("%s did not start: %v", mode, err)
		}
		time.Sleep(50 * time.Millisecond) // polling a starting process
	}
}

// startServerConn is startServer with a client connection to the server.
func startServerConn(o opts, mode string) (*srvProc, *nats.Conn, error) {
	return startServerConnOn(o, mode, "")
}

// startServerConnOn is startServerOn with a client connection to the server.
func startServerConnOn(o opts, mode, cpus string) (*srvProc, *nats.Conn, error) {
	srv, err := startServerOn(o, mode, cpus)
	if err != nil {
		return nil, nil, err
	}
	nc, err := nats.Connect(srv.url)
	if err != nil {
		srv.stop()
		return nil, nil, err
	}
	return srv, nc, nil
}

// stop stops the server and removes its store directory.
func (s *srvProc) stop() {
	s.c.stop()
	if s.storeDir != "" {
		os.RemoveAll(s.storeDir)
	}
}
