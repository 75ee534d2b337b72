package agent

import (
	"net"
	"sync"
	"testing"
	"time"

	"camhub/internal/wire"
)

// A network camera that accepts the connection and sends nothing is a
// source error after OpenTimeout, not after OpenCV's 30 s.
func TestSilentSourceTimesOut(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // held open, silent
			mu.Unlock()
		}
	})

	_, url := startNATS(t, nil)
	ch := subscribe(t, url, "silent")
	cfg := Config{ID: "silent", Source: "http://" + ln.Addr().String() + "/video.mjpg", ReportInterval: 100 * time.Millisecond,
		OpenTimeout: time.Second}
	begin := time.Now()
	r := start(t, cfg, dial(t, url))
	var got received
	collect(t, ch, &got, 15*time.Second, stateAfter(0, wire.StateSourceError))
	took := time.Since(begin)
	t.Logf("source-error after %v", took)
	if took > 8*time.Second {
		t.Fatalf("source-error after %v with a 1 s open timeout", took)
	}
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
}
