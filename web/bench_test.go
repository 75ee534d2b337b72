package web

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"camhub/hub"
	"camhub/internal/testenv"
	"camhub/internal/wire"
)

// The benchmark runs the hub and the clients in processes of their own, this
// test binary started again with CAMHUB_WEB_HELPER set, so that the CPU time
// of this process is the web server's alone.
const helperEnv = "CAMHUB_WEB_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "hub":
		os.Exit(helperHub())
	case "client":
		os.Exit(helperClient())
	default:
		fmt.Fprintln(os.Stderr, "unknown", helperEnv)
		os.Exit(2)
	}
}

// helperHub runs a hub with camera "bench" publishing 640x480 frames at
// CAMHUB_WEB_FPS, prints the hub's URL, and stops when stdin closes.
func helperHub() int {
	fps, _ := strconv.Atoi(os.Getenv("CAMHUB_WEB_FPS"))
	h, err := hub.Start(context.Background(), hub.Config{
		Listen: "127.0.0.1:0", Replay: 5 * time.Second, ReplayBytes: 256 << 20, Storage: hub.StorageMemory,
	}, quiet())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer h.Close()
	nc, err := nats.Connect(h.ClientURL())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer nc.Close()
	var pics [][]byte
	for i := range 10 {
		p, err := testenv.PictureJPEG(i, 640, 480, 0.02)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		pics = append(pics, p)
	}
	fmt.Println(h.ClientURL())
	stop := make(chan struct{})
	go func() {
		io.Copy(io.Discard, os.Stdin)
		close(stop)
	}()
	tick := time.NewTicker(time.Second / time.Duration(max(fps, 1)))
	defer tick.Stop()
	for seq := uint64(1); ; seq++ {
		select {
		case <-stop:
			return 0
		case <-tick.C:
		}
		m := nats.NewMsg(wire.FramesSubject("bench"))
		m.Header = wire.Frame{Seq: seq, Time: time.Now(), Width: 640, Height: 480}.Header()
		m.Data = pics[seq%uint64(len(pics))]
		nc.PublishMsg(m)
	}
}

// helperClient reads the MJPEG stream at CAMHUB_WEB_URL until it ends.
func helperClient() int {
	res, err := http.Get(os.Getenv("CAMHUB_WEB_URL"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer res.Body.Close()
	io.Copy(io.Discard, res.Body)
	return 0
}

// helper starts this test binary as a helper; it ends with the benchmark.
func helper(b *testing.B, kind string, env ...string) (*exec.Cmd, io.WriteCloser, *bufio.Reader) {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append([]string{helperEnv + "=" + kind}, env...)...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() {
			cmd.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	return cmd, stdin, bufio.NewReader(stdout)
}

// cpuTime is the process's user and system CPU time.
func cpuTime() (user, sys time.Duration) {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())
}

// BenchmarkMJPEG20Clients measures the web server's CPU time per frame
// delivered with 20 MJPEG clients of one 100 fps camera (640x480, ~40 kB
// frames). An op is a frame delivered to a client.
//
//	go test -run '^$' -bench MJPEG20Clients -benchtime 20000x ./web/
func BenchmarkMJPEG20Clients(b *testing.B) {
	const clients = 20
	_, _, out := helper(b, "hub", "CAMHUB_WEB_FPS=100")
	url, err := out.ReadString('\n')
	if err != nil {
		b.Fatalf("the hub helper did not start: %v", err)
	}
	nc := testenv.Conn(b, strings.TrimSpace(url))
	s, ts := startWeb(b, Config{}, nc)
	testenv.Eventually(b, 20*time.Second, "the camera", func() bool { return s.known("bench") })
	size := len(s.live.newest("bench").jpeg)
	for range clients {
		helper(b, "client", "CAMHUB_WEB_URL="+ts.URL+"/cams/bench/stream.mjpg")
	}
	testenv.Eventually(b, 20*time.Second, "the clients", func() bool { return s.Stats().Clients == clients })
	// the clients end when the server closes their streams
	b.Cleanup(s.Close)
	warm := s.Stats().FramesSent + 10*clients
	testenv.Eventually(b, 20*time.Second, "warming up", func() bool { return s.Stats().FramesSent >= warm })

	b.ResetTimer()
	user0, sys0 := cpuTime()
	start, st0 := time.Now(), s.Stats()
	for s.Stats().FramesSent-st0.FramesSent < uint64(b.N) {
		time.Sleep(5 * time.Millisecond)
	}
	elapsed, st := time.Since(start), s.Stats()
	user, sys := cpuTime()
	user, sys = user-user0, sys-sys0
	cpu := user + sys
	b.StopTimer()
	sent := float64(st.FramesSent - st0.FramesSent)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(cpu.Nanoseconds())/sent, "cpu-ns/frame")
	b.ReportMetric(float64(user.Nanoseconds())/sent, "user-ns/frame")
	b.ReportMetric(float64(sys.Nanoseconds())/sent, "sys-ns/frame")
	b.ReportMetric(sent/elapsed.Seconds(), "frames/s")
	b.ReportMetric(float64(st.FramesSkipped-st0.FramesSkipped)/sent, "skipped/frame")
	b.ReportMetric(cpu.Seconds()/elapsed.Seconds()*100, "%cpu")
	b.ReportMetric(float64(size), "bytes/frame")
}
