// Package testenv starts the real parts camhub's tests need: an in-process
// nats-server on loopback and connections to it, and a private X server.
package testenv

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// NATSOptions returns the options NATS starts a server with: loopback, a
// random port, JetStream in a temporary directory, an 8 MiB maximum payload.
func NATSOptions(t testing.TB) *server.Options {
	return &server.Options{
		Host:       "127.0.0.1",
		Port:       server.RANDOM_PORT,
		NoLog:      true,
		NoSigs:     true,
		JetStream:  true,
		StoreDir:   t.TempDir(),
		MaxPayload: 8 << 20,
	}
}

// NATS starts a nats-server with opts (NATSOptions if nil) and shuts it
// down when the test ends.
func NATS(t testing.TB, opts *server.Options) *server.Server {
	t.Helper()
	if opts == nil {
		opts = NATSOptions(t)
	}
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("nats-server: %v", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s
}

// Conn connects to url and closes the connection when the test ends.
func Conn(t testing.TB, url string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatalf("connecting to %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// Xvfb starts a private X server for the test and returns its DISPLAY
// (":N"). It fails the test if Xvfb cannot start; it never skips. Xvfb picks
// a free display itself and says which once it accepts connections
// (-displayfd); -noreset keeps it from resetting, and refusing connections,
// each time its last client leaves.
func Xvfb(t testing.TB) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command("Xvfb", "-displayfd", "3", "-screen", "0", "1600x1000x24", "-nolisten", "tcp", "-noreset")
	cmd.ExtraFiles = []*os.File{w} // fd 3
	var out Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		w.Close()
		t.Fatalf("starting Xvfb (apt-get install xvfb): %v", err)
	}
	w.Close()
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		// SIGTERM lets Xvfb remove its socket and lock file
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	// the display number, a newline, then nothing (EOF) if Xvfb fails
	read := make(chan string, 1)
	go func() {
		b, _ := bufio.NewReader(r).ReadString('\n')
		read <- strings.TrimSpace(b)
	}()
	select {
	case n := <-read:
		if _, err := strconv.Atoi(n); err != nil {
			t.Fatalf("Xvfb did not start: %q\n%s", n, out.String())
		}
		return ":" + n
	case <-time.After(15 * time.Second):
		t.Fatalf("Xvfb did not start within 15 s:\n%s", out.String())
		return ""
	}
}

// Screenshot writes the whole screen of display to a PNG file.
func Screenshot(display, file string) error {
	cmd := exec.Command("sh", "-c", `xwd -root -silent -display "$1" | convert xwd:- "png:$2"`, "sh", display, file)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("screenshot of %s: %v: %s", display, err, out)
	}
	return nil
}

// Buffer is a bytes.Buffer safe for concurrent use: a process's or a
// logger's output written from several goroutines.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Quiet is a logger that discards everything.
func Quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// FreePorts returns n loopback ports free at the time of asking, for
// listeners whose ports must be known before their servers start (NATS
// routes and leaf nodes name each other).
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	var ls []net.Listener
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// Eventually polls cond until it is true and returns how long that took. It
// fails the test, saying what it waited for, if cond is still false after
// timeout: a guard against a hang, not a measurement. It checks at once,
// then at intervals that grow from 5 ms to 100 ms, so a quick condition is
// seen quickly and a costly one (a process run, an HTTP request) is not
// asked too often.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	interval := 5 * time.Millisecond
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(interval) // polling interval, not synchronisation
		interval = min(2*interval, 100*time.Millisecond)
	}
	return time.Since(start)
}

// Names lists the files under dir, at any depth, by their paths relative
// to dir ("clips/front.avi"); directories are not listed.
func Names(t testing.TB, dir string) []string {
	t.Helper()
	var names []string
	err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			rel, _ := filepath.Rel(dir, path)
			names = append(names, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// Context is a context that ends after d, or with the test.
func Context(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
