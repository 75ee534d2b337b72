package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"camhub/hub/hubtest"
	"camhub/internal/testenv"
	"camhub/internal/testenv/cvtest"
)

// colourArea counts the pixels of a picture that are strongly red and
// strongly blue.
func colourArea(file string) (red, blue int) {
	m := gocv.IMRead(file, gocv.IMReadColor)
	defer m.Close()
	if m.Empty() {
		return 0, 0
	}
	b, _ := m.DataPtrUint8()
	for i := 0; i+2 < len(b); i += 3 {
		switch {
		case b[i+2] > 200 && b[i+1] < 60 && b[i] < 60:
			red++
		case b[i] > 200 && b[i+1] < 60 && b[i+2] < 60:
			blue++
		}
	}
	return red, blue
}

// amberArea counts the pixels of a picture in the amber of the labels of
// tiles behind live.
func amberArea(file string) int {
	m := gocv.IMRead(file, gocv.IMReadColor)
	defer m.Close()
	if m.Empty() {
		return 0
	}
	b, _ := m.DataPtrUint8()
	n := 0
	for i := 0; i+2 < len(b); i += 3 {
		if b[i+2] > 200 && b[i+1] > 140 && b[i+1] < 230 && b[i] < 90 {
			n++
		}
	}
	return n
}

// wmClose is a C program that asks an X window to close, as a window
// manager's close button does (a WM_DELETE_WINDOW message); xdotool here
// has no such command.
const wmClose = `#include <X11/Xlib.h>
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv) {
	Display *d = XOpenDisplay(NULL);
	if (argc != 2 || !d) { fprintf(stderr, "usage: DISPLAY=:N wmclose WINDOW\n"); return 2; }
	XEvent ev = {0};
	ev.xclient.type = ClientMessage;
	ev.xclient.window = (Window)strtoul(argv[1], NULL, 0);
	ev.xclient.message_type = XInternAtom(d, "WM_PROTOCOLS", False);
	ev.xclient.format = 32;
	ev.xclient.data.l[0] = XInternAtom(d, "WM_DELETE_WINDOW", False);
	ev.xclient.data.l[1] = CurrentTime;
	XSendEvent(d, ev.xclient.window, False, NoEventMask, &ev);
	XCloseDisplay(d);
	return 0;
}
`

// viewerProc is a running viewer binary.
type viewerProc struct {
	cmd     *exec.Cmd
	logs    testenv.Buffer
	exited  chan struct{} // closed when it has exited; err is then set
	err     error
	display string
}

// startViewer runs the viewer binary on display with args and kills it
// when the test ends if it is still running.
func startViewer(t *testing.T, display string, args ...string) *viewerProc {
	t.Helper()
	p := &viewerProc{cmd: exec.Command(viewerBin(t), args...), exited: make(chan struct{}), display: display}
	runtimeDir := t.TempDir()
	os.Chmod(runtimeDir, 0o700) // or Qt complains
	p.cmd.Env = append(os.Environ(), "DISPLAY="+display, "XDG_RUNTIME_DIR="+runtimeDir)
	p.cmd.Stdout, p.cmd.Stderr = &p.logs, &p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill() // if still running
		<-p.exited
	})
	return p
}

// x runs an X client on the viewer's display.
func (p *viewerProc) x(name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "DISPLAY="+p.display)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// window waits for the viewer's window and returns its X id.
func (p *viewerProc) window(t *testing.T) string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, err := p.x("xdotool", "search", "--onlyvisible", "--name", "^camhub$")
		if ids := strings.Fields(out); err == nil && len(ids) > 0 {
			return ids[0]
		}
		select {
		case <-p.exited:
			t.Fatalf("the viewer exited before showing its window: %v\n%s", p.err, p.logs.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no camhub window after 15 s; log:\n%s", p.logs.String())
		}
	}
}

// key sends a key press to the viewer's window. xdotool fails with
// BadWindow when the window is gone before it sends the key's release: the
// viewer quit on the press, which the caller's waitExit then checks. If
// the viewer is still running, the window was replaced while it was being
// set up: it is looked up again and the key sent again.
func (p *viewerProc) key(t *testing.T, key string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, err := p.x("xdotool", "key", "--window", p.window(t), key)
		if err == nil {
			return
		}
		if !strings.Contains(out, "BadWindow") || time.Now().After(deadline) {
			t.Fatalf("xdotool key %s: %v %s", key, err, out)
		}
		select {
		case <-p.exited:
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitExit waits for the viewer to exit cleanly within a few seconds.
func (p *viewerProc) waitExit(t *testing.T, after string) {
	t.Helper()
	select {
	case <-p.exited:
		if p.err != nil {
			t.Fatalf("after %s the viewer exited with %v; log:\n%s", after, p.err, p.logs.String())
		}
	case <-time.After(20 * time.Second): // a deadline for a hung viewer, not a measure: a loaded machine with -race takes seconds
		t.Fatalf("the viewer did not quit within 20 s of %s; log:\n%s", after, p.logs.String())
	}
}

// The real viewer in a real window on Xvfb shows the frames published to
// a real hub, and quits on q, Esc, closing the window and SIGTERM.
func TestWindow(t *testing.T) {
	display := testenv.Xvfb(t)
	h := hubtest.Start(t, nil)

	// publish red frames for front and blue for back at about 10 fps
	pub := testenv.Conn(t, h.ClientURL())
	redJPEG, blueJPEG := cvtest.JPEG(t, cvtest.Red, 640, 480), cvtest.JPEG(t, cvtest.Blue, 640, 480)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for seq := uint64(1); ; seq++ {
			pub.PublishMsg(testenv.FrameMsg("front", seq, time.Now(), redJPEG, 640, 480))
			pub.PublishMsg(testenv.FrameMsg("back", seq, time.Now(), blueJPEG, 640, 480))
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { close(stop); wg.Wait() })

	t.Run("shows the cameras and quits on q", func(t *testing.T) {
		p := startViewer(t, display, "--cams", "front,back", "--nats", h.ClientURL())
		shot := filepath.Join(t.TempDir(), "screen.png")
		deadline := time.Now().Add(20 * time.Second)
		for {
			select {
			case <-p.exited:
				t.Fatalf("the viewer exited early: %v\n%s", p.err, p.logs.String())
			default:
			}
			if err := testenv.Screenshot(display, shot); err != nil {
				t.Fatal(err)
			}
			r, b := colourArea(shot)
			// each 4:3 picture in a 636x712 tile is 636x477 pixels
			if r > 200_000 && b > 200_000 {
				t.Logf("screenshot %s: %d red and %d blue pixels", shot, r, b)
				if dir := os.Getenv("CAMHUB_TEST_SCREENSHOTS"); dir != "" {
					// keep the screenshot for a human to look at
					data, _ := os.ReadFile(shot)
					os.WriteFile(filepath.Join(dir, "viewer-window.png"), data, 0o644)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no red and blue tiles on the screen (%d red, %d blue pixels) in %s; log:\n%s", r, b, shot, p.logs.String())
			}
			time.Sleep(200 * time.Millisecond)
		}
		p.key(t, "q")
		p.waitExit(t, "q")
		if !strings.Contains(p.logs.String(), `reason="key pressed"`) {
			t.Errorf("log:\n%s", p.logs.String())
		}
	})

	t.Run("rewinds with --since", func(t *testing.T) {
		// more than the buffer holds: it starts at the oldest frame, and
		// at speed 1 stays that far behind live, in amber
		p := startViewer(t, display, "--cams", "front,back", "--since", "10m", "--nats", h.ClientURL())
		shot := filepath.Join(t.TempDir(), "screen.png")
		deadline := time.Now().Add(20 * time.Second)
		for {
			select {
			case <-p.exited:
				t.Fatalf("the viewer exited early: %v\n%s", p.err, p.logs.String())
			default:
			}
			if err := testenv.Screenshot(display, shot); err != nil {
				t.Fatal(err)
			}
			r, b := colourArea(shot)
			a := amberArea(shot)
			if r > 200_000 && b > 200_000 && a > 50 {
				t.Logf("screenshot %s: %d red, %d blue and %d amber pixels", shot, r, b, a)
				if dir := os.Getenv("CAMHUB_TEST_SCREENSHOTS"); dir != "" {
					data, _ := os.ReadFile(shot)
					os.WriteFile(filepath.Join(dir, "viewer-rewind.png"), data, 0o644)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no replayed red and blue tiles with amber labels on the screen (%d red, %d blue, %d amber pixels) in %s; log:\n%s",
					r, b, a, shot, p.logs.String())
			}
			time.Sleep(200 * time.Millisecond)
		}
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		p.waitExit(t, "SIGTERM")
		for _, want := range []string{`msg=rewinding`, `speed=1`, `msg="rewind note" note="asked for 10m0s ago, but the buffer holds`, "starting at its oldest frame", "frames_played="} {
			if !strings.Contains(p.logs.String(), want) {
				t.Errorf("the log lacks %q:\n%s", want, p.logs.String())
			}
		}
	})

	t.Run("a rewind without a replay buffer fails", func(t *testing.T) {
		bare := testenv.NATS(t, nil) // a NATS server no hub provisioned
		p := startViewer(t, display, "--cams", "front", "--since", "20s", "--nats", bare.ClientURL())
		select {
		case <-p.exited:
		case <-time.After(20 * time.Second):
			t.Fatalf("the viewer still runs 20 s later; log:\n%s", p.logs.String())
		}
		if ee, ok := p.err.(*exec.ExitError); !ok || ee.ExitCode() != 1 ||
			!strings.Contains(p.logs.String(), "rewind: no replay buffer") || !strings.Contains(p.logs.String(), "is the hub running?") {
			t.Fatalf("exit %v; log:\n%s", p.err, p.logs.String())
		}
	})

	t.Run("quits on Esc", func(t *testing.T) {
		p := startViewer(t, display, "--nats", h.ClientURL())
		p.key(t, "Escape")
		p.waitExit(t, "Esc")
	})

	t.Run("quits when the window is closed", func(t *testing.T) {
		dir := t.TempDir()
		src, bin := filepath.Join(dir, "wmclose.c"), filepath.Join(dir, "wmclose")
		if err := os.WriteFile(src, []byte(wmClose), 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("cc", "-o", bin, src, "-lX11").CombinedOutput(); err != nil {
			t.Fatalf("compiling wmclose: %v\n%s", err, out)
		}
		p := startViewer(t, display, "--cams", "front", "--nats", h.ClientURL())
		if out, err := p.x(bin, p.window(t)); err != nil {
			t.Fatalf("wmclose: %v %s", err, out)
		}
		p.waitExit(t, "closing the window")
		if !strings.Contains(p.logs.String(), `reason="window closed"`) {
			t.Errorf("log:\n%s", p.logs.String())
		}
	})

	t.Run("quits on SIGTERM", func(t *testing.T) {
		p := startViewer(t, display, "--cams", "front", "--nats", h.ClientURL())
		p.window(t)
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		p.waitExit(t, "SIGTERM")
	})
}
