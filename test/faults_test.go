package test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"gocv.io/x/gocv"

	"camhub/internal/replay"
	"camhub/internal/testenv"
)

// webFrames is camhub_web_camera_frames_total of camera id on a web
// viewer; -1 if it does not answer.
func webFrames(base, id string) float64 {
	m := scrape(base)
	if m == nil {
		return -1
	}
	return m[fmt.Sprintf(`camhub_web_camera_frames_total{camera=%q}`, id)]
}

// bufferBounds returns the capture times of the oldest and newest frame of
// camera id in the hub's replay buffer.
func bufferBounds(t *testing.T, js jetstream.JetStream, id string) (first, last time.Time, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return replay.Bounds(ctx, js, id)
}

// The hub is killed (SIGKILL) and started again on the same port and file
// store. The agent, a plain subscriber and a web viewer reconnect by
// themselves; the frames buffered before the kill are still there.
func TestHubKilled(t *testing.T) {
	storeDir := t.TempDir()
	hubArgs := []string{"--monitor", "", "--storage", "file", "--store-dir", storeDir, "--replay", "5m", "--http", "127.0.0.1:0"}
	hub := start(t, nil, "hub", append([]string{"--listen", "127.0.0.1:0"}, hubArgs...)...)
	natsURL := hub.waitLog(`msg="NATS server ready" url=(nats://[0-9.:]+)`)
	agent := start(t, nil, "agent", "--id", "front", "--source", "testpattern", "--nats", natsURL, "--fps", "10", "--size", "320x240",
		"--http", "127.0.0.1:0")
	agentOps := agent.waitLog(`msg="http listening" url=(http://[0-9.:]+)`)
	web := start(t, nil, "viewer", "--http", "127.0.0.1:0", "--nats", natsURL)
	webBase := web.waitLog(`msg="web viewer listening" url=(http://[0-9.:]+)`)
	sub := subscribeFrames(t, natsURL, "front")

	js, err := jetstream.New(testenv.Conn(t, natsURL))
	if err != nil {
		t.Fatal(err)
	}
	var first time.Time
	testenv.Eventually(t, 60*time.Second, "3 s of frames in the buffer", func() bool {
		f, l, err := bufferBounds(t, js, "front")
		first = f
		return err == nil && l.Sub(f) >= 3*time.Second
	})

	testenv.Eventually(t, 30*time.Second, "the web viewer receiving frames", func() bool { return webFrames(webBase, "front") > 0 })
	dir := t.TempDir()
	from, to := first.Add(500*time.Millisecond).Format(time.RFC3339Nano), first.Add(2500*time.Millisecond).Format(time.RFC3339Nano)
	before := export(t, "--cam", "front", "--from", from, "--to", to, "--out", filepath.Join(dir, "before.avi"), "--nats", natsURL)

	seqBefore := sub.last().seq
	webBefore := webFrames(webBase, "front")
	if err := hub.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-hub.done
	killed := time.Now()
	t.Logf("hub killed (SIGKILL) at Frame-Seq %d", seqBefore)
	agent.waitLog(`msg="disconnected from NATS"`)

	u, err := url.Parse(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	hub = start(t, nil, "hub", append([]string{"--listen", u.Host}, hubArgs...)...)
	if again := hub.waitLog(`msg="NATS server ready" url=(nats://[0-9.:]+)`); again != natsURL {
		t.Fatalf("the hub came back on %s, not %s", again, natsURL)
	}
	restarted := time.Now()
	t.Logf("hub restarted %v after the kill", restarted.Sub(killed).Round(time.Millisecond))

	// Each client reconnects unaided; a deadline of 30 s guards against a
	// client that never does (the reconnect backoff is at most 5 s + 20 %).
	testenv.Eventually(t, 30*time.Second, "the agent reconnecting", func() bool {
		return agentCounter(scrape(agentOps), "nats_connected", "front") == 1
	})

	agentBack := time.Since(restarted)
	testenv.Eventually(t, 30*time.Second, "frames reaching a plain subscriber again", func() bool { return sub.last().seq > seqBefore })
	subBack := time.Since(restarted)
	testenv.Eventually(t, 30*time.Second, "frames reaching the web viewer again", func() bool { return webFrames(webBase, "front") > webBefore })
	webBack := time.Since(restarted)
	t.Logf("after the restart: agent connected within %v, subscriber got frames within %v, web viewer within %v (%v after the kill)",
		agentBack.Round(time.Millisecond), subBack.Round(time.Millisecond), webBack.Round(time.Millisecond),
		time.Since(killed).Round(time.Millisecond))
	web.waitLog(`msg="reconnected to NATS"`)

	// the agent kept its Frame-Seq: it was not restarted
	if l := sub.last(); l.seq <= seqBefore || sub.restartCount() != 0 {
		t.Fatalf("Frame-Seq after the restart %d, before %d, restarts %d", l.seq, seqBefore, sub.restartCount())
	}
	frames, gaps := sub.snapshot()
	t.Logf("the subscriber got %d frames; %d missing from Frame-Seq (the outage)", len(frames), gaps)

	// The frames from before the kill are still in the file store, the
	// very same ones; frames after the restart are stored too.
	js2, err := jetstream.New(testenv.Conn(t, natsURL))
	if err != nil {
		t.Fatal(err)
	}
	after := export(t, "--cam", "front", "--from", from, "--to", to, "--out", filepath.Join(dir, "after.avi"), "--nats", natsURL)
	if after != before {
		t.Fatalf("after the kill the range has %d frames, before it %d", after, before)
	}
	a, b := clipFrames(t, filepath.Join(dir, "before.avi")), clipFrames(t, filepath.Join(dir, "after.avi"))
	defer closeAll(a)
	defer closeAll(b)
	for i := range a {
		if d := gocv.NormWithMats(a[i], b[i], gocv.NormInf); d > 8 {
			t.Fatalf("frame %d differs after the kill (by up to %v)", i, d)
		}
	}
	testenv.Eventually(t, 30*time.Second, "frames after the restart in the buffer", func() bool {
		f, l, err := bufferBounds(t, js2, "front")
		return err == nil && f.Equal(first) && l.After(restarted)
	})

	t.Logf("%d frames of 2 s from before the kill read back after it, identical", after)
}

// streamPart is one frame read from a web viewer's /api/stream.
type streamPart struct {
	ID   string    `json:"id"`
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
	Len  int       `json:"len"`
	at   time.Time // when the client read it
}

// readStream reads /api/stream until the body ends, sending each frame's
// header to out.
func readStream(body io.Reader, out chan<- streamPart) {
	defer close(out)
	r := bufio.NewReaderSize(body, 1<<20)
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			return
		}
		var p streamPart
		if json.Unmarshal(line, &p) != nil {
			return
		}
		if _, err := io.CopyN(io.Discard, r, int64(p.Len)); err != nil {
			return
		}
		p.at = time.Now()
		out <- p
	}
}

// A viewer that stops reading (SIGSTOP) slows nothing else down: the agent
// drops no more than before, another subscriber misses only what the agent
// dropped, the hub's memory stays bounded (the NATS server cuts the stopped
// viewer off as a slow consumer); after SIGCONT the stopped viewer shows
// current frames, not a backlog.
func TestViewerStopped(t *testing.T) {
	hub := start(t, nil, "hub", "--listen", "127.0.0.1:0", "--monitor", "127.0.0.1:0", "--replay", "5s", "--http", "127.0.0.1:0")
	natsURL := hub.waitLog(`msg="NATS server ready" url=(nats://[0-9.:]+)`)
	monitor := hub.waitLog(`monitor=(http://[0-9.:]+)`)
	agent := start(t, nil, "agent", "--id", "front", "--source", "testpattern", "--nats", natsURL, "--fps", "30", "--size", "640x480",
		"--quality", "95", "--http", "127.0.0.1:0")
	agentOps := agent.waitLog(`msg="http listening" url=(http://[0-9.:]+)`)
	stopped := start(t, nil, "viewer", "--http", "127.0.0.1:0", "--nats", natsURL)
	base := stopped.waitLog(`msg="web viewer listening" url=(http://[0-9.:]+)`)
	other := subscribeFrames(t, natsURL, "front")

	// A browser-like client of the viewer to be stopped, reading all along.
	openStream := func() chan streamPart {
		t.Helper()
		req, err := http.NewRequest("GET", base+"/api/stream?cams=front", nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		resp, err := http.DefaultClient.Do(req.WithContext(ctx))
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		parts := make(chan streamPart, 4096)
		go readStream(resp.Body, parts)
		t.Cleanup(func() {
			cancel()
			for range parts {
			}
			resp.Body.Close()
		})
		return parts
	}
	parts := openStream()
	// A write deadline the viewer set just before SIGSTOP has passed when
	// it resumes, so it may end the stream then; the page opens it again,
	// and so does this client, once.
	reopened := false
	reopen := func() {
		t.Helper()
		if reopened {
			t.Fatal("/api/stream ended again after SIGCONT")
		}
		reopened = true
		t.Log("/api/stream ended after SIGCONT (a write deadline set before SIGSTOP had passed): opened again, as the page does")
		parts = openStream()
	}
	select {
	case <-parts:
	case <-time.After(30 * time.Second):
		t.Fatal("no frame on /api/stream")
	}

	// the replay buffer (5 s) full before the hub's memory is measured
	testenv.Eventually(t, 60*time.Second, "6 s of frames", func() bool { return other.count() >= 180 })
	hubPID := hub.cmd.Process.Pid
	hubRSS := sample(t, 250*time.Millisecond, func() int64 { return rssKiB(hubPID) })
	m0 := scrape(agentOps)
	_, gaps0 := other.snapshot()
	n0 := other.count()

	if err := stopped.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopAt := time.Now()
	// The fault is a duration: 20 s stopped, longer than the NATS
	// server's write deadline, so it acts on the stalled connection.
	time.Sleep(20 * time.Second)
	m1 := scrape(agentOps)
	_, gaps1 := other.snapshot()
	n1 := other.count()
	if err := stopped.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	contAt := time.Now()
	hubRSS.end()

	// the other subscriber and the agent while the viewer was stopped
	sent := agentCounter(m1, "frames_sent_total", "front") - agentCounter(m0, "frames_sent_total", "front")
	dropped := agentCounter(m1, "frames_dropped_total", "front") - agentCounter(m0, "frames_dropped_total", "front")
	got, missed := n1-n0, gaps1-gaps0
	t.Logf("while stopped (%v): the agent sent %.0f frames (%.1f/s) and dropped %.0f; the other subscriber got %d, missed %d",
		contAt.Sub(stopAt).Round(time.Millisecond), sent, sent/contAt.Sub(stopAt).Seconds(), dropped, got, missed)
	if float64(missed) > dropped {
		t.Errorf("the other subscriber missed %d frames, the agent dropped only %.0f", missed, dropped)
	}
	if dropped > 0.1*(sent+dropped) {
		t.Errorf("the agent dropped %.0f of %.0f frames while a viewer was stopped", dropped, sent+dropped)
	}
	first, lo, hi, n := hubRSS.minMax()
	t.Logf("hub RSS over %d samples: %s at the start, %s to %s", n, mib(first), mib(lo), mib(hi))
	if hi > 2*first+128<<10 {
		t.Errorf("hub RSS grew to %s from %s while a viewer was stopped", mib(hi), mib(first))
	}
	var varz struct {
		SlowConsumers int64 `json:"slow_consumers"`
	}
	if code := getJSONStatus(t, monitor+"/varz", &varz); code == 200 {
		t.Logf("NATS server: %d slow consumers", varz.SlowConsumers)
	}

	// After SIGCONT the client of the stopped viewer gets current frames
	// again. On the way it may see, fast-forwarded, the frames that were
	// in the viewer's socket buffers when it stopped (the kernel's, a few
	// MiB): stale frames (captured more than 1 s before SIGCONT) are at
	// most what those buffers hold, never the 20 s backlog, and once a
	// current frame came no stale one follows.
	stale, staleBytes, fresh := 0, 0, streamPart{}
	deadline := time.After(30 * time.Second)
	for fresh.Seq == 0 {
		select {
		case p, ok := <-parts:
			if !ok {
				reopen()
				continue
			}
			if p.Time.Before(contAt.Add(-time.Second)) {
				stale++
				staleBytes += p.Len
				continue
			}
			fresh = p
		case <-deadline:
			t.Fatalf("no current frame within 30 s of SIGCONT (%d stale ones)", stale)
		}
	}
	t.Logf("after SIGCONT: %d stale frames (%s, fast-forwarded), then Frame-Seq %d captured %v after SIGCONT, shown %v after it",
		stale, mib(int64(staleBytes)>>10), fresh.Seq, fresh.Time.Sub(contAt).Round(time.Millisecond), fresh.at.Sub(contAt).Round(time.Millisecond))
	// the most a TCP connection's two ends buffer, twice over (the old
	// connection the server cut, and the new one)
	buffers := 2 * (sysctlMax(t, "tcp_rmem") + sysctlMax(t, "tcp_wmem"))
	if int64(staleBytes) > buffers || float64(stale) > sent/2 {
		t.Errorf("%d stale frames (%d bytes) after SIGCONT: a backlog", stale, staleBytes)
	}
	for range 30 {
		select {
		case p, ok := <-parts:
			if !ok {
				reopen()
				continue
			}
			if p.Time.Before(contAt.Add(-time.Second)) {
				t.Fatalf("a stale frame (Frame-Seq %d) after a current one", p.Seq)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("/api/stream stalled after SIGCONT")
		}
	}
	// and the viewer's own health
	testenv.Eventually(t, 30*time.Second, "the resumed viewer healthy", func() bool {
		resp, err := http.Get(base + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})

	// what the stopped viewer did on SIGCONT: a reconnect, as the server
	// had cut it off
	text, _ := stopped.logText()
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, "NATS") {
			t.Logf("stopped viewer: %s", line)
		}
	}
}

// sysctlMax is the maximum of net.ipv4.<name> (tcp_rmem, tcp_wmem): min,
// default and max socket buffer sizes in bytes.
func sysctlMax(t *testing.T, name string) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/net/ipv4/" + name)
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b))
	n, err := strconv.ParseInt(f[len(f)-1], 10, 64)
	if err != nil {
		t.Fatalf("%s: %q", name, b)
	}
	return n
}

// getJSONStatus gets url and decodes its JSON body into v.
func getJSONStatus(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Logf("GET %s: %v", url, err)
		return 0
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Logf("GET %s: %v", url, err)
	}
	return resp.StatusCode
}

// writeClip writes an MJPG .avi of n frames of 320x240 at fps.
func writeClip(t *testing.T, path string, fps float64, n int) {
	t.Helper()
	vw, err := gocv.VideoWriterFile(path, "MJPG", fps, 320, 240, true)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		v := float64(20 + (i*10)%200)
		img := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(v, v, v, 0), 240, 320, gocv.MatTypeCV8UC3)
		err := vw.Write(img)
		img.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := vw.Close(); err != nil {
		t.Fatal(err)
	}
}

// cameraEntry is one camera of viewer list --json.
type cameraEntry struct {
	ID            string `json:"id"`
	State         string `json:"state"`
	ReportedState string `json:"reported_state"`
	Error         string `json:"error"`
}

func listCamera(t *testing.T, natsURL, id string) cameraEntry {
	t.Helper()
	out, err := run(t, "viewer", "list", "--json", "--nats", natsURL)
	if err != nil {
		t.Fatal(err)
	}
	var cams []cameraEntry
	if err := json.Unmarshal([]byte(out), &cams); err != nil {
		t.Fatalf("viewer list --json: %v\n%s", err, out)
	}
	for _, c := range cams {
		if c.ID == id {
			return c
		}
	}
	return cameraEntry{}
}

// A video file played with --loop is removed mid-stream: the agent plays
// to the end of what it has open, then reports source-error (in its
// status, so viewer list shows it, and on /healthz); put back, it streams
// again without a restart, with the same Frame-Seq sequence.
func TestCameraFileRemoved(t *testing.T) {
	dir := t.TempDir()
	clip := filepath.Join(dir, "clip.avi")
	writeClip(t, clip, 20, 20) // 1 s at 20 fps
	spare := filepath.Join(dir, "spare.avi")
	if err := os.Link(clip, spare); err != nil {
		t.Fatal(err)
	}
	hub := start(t, nil, "hub", "--listen", "127.0.0.1:0", "--monitor", "")
	natsURL := hub.waitLog(`msg="NATS server ready" url=(nats://[0-9.:]+)`)
	sub := subscribeFrames(t, natsURL, "door")
	agent := start(t, nil, "agent", "--id", "door", "--source", clip, "--loop", "--nats", natsURL, "--http", "127.0.0.1:0",
		"--report-interval", "500ms")
	ops := agent.waitLog(`msg="http listening" url=(http://[0-9.:]+)`)
	testenv.Eventually(t, 30*time.Second, "the camera live", func() bool { return listCamera(t, natsURL, "door").State == "live" })
	testenv.Eventually(t, 30*time.Second, "frames", func() bool { return sub.count() >= 10 })

	if err := os.Remove(clip); err != nil {
		t.Fatal(err)
	}
	removed := time.Now()
	var c cameraEntry
	noticed := testenv.Eventually(t, 30*time.Second, "viewer list showing source-error", func() bool {
		c = listCamera(t, natsURL, "door")
		return c.State == "source-error"
	})

	t.Logf("file removed: viewer list says %q (%s) %v later", c.State, c.Error, noticed.Round(time.Millisecond))
	resp, err := http.Get(ops + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Errorf("agent /healthz while the file is gone: %d %s", resp.StatusCode, body)
	}
	errorsBefore := agentCounter(scrape(ops), "source_errors_total", "door")
	seqGone := sub.last().seq
	// still failing, and reporting it, while the file is gone: a few retries
	testenv.Eventually(t, 30*time.Second, "retries while the file is gone", func() bool {
		return agentCounter(scrape(ops), "source_errors_total", "door") >= errorsBefore+2
	})

	if l := sub.last().seq; l != seqGone {
		t.Errorf("frames arrived while the file was gone (Frame-Seq %d, then %d)", seqGone, l)
	}

	if err := os.Rename(spare, clip); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	recovered := testenv.Eventually(t, 60*time.Second, "frames again", func() bool { return sub.last().seq > seqGone })
	testenv.Eventually(t, 30*time.Second, "viewer list showing live", func() bool { return listCamera(t, natsURL, "door").State == "live" })
	t.Logf("file gone for %v; frames again %v after it was put back (the reopen backoff doubles up to 10 s)",
		back.Sub(removed).Round(time.Millisecond), recovered.Round(time.Millisecond))
	if n := sub.restartCount(); n != 0 {
		t.Errorf("Frame-Seq went back %d times: the agent restarted", n)
	}
	select {
	case <-agent.done:
		t.Fatalf("the agent exited: %v", agent.err)
	default:
	}
}

// rtspServer is a GStreamer RTSP server (gst-rtsp-server, through Python's
// GObject bindings) serving a test picture as Motion JPEG at
// rtsp://127.0.0.1:<port>/cam; port "0" picks a free one. It prints the
// port it listens on.
const rtspServer = `
import sys, gi
gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import Gst, GstRtspServer, GLib
Gst.init(None)
s = GstRtspServer.RTSPServer()
s.set_address("127.0.0.1")
s.set_service(sys.argv[1])
f = GstRtspServer.RTSPMediaFactory()
f.set_launch("( videotestsrc is-live=true ! video/x-raw,format=I420,width=320,height=240,framerate=15/1 ! jpegenc ! rtpjpegpay name=pay0 pt=26 )")
f.set_shared(True)
s.get_mount_points().add_factory("/cam", f)
s.attach(None)
print("rtsp server ready on", s.get_bound_port(), flush=True)
GLib.MainLoop().run()
`

// An RTSP camera's server stops mid-stream (SIGKILL): the agent reports
// source-error and reopens the stream with backoff; when the server is
// back on the same port the agent streams again without a restart.
func TestCameraRTSPStopped(t *testing.T) {
	script := filepath.Join(t.TempDir(), "rtsp.py")
	if err := os.WriteFile(script, []byte(rtspServer), 0o644); err != nil {
		t.Fatal(err)
	}
	// Debian's python3, which has the GObject bindings (python3-gi,
	// python3-gst-1.0, gir1.2-gst-rtsp-server-1.0: scripts/deps.sh test)
	python := "/usr/bin/python3"
	server := startArgv(t, "rtsp server", python, script, "0")
	port := server.waitLog(`rtsp server ready on (\d+)`)
	hub := start(t, nil, "hub", "--listen", "127.0.0.1:0", "--monitor", "")
	natsURL := hub.waitLog(`msg="NATS server ready" url=(nats://[0-9.:]+)`)
	sub := subscribeFrames(t, natsURL, "gate")
	agent := start(t, nil, "agent", "--id", "gate", "--source", "rtsp://127.0.0.1:"+port+"/cam", "--nats", natsURL,
		"--report-interval", "500ms", "--size", "320x240")
	testenv.Eventually(t, 60*time.Second, "frames from the RTSP camera", func() bool { return sub.count() >= 15 })
	testenv.Eventually(t, 30*time.Second, "the camera live", func() bool { return listCamera(t, natsURL, "gate").State == "live" })

	if err := server.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-server.done
	stopped := time.Now()
	var c cameraEntry
	noticed := testenv.Eventually(t, 60*time.Second, "viewer list showing source-error", func() bool {
		c = listCamera(t, natsURL, "gate")
		return c.State == "source-error"
	})

	seqGone := sub.last().seq
	t.Logf("RTSP server killed: viewer list says %q (%s) %v later", c.State, c.Error, noticed.Round(time.Millisecond))

	server = startArgv(t, "rtsp server", python, script, port)
	server.waitLog(`rtsp server ready on ` + port)
	back := time.Now()
	recovered := testenv.Eventually(t, 60*time.Second, "frames again", func() bool { return sub.last().seq > seqGone })
	testenv.Eventually(t, 30*time.Second, "viewer list showing live", func() bool { return listCamera(t, natsURL, "gate").State == "live" })
	t.Logf("server gone for %v; frames again %v after it was back (the reopen backoff doubles up to 10 s)",
		back.Sub(stopped).Round(time.Millisecond), recovered.Round(time.Millisecond))
	if n := sub.restartCount(); n != 0 {
		t.Errorf("Frame-Seq went back %d times: the agent restarted", n)
	}
	select {
	case <-agent.done:
		t.Fatalf("the agent exited: %v", agent.err)
	default:
	}
}
