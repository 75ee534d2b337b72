package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"gocv.io/x/gocv"

	"camhub/hub/hubtest"
	"camhub/internal/testenv"
	"camhub/internal/testenv/cvtest"
	"camhub/internal/wire"
)

// store publishes a frame captured at at through JetStream, so the hub has
// it in the replay buffer when this returns.
func store(t testing.TB, js jetstream.JetStream, id string, seq uint64, at time.Time, data []byte, w, h int) {
	t.Helper()
	m := &nats.Msg{Subject: wire.FramesSubject(id), Header: wire.Frame{Seq: seq, Time: at, Width: w, Height: h}.Header(), Data: data}
	if _, err := js.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
}

// hubJS starts a hub and returns its URL and a JetStream context on it.
func hubJS(t *testing.T) (string, jetstream.JetStream) {
	t.Helper()
	url := hubtest.Start(t, nil).ClientURL()
	js, err := jetstream.New(testenv.Conn(t, url))
	if err != nil {
		t.Fatal(err)
	}
	return url, js
}

// viewerRun runs viewer in this process with args and returns its exit
// status and output.
func viewerRun(args ...string) (code int, stdout, stderr string) {
	var o, e strings.Builder
	code = run(context.Background(), args, &o, &e)
	return code, o.String(), e.String()
}

// frameCount reads a clip with OpenCV and counts its frames.
func frameCount(t *testing.T, path string) int {
	t.Helper()
	vc := cvtest.OpenVideo(t, path)
	m := gocv.NewMat()
	defer m.Close()
	n := 0
	for vc.Read(&m) && !m.Empty() {
		n++
	}
	return n
}

// rfc3339 writes a time as --from and --to take it.
func rfc3339(t time.Time) string { return t.Format(time.RFC3339Nano) }

func TestExport(t *testing.T) {
	url, js := hubJS(t)
	// 31 frames a camera at 10 fps (3 s), ending now; back's 50 ms after
	// front's
	redJPEG, blueJPEG := cvtest.JPEG(t, cvtest.Red, 320, 240), cvtest.JPEG(t, cvtest.Blue, 320, 240)
	const n = 31
	end := time.Now()
	ts := make([]time.Time, n)
	for i := range ts {
		ts[i] = end.Add(-time.Duration(n-1-i) * 100 * time.Millisecond)
		store(t, js, "front", uint64(i+1), ts[i], redJPEG, 320, 240)
		store(t, js, "back", uint64(i+1), ts[i].Add(50*time.Millisecond), blueJPEG, 320, 240)
	}

	for _, tc := range []struct {
		name  string
		args  []string
		files map[string]int // file: frames
		says  []string
	}{
		{"the whole buffer", []string{"--cam", "front", "--out", "front.mp4"}, map[string]int{"front.mp4": n},
			[]string{"wrote ", "front.mp4: 31 frames, 3.1s at 10 fps, ", "(avc1)", "captured "}},
		{"a range", []string{"--cam", "front", "--from", rfc3339(ts[10]), "--to", rfc3339(ts[20]), "--out", "front.avi"},
			map[string]int{"front.avi": 11}, []string{"front.avi: 11 frames, 1.1s at 10 fps, Motion JPEG (MJPG)"}},
		{"from to the end", []string{"--cam", "back", "--from", rfc3339(ts[25]), "--out", "back.mp4"},
			map[string]int{"back.mp4": 6}, []string{"back.mp4: 6 frames"}}, // back's frames are 50 ms later
		{"since more than the buffer holds", []string{"--cam", "front", "--since", "1h", "--out", "front.mp4"},
			map[string]int{"front.mp4": n}, []string{"front.mp4: 31 frames"}},
		{"two cameras", []string{"--cams", "front,back", "--out-dir", ".", "--format", "avi"},
			map[string]int{"front.avi": n, "back.avi": n}, []string{"front.avi: 31 frames", "back.avi: 31 frames"}},
		{"into a new directory", []string{"--cams", "front,back", "--out-dir", "./clips/new", "--format", "avi"},
			map[string]int{"clips/new/front.avi": n, "clips/new/back.avi": n}, []string{"new/front.avi: 31 frames"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			args := []string{"export", "--nats", url}
			for _, a := range tc.args {
				if strings.HasSuffix(a, ".mp4") || strings.HasSuffix(a, ".avi") || strings.HasPrefix(a, ".") {
					a = filepath.Join(dir, a)
				}
				args = append(args, a)
			}
			code, stdout, stderr := viewerRun(args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			t.Logf("%s", stdout)
			for _, want := range tc.says {
				if !strings.Contains(stdout, want) {
					t.Errorf("output lacks %q:\n%s", want, stdout)
				}
			}
			if lines := strings.Count(stdout, "\n"); lines != len(tc.files) {
				t.Errorf("%d lines of output for %d files", lines, len(tc.files))
			}
			var want []string
			for name, frames := range tc.files {
				want = append(want, name)
				if got := frameCount(t, filepath.Join(dir, name)); got != frames {
					t.Errorf("%s: %d frames, want %d", name, got, frames)
				}
			}
			if got := testenv.Names(t, dir); !sameSet(got, want) {
				t.Errorf("files %v, want %v", got, want)
			}
		})
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// Failed exports say why, exit 1 (2 for a request that cannot work), and
// leave no file behind.
func TestExportErrors(t *testing.T) {
	url, js := hubJS(t)
	redJPEG := cvtest.JPEG(t, cvtest.Red, 160, 120)
	now := time.Now()
	for i := range 10 {
		store(t, js, "front", uint64(i+1), now.Add(time.Duration(i-9)*100*time.Millisecond), redJPEG, 160, 120)
		store(t, js, "back", uint64(i+1), now.Add(time.Duration(i-9)*100*time.Millisecond), redJPEG, 160, 120)
	}
	for _, tc := range []struct {
		name string
		args []string // DIR is the test's directory
		code int
		says []string
	}{
		{"unknown camera", []string{"--cam", "garage", "--out", "DIR/garage.mp4"}, 1,
			[]string{`camera "garage": no frames in the replay buffer`, "the buffer holds frames of back, front"}},
		{"one unknown camera of two", []string{"--cams", "front,garage", "--out-dir", "DIR"}, 1,
			[]string{`camera "garage": no frames`}},
		{"bad extension", []string{"--cam", "front", "--out", "DIR/front.mkv"}, 2, []string{"must end in .mp4 or .avi"}},
		{"missing directory", []string{"--cam", "front", "--out", "DIR/missing/front.mp4"}, 1,
			[]string{"cannot write DIR/missing/front.mp4", "no such file or directory"}},
		{"directory is a file", []string{"--cam", "front", "--out", "DIR/file/front.mp4"}, 1,
			[]string{"cannot write DIR/file/front.mp4", "not a directory"}},
		{"range outside the buffer", []string{"--cam", "front", "--from", "2020-01-01T00:00:00Z", "--to", "2020-01-01T00:01:00Z", "--out", "DIR/front.mp4"}, 1,
			[]string{"range outside the replay buffer", "asked for", "the buffer holds", "--replay"}},
		{"from after to", []string{"--cam", "front", "--from", rfc3339(now), "--to", rfc3339(now.Add(-time.Second)), "--out", "DIR/front.mp4"}, 2,
			[]string{"is after --to"}},
		{"since with from", []string{"--cam", "front", "--since", "5s", "--from", rfc3339(now), "--out", "DIR/front.mp4"}, 2,
			[]string{"--since cannot be combined with --from or --to"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "file"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			args := []string{"export", "--nats", url}
			for _, a := range tc.args {
				args = append(args, strings.ReplaceAll(a, "DIR", dir))
			}
			code, stdout, stderr := viewerRun(args...)
			stderr = strings.ReplaceAll(stderr, dir, "DIR")
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tc.code, stderr)
			}
			for _, want := range tc.says {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr lacks %q: %s", want, stderr)
				}
			}
			want := []string{"file"}
			if tc.name == "one unknown camera of two" {
				// the other camera's clip is written
				want = append(want, "front.mp4")
				if !strings.Contains(stdout, "front.mp4: 10 frames") {
					t.Errorf("stdout: %s", stdout)
				}
			}
			if got := testenv.Names(t, dir); !sameSet(got, want) {
				t.Errorf("files left: %v, want %v", got, want)
			}
		})
	}
}

// Ctrl-C stops the real binary's export and leaves no file.
func TestExportInterrupted(t *testing.T) {
	url, js := hubJS(t)
	// enough frames that the export takes a while
	w, h := 1280, 720
	frame := cvtest.JPEG(t, cvtest.Red, w, h)
	const n = 300
	end := time.Now()
	for i := range n {
		store(t, js, "front", uint64(i+1), end.Add(-time.Duration(n-1-i)*33*time.Millisecond), frame, w, h)
	}
	dir := t.TempDir()
	cmd := exec.Command(viewerBin(t), "export", "--cam", "front", "--out", filepath.Join(dir, "front.mp4"), "--nats", url)
	var stderr testenv.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill() // if still running
	})
	// the export has begun once its temporary file is there
	deadline := time.Now().Add(20 * time.Second)
	for len(testenv.Names(t, dir)) == 0 {
		select {
		case err := <-exited:
			t.Fatalf("the export ended (%v) before it was interrupted: %s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no temporary file after 20 s: %s", stderr.String())
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not synchronisation
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
			t.Fatalf("exit %v, want 1; stderr: %s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the export did not stop within 20 s of SIGINT")
	}
	if !strings.Contains(stderr.String(), "cancelled; not written: "+filepath.Join(dir, "front.mp4")) {
		t.Errorf("stderr: %s", stderr.String())
	}
	if got := testenv.Names(t, dir); len(got) != 0 {
		t.Errorf("files left: %v", got)
	}
}

func TestSnapshot(t *testing.T) {
	url, js := hubJS(t)
	now := time.Now()
	front := [][]byte{cvtest.JPEG(t, cvtest.Red, 320, 240), cvtest.JPEG(t, cvtest.Blue, 320, 240)}
	back := cvtest.JPEG(t, cvtest.Red, 640, 480)
	for i, data := range front {
		store(t, js, "front", uint64(i+1), now.Add(time.Duration(i-1)*100*time.Millisecond), data, 320, 240)
	}
	store(t, js, "back", 7, now, back, 640, 480)
	newest := map[string][]byte{"front": front[1], "back": back}

	check := func(t *testing.T, path, id string, w, h int) {
		t.Helper()
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(data, newest[id]) {
			t.Errorf("%s: %d bytes, not the newest frame of %s", path, len(data), id)
		}
		m, err := gocv.IMDecode(data, gocv.IMReadColor)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		if m.Cols() != w || m.Rows() != h {
			t.Errorf("%s decodes to %dx%d, want %dx%d", path, m.Cols(), m.Rows(), w, h)
		}
	}

	t.Run("one camera", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "front.jpg")
		code, stdout, stderr := viewerRun("snapshot", "--cam", "front", "--out", out, "--nats", url)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		t.Logf("%s", stdout)
		check(t, out, "front", 320, 240)
		for _, want := range []string{"wrote " + out + ": ", "B, 320x240, frame 2 captured ", "s ago)"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("output lacks %q: %s", want, stdout)
			}
		}
	})

	t.Run("two cameras", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "snaps", "today") // created
		code, stdout, stderr := viewerRun("snapshot", "--cams", "front,back", "--out-dir", dir, "--nats", url)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		check(t, filepath.Join(dir, "front.jpg"), "front", 320, 240)
		check(t, filepath.Join(dir, "back.jpg"), "back", 640, 480)
		if strings.Count(stdout, "wrote ") != 2 || !strings.Contains(stdout, "640x480, frame 7") {
			t.Errorf("output: %s", stdout)
		}
		if got := testenv.Names(t, dir); !sameSet(got, []string{"front.jpg", "back.jpg"}) {
			t.Errorf("files %v", got)
		}
	})

	t.Run("cameras and directory from the file", func(t *testing.T) {
		dir := t.TempDir()
		file := writeFile(t, "cams: [back, front]\nout-dir: "+dir+"\n")
		code, _, stderr := viewerRun("snapshot", "--config", file, "--nats", url)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		check(t, filepath.Join(dir, "front.jpg"), "front", 320, 240)
		check(t, filepath.Join(dir, "back.jpg"), "back", 640, 480)
	})

	t.Run("errors", func(t *testing.T) {
		dir := t.TempDir()
		for _, tc := range []struct {
			args []string
			code int
			says string
		}{
			{[]string{"--cam", "garage", "--out", filepath.Join(dir, "garage.jpg")}, 1, `camera "garage": no frames in the replay buffer`},
			{[]string{"--cam", "front", "--out", filepath.Join(dir, "front.png")}, 2, "must end in .jpg or .jpeg"},
			{[]string{"--cam", "front", "--out", filepath.Join(dir, "missing", "front.jpg")}, 1, "no such file or directory"},
		} {
			code, _, stderr := viewerRun(append([]string{"snapshot", "--nats", url}, tc.args...)...)
			if code != tc.code || !strings.Contains(stderr, tc.says) {
				t.Errorf("%q: exit %d, stderr %q; want %d and %q", tc.args, code, stderr, tc.code, tc.says)
			}
		}
		if got := testenv.Names(t, dir); len(got) != 0 {
			t.Errorf("files left: %v", got)
		}
	})
}

// Export and snapshot say how to get a replay buffer on a NATS server no
// hub provisioned.
func TestNoBuffer(t *testing.T) {
	url := testenv.NATS(t, nil).ClientURL()
	dir := t.TempDir()
	for _, args := range [][]string{
		{"snapshot", "--cams", "front,back", "--out-dir", dir},
		{"export", "--cams", "front,back", "--out-dir", dir},
		{"export", "--cam", "front", "--out", filepath.Join(dir, "front.mp4")},
	} {
		code, _, stderr := viewerRun(append(args, "--nats", url)...)
		if code != 1 || !strings.Contains(stderr, "no replay buffer") || !strings.Contains(stderr, "is the hub running?") ||
			strings.Count(stderr, "\n") != 1 {
			t.Errorf("%q: exit %d, stderr %q", args, code, stderr)
		}
	}
	if got := testenv.Names(t, dir); len(got) != 0 {
		t.Errorf("files left: %v", got)
	}
}

// On a terminal the bar shows the count, the rate and the time left, and
// is erased at the end.
func TestProgressBar(t *testing.T) {
	var b strings.Builder
	p := newProgress(&b, "front", true, time.Now)
	for i := 0; i <= 50; i++ {
		p.update(i, 50)
	}
	p.clear()
	out := b.String()
	for _, want := range []string{"front", "0/50", "frames/", "%"} {
		if !strings.Contains(out, want) {
			t.Errorf("bar lacks %q: %q", want, out)
		}
	}
	if !strings.HasSuffix(out, "\r") {
		t.Errorf("bar not erased at the end: %q", out)
	}
}

// Elsewhere it writes a plain line every progressEvery, with the rate and
// the time left.
func TestProgressLines(t *testing.T) {
	var b strings.Builder
	clock := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
	p := newProgress(&b, "front", false, func() time.Time { return clock })
	for i := 0; i <= 400; i++ {
		p.update(i, 400)
		clock = clock.Add(100 * time.Millisecond) // 10 frames/s: 40 s
	}
	p.clear()
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 7 || lines[0] != "front: 50/400 frames (12%), 10.0 frames/s, 35s left" {
		t.Errorf("progress lines %q", lines)
	}
	if strings.Contains(b.String(), "\r") || strings.Contains(b.String(), "\x1b") {
		t.Errorf("terminal codes in %q", b.String())
	}
	if isTerminal(&b) {
		t.Error("a strings.Builder is a terminal")
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if isTerminal(f) {
		t.Error("a file is a terminal")
	}
}
