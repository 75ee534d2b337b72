// Package test runs camhub the way a user does: the real hub, agent and
// viewer binaries as separate processes, talking NATS over loopback, with
// the viewer's window on a private X server.
package test

import (
	"encoding/json"
	"fmt"
	"image"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"camhub/internal/testenv"
)

type listed struct {
	ID    string `json:"id"`
	State string `json:"state"`
}

// cameraStates runs viewer list --json and returns each camera's state.
func cameraStates(t *testing.T, url string) map[string]string {
	t.Helper()
	out, err := run(t, "viewer", "list", "--json", "--nats", url)
	if err != nil {
		t.Fatal(err)
	}
	var cams []listed
	if err := json.Unmarshal([]byte(out), &cams); err != nil {
		t.Fatalf("viewer list --json: %v\n%s", err, out)
	}
	states := map[string]string{}
	for _, c := range cams {
		states[c.ID] = c.State
	}
	return states
}

func waitStates(t *testing.T, url string, want map[string]string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := cameraStates(t, url)
		ok := true
		for id, st := range want {
			ok = ok && got[id] == st
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("viewer list: %v, want %v", got, want)
		}
		time.Sleep(100 * time.Millisecond) // polling interval, not synchronisation
	}
}

// windowRect finds the viewer's window on display.
func windowRect(t *testing.T, display string) image.Rectangle {
	t.Helper()
	cmd := exec.Command("xdotool", "search", "--sync", "--onlyvisible", "--name", "^camhub", "getwindowgeometry", "--shell")
	cmd.Env = append(cmd.Environ(), "DISPLAY="+display)
	timer := time.AfterFunc(30*time.Second, func() { cmd.Process.Kill() })
	defer timer.Stop()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("finding the viewer window: %v", err)
	}
	v := map[string]int{}
	for _, line := range strings.Split(string(out), "\n") {
		if k, val, ok := strings.Cut(line, "="); ok {
			v[k], _ = strconv.Atoi(val)
		}
	}
	return image.Rect(v["X"], v["Y"], v["X"]+v["WIDTH"], v["Y"]+v["HEIGHT"])
}

// fittedWindow waits for the viewer's window on display to fit its grid
// (at least 480x180: Qt shows the window at a default size, then fits it
// to the first canvas shown) and returns where it is.
func fittedWindow(t *testing.T, display string) image.Rectangle {
	t.Helper()
	win := windowRect(t, display)
	for deadline := time.Now().Add(30 * time.Second); win.Dx() < 480 || win.Dy() < 180; win = windowRect(t, display) {
		if time.Now().After(deadline) {
			t.Fatalf("viewer window %v is too small", win)
		}
		time.Sleep(100 * time.Millisecond) // polling interval, not synchronisation
	}
	return win
}

// changed counts the pixels of region r that differ between two images.
func changed(a, b gocv.Mat, r image.Rectangle) int {
	ra, rb := a.Region(r), b.Region(r)
	defer ra.Close()
	defer rb.Close()
	diff := gocv.NewMat()
	defer diff.Close()
	gocv.AbsDiff(ra, rb, &diff)
	gray := gocv.NewMat()
	defer gray.Close()
	gocv.CvtColor(diff, &gray, gocv.ColorBGRToGray)
	gocv.Threshold(gray, &gray, 16, 255, gocv.ThresholdBinary)
	return gocv.CountNonZero(gray)
}

// waitTilesChange takes screenshots of display until both halves of the
// window win (a tile each, in a grid of two) change between two of them:
// both cameras are live, not "no signal" nor a still picture. With
// CAMHUB_TEST_SCREENSHOTS set, the last screenshot is kept there as keep.
func waitTilesChange(t *testing.T, display string, win image.Rectangle, keep string) {
	t.Helper()
	left := image.Rect(win.Min.X, win.Min.Y, win.Min.X+win.Dx()/2, win.Max.Y)
	right := image.Rect(win.Min.X+win.Dx()/2, win.Min.Y, win.Max.X, win.Max.Y)
	dir := t.TempDir()
	shot := func(i int) gocv.Mat {
		file := filepath.Join(dir, fmt.Sprintf("shot%d.png", i))
		if err := testenv.Screenshot(display, file); err != nil {
			t.Fatal(err)
		}
		m := gocv.IMRead(file, gocv.IMReadColor)
		if m.Empty() {
			t.Fatalf("cannot read %s", file)
		}
		return m
	}
	prev := shot(0)
	defer func() { prev.Close() }()
	deadline := time.Now().Add(30 * time.Second)
	for i := 1; ; i++ {
		cur := shot(i)
		l, r := changed(prev, cur, left), changed(prev, cur, right)
		prev.Close()
		prev = cur
		if l > 500 && r > 500 {
			t.Logf("screenshot %d: %d and %d pixels changed in the two tiles (%s)", i, l, r, dir)
			if to := os.Getenv("CAMHUB_TEST_SCREENSHOTS"); to != "" {
				os.Rename(filepath.Join(dir, fmt.Sprintf("shot%d.png", i)), filepath.Join(to, keep))
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("tiles not both live: %d and %d pixels changed (screenshots in %s)", l, r, dir)
		}
	}
}

// On one machine: a hub, two agents and the grid viewer show two live
// cameras in one window; an agent that stops is seen offline at once; q
// quits the viewer.
func TestOneMachine(t *testing.T) {
	hub := start(t, nil, "hub", "--listen", "127.0.0.1:0", "--monitor", "127.0.0.1:0")
	url := hub.waitLog(`msg="NATS server ready" url=(nats://[0-9.:]+)`)

	front := start(t, nil, "agent", "--id", "front", "--source", "testpattern", "--nats", url, "--fps", "15")
	back := start(t, nil, "agent", "--id", "back", "--source", "testpattern", "--nats", url, "--fps", "10", "--size", "320x240")
	hub.waitLog(`msg="camera joined" camera=front`)
	hub.waitLog(`msg="camera joined" camera=back`)
	waitStates(t, url, map[string]string{"front": "live", "back": "live"})

	display := testenv.Xvfb(t)
	viewer := start(t, []string{"DISPLAY=" + display}, "viewer", "--cams", "front,back", "--nats", url, "--window-size", "960x360")
	win := fittedWindow(t, display)
	// Both halves of the window (one tile each) must change between two
	// screenshots: both cameras are live, not "no signal".
	waitTilesChange(t, display, win, "one-machine.png")

	back.stop()
	hub.waitLog(`msg="camera left" camera=back reason="agent stopped"`)
	if st := cameraStates(t, url); st["back"] != "offline" || st["front"] != "live" {
		t.Fatalf("after back stopped: %v", st)
	}

	key := exec.Command("xdotool", "search", "--name", "^camhub", "windowfocus", "--sync", "key", "q")
	key.Env = append(key.Environ(), "DISPLAY="+display)
	// BadWindow: the viewer quit on the key press and its window was gone
	// before xdotool sent the release; wait(0) checks it quit cleanly.
	if out, err := key.CombinedOutput(); err != nil && !strings.Contains(string(out), "BadWindow") {
		t.Fatalf("xdotool key q: %v\n%s", err, out)
	}
	viewer.wait(0)
	front.stop()
	hub.stop()
}
