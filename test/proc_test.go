package test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// bin holds the camhub binaries built for these tests.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "camhub-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	build := exec.Command("go", "build", "-o", dir+"/", "../cmd/hub", "../cmd/agent", "../cmd/viewer")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building camhub:", err)
		os.Exit(1)
	}
	bin = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a camhub binary running for a test, with its log collected.
type proc struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error

	mu     sync.Mutex
	log    bytes.Buffer
	change chan struct{} // closed and replaced on every write
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.log.Write(b)
	close(p.change)
	p.change = make(chan struct{})
	return len(b), nil
}

func (p *proc) logText() (string, chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String(), p.change
}

// start runs a camhub binary; it is killed when the test ends. A hub runs
// in open mode (CAMHUB_INSECURE) unless env says otherwise: these tests
// are about other things than the hub's security (trust_test.go is).
func start(t *testing.T, env []string, name string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, name), args...)
	cmd.Env = append(os.Environ(), "CAMHUB_INSECURE=true", "CAMHUB_DATA="+t.TempDir())
	cmd.Env = append(cmd.Env, env...)
	return startCmd(t, name, cmd, name+" "+strings.Join(args, " "))
}

// startCmd starts cmd as a proc with its log collected; it is killed when
// the test ends, and its log (under desc) shown if the test failed.
func startCmd(t *testing.T, name string, cmd *exec.Cmd, desc string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, cmd: cmd, done: make(chan struct{}), change: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			text, _ := p.logText()
			t.Logf("%s log:\n%s", desc, text)
		}
	})
	return p
}

// waitLog waits until the log matches re and returns the first submatch
// (or the whole match).
func (p *proc) waitLog(re string) string {
	p.t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.After(30 * time.Second)
	for {
		text, change := p.logText()
		if m := rx.FindStringSubmatch(text); m != nil {
			return m[len(m)-1]
		}
		select {
		case <-change:
		case <-p.done:
			text, _ := p.logText()
			if m := rx.FindStringSubmatch(text); m != nil {
				return m[len(m)-1]
			}
			p.t.Fatalf("%s exited (%v) before logging %q", p.name, p.err, re)
		case <-deadline:
			p.t.Fatalf("%s did not log %q within 30s", p.name, re)
		}
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop() {
	p.t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.wait(0)
}

// wait waits for the process to exit with code.
func (p *proc) wait(code int) {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		p.t.Fatalf("%s did not exit", p.name)
	}
	if got := p.cmd.ProcessState.ExitCode(); got != code {
		p.t.Fatalf("%s exited with %d (%v), want %d", p.name, got, p.err, code)
	}
}

// run runs a camhub binary to completion and returns its stdout.
func run(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, name), args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, stderr.String())
	}
	return string(out), nil
}
