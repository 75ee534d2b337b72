// Package browsertest starts Debian's Chromium for the tests of pages and
// of what a browser plays, in a package of its own so that package testenv
// stays free of chromedp for every other test.
package browsertest

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"
)

// Path is where Debian's chromium package puts the browser.
const Path = "/usr/bin/chromium"

// Need fails the test if Chromium is not installed, saying how to install
// it.
func Need(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath(Path); err != nil {
		t.Fatalf("no Chromium at %s (scripts/deps.sh test, or apt-get install chromium): %v", Path, err)
	}
}

// Start starts headless Chromium (with opts beside the defaults) for the
// test and returns a tab's context, and a function that returns the
// console errors, exceptions and failed loads the page reported so far.
// The browser stops when the test ends.
func Start(t testing.TB, opts ...chromedp.ExecAllocatorOption) (context.Context, func() []string) {
	t.Helper()
	Need(t)
	var out bytes.Buffer
	var outMu sync.Mutex
	all := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(Path),
		chromedp.Headless,
		chromedp.NoSandbox, // tests run as root
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.CombinedOutput(writerFunc(func(p []byte) (int, error) {
			outMu.Lock()
			defer outMu.Unlock()
			return out.Write(p)
		})),
	)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), append(all, opts...)...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		acancel()
	})
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		outMu.Lock()
		defer outMu.Unlock()
		t.Fatalf("starting Chromium: %v\n%s", err, out.String())
	}
	var mu sync.Mutex
	var problems []string
	messages := chromedp.Console(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.IsException() || m.Type == chromedp.ConsoleError {
				mu.Lock()
				problems = append(problems, fmt.Sprintf("%s %s:%d: %s", m.Type, m.URL, m.Line+1, m.Text))
				mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return ctx, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), problems...)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
