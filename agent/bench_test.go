package agent

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"gocv.io/x/gocv"

	"camhub/internal/avcodec"
	"camhub/internal/testenv"
)

// cpuTime is the process's CPU time so far, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// windowProfile writes a CPU profile of the measured part of a benchmark
// alone (not the setup, which -cpuprofile includes) to the file
// $CAMHUB_BENCH_CPUPROFILE-name, when that variable is set. It returns the
// function that stops it.
func windowProfile(b *testing.B, name string) (stop func()) {
	prefix := os.Getenv("CAMHUB_BENCH_CPUPROFILE")
	if prefix == "" {
		return func() {}
	}
	f, err := os.Create(prefix + "-" + name)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			b.Error(err)
		}
	}
}

// reportCPU reports CPU milliseconds per frame.
func reportCPU(b *testing.B, cpu time.Duration, frames uint64) {
	b.ReportMetric(float64(cpu)/float64(time.Millisecond)/float64(frames), "cpu-ms/frame")
}

var benchSizes = []struct{ w, h int }{{640, 480}, {1280, 720}}

// BenchmarkAgent measures the CPU time per frame of a whole agent: capture
// (drawing the test pattern, or decoding a video file), scaling, JPEG
// encoding at quality 80 and publishing to an in-process nats-server with
// no subscriber. The process's CPU time includes the server's.
//
//	go test -run XXX -bench . -benchtime 200x ./agent/
func BenchmarkAgent(b *testing.B) {
	for _, sz := range benchSizes {
		b.Run(fmt.Sprintf("testpattern-%dx%d", sz.w, sz.h), func(b *testing.B) {
			benchAgent(b, Config{Source: "testpattern", Width: sz.w, Height: sz.h})
		})
		// the same frames encoded as H.264 with libx264 (its default preset,
		// constant quality), for the cost of --codec h264 against JPEG
		b.Run(fmt.Sprintf("testpattern-h264-%dx%d", sz.w, sz.h), func(b *testing.B) {
			benchAgent(b, Config{Source: "testpattern", Width: sz.w, Height: sz.h, Codec: CodecH264, Encoder: avcodec.CodecX264})
		})
	}
	b.Run("file-1280x720-to-640x480", func(b *testing.B) {
		path := writePatternVideo(b, 1280, 720, MaxFPS, 60)
		benchAgent(b, Config{Source: path, Loop: true, Width: 640, Height: 480})
	})
}

// writePatternVideo writes n test pattern frames as an MJPG .avi.
func writePatternVideo(b *testing.B, w, h int, fps float64, n int) string {
	path := filepath.Join(b.TempDir(), "pattern.avi")
	vw, err := gocv.VideoWriterFile(path, "MJPG", fps, w, h, true)
	if err != nil || !vw.IsOpened() {
		b.Fatalf("cannot write %s: %v", path, err)
	}
	p := newPattern("bench", w, h, fps)
	defer p.close()
	t := time.Now()
	for i := range n {
		if err := vw.Write(p.draw(uint64(i+1), t.Add(time.Duration(float64(i)/fps*float64(time.Second))))); err != nil {
			b.Fatal(err)
		}
	}
	if err := vw.Close(); err != nil {
		b.Fatal(err)
	}
	return path
}

func benchAgent(b *testing.B, cfg Config) {
	_, url := startNATS(b, nil)
	nc := testenv.Conn(b, url)
	cfg.ID, cfg.FPS, cfg.Quality = "bench", MaxFPS, 80
	a, err := New(cfg, nc, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()

	waitSent := func(n uint64) {
		deadline := time.Now().Add(time.Minute)
		for a.Stats().Sent < n {
			if time.Now().After(deadline) {
				b.Fatalf("%d frames sent after a minute, want %d", a.Stats().Sent, n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitSent(5) // started, buffers grown
	s0, c0, t0 := a.Stats(), cpuTime(b), time.Now()
	b.ResetTimer()
	waitSent(s0.Sent + uint64(b.N))
	b.StopTimer()
	s1, c1, el := a.Stats(), cpuTime(b), time.Since(t0)

	frames := s1.Sent - s0.Sent
	reportCPU(b, c1-c0, frames)
	b.ReportMetric(float64(frames)/el.Seconds(), "frames/s")
	b.ReportMetric(float64(s1.Bytes-s0.Bytes)/float64(frames), "B/frame")
	if s1.Dropped != s0.Dropped {
		b.ReportMetric(float64(s1.Dropped-s0.Dropped), "dropped")
	}
}

// BenchmarkEncode is the bare gocv.IMEncodeWithParams of the agent's test
// pattern frames at quality 80, for comparison with BenchmarkAgent.
func BenchmarkEncode(b *testing.B) {
	for _, sz := range benchSizes {
		b.Run(fmt.Sprintf("%dx%d", sz.w, sz.h), func(b *testing.B) {
			p := newPattern("bench", sz.w, sz.h, MaxFPS)
			defer p.close()
			// A few distinct frames, drawn before timing.
			frames := make([]gocv.Mat, 8)
			t := time.Now()
			for i := range frames {
				img := p.draw(uint64(i+1), t.Add(time.Duration(i)*time.Second/MaxFPS))
				frames[i] = img.Clone()
			}
			defer func() {
				for i := range frames {
					frames[i].Close()
				}
			}()
			params := []int{gocv.IMWriteJpegQuality, 80}
			var bytes int
			c0 := cpuTime(b)
			b.ResetTimer()
			for i := range b.N {
				buf, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, frames[i%len(frames)], params)
				if err != nil {
					b.Fatal(err)
				}
				bytes += buf.Len()
				buf.Close()
			}
			b.StopTimer()
			reportCPU(b, cpuTime(b)-c0, uint64(b.N))
			b.ReportMetric(float64(bytes)/float64(b.N), "B/frame")
		})
	}
}

// natsServerEnv makes the test binary a nats-server listening on the
// address it holds, until its standard input closes (see TestMain).
const natsServerEnv = "CAMHUB_TEST_NATS_SERVER"

func TestMain(m *testing.M) {
	if addr := os.Getenv(natsServerEnv); addr != "" {
		serveNATS(addr)
		return
	}
	os.Exit(m.Run())
}

// serveNATS runs a nats-server with testenv's options on addr until
// standard input closes.
func serveNATS(addr string) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	dir, err := os.MkdirTemp("", "camhub-nats-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	defer os.RemoveAll(dir)
	opts := &server.Options{Host: host, NoLog: true, NoSigs: true, JetStream: true, StoreDir: dir, MaxPayload: 8 << 20}
	opts.Port, _ = strconv.Atoi(port)
	s, err := server.NewServer(opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		fmt.Fprintln(os.Stderr, "nats-server did not start")
		os.Exit(2)
	}
	io.Copy(io.Discard, os.Stdin) // until the benchmark closes it, or ends
	s.Shutdown()
	s.WaitForShutdown()
}

// natsProcess starts a nats-server in a child process (this test binary,
// see TestMain), stopped when the benchmark ends, and returns its URL.
func natsProcess(b *testing.B) string {
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePorts(b, 1)[0])
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), natsServerEnv+"="+addr)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close()
		cmd.Wait()
	})
	testenv.Eventually(b, 10*time.Second, "nats-server process listening", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return "nats://" + addr
}

// BenchmarkRTSPCamera measures the agent's CPU time per frame for an H.264
// IP camera (720p, 15 fps, 2 Mbit/s, x264 from real footage, GStreamer's
// RTSP server in another process), read two ways: passed through with
// --codec h264 (no decoding), and today's --codec jpeg path (OpenCV's
// FFmpeg decodes, the agent encodes JPEG at quality 80, full size). The
// nats-server runs in a process of its own, as the hub does for a real
// agent, so the process's CPU time is the agent's (and the benchmark's
// polling of its counts, ten times a second); the camera sets the pace
// (ns/op is its frame interval). It also reports the bitrate on
// the wire and the camera's own (the clip's access units).
//
//	go test -run '^$' -bench RTSPCamera -benchtime 300x ./agent/
func BenchmarkRTSPCamera(b *testing.B) {
	for _, codec := range []string{CodecH264, CodecJPEG} {
		b.Run(codec, func(b *testing.B) {
			seconds := b.N/15 + 8
			ts, aus := rtspClip(b, "1280:720", 15, seconds, "2M")
			camera := 0
			for _, au := range aus {
				camera += len(au)
			}
			cameraMbps := float64(camera) * 8 / float64(len(aus)) * 15 / 1e6
			aus = nil
			srv := testenv.StartRTSPServer(b, h264Launch(ts))
			// one P for an agent that decodes nothing, as cmd/agent
			// runs it, unless the environment says otherwise
			cfg := Config{ID: "bench", Source: srv.URL(), Codec: codec, FPS: 15, Width: 1280, Height: 720, Quality: 80}
			if cfg.DecodesNothing() && os.Getenv("GOMAXPROCS") == "" {
				defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
			}
			// the hub's server in a process of its own, as for a real
			// agent: the CPU measured is the agent's alone
			nc := testenv.Conn(b, natsProcess(b))
			a, err := New(cfg, nc, nil)
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- a.Run(ctx) }()
			defer func() {
				cancel()
				<-done
			}()
			waitSent := func(n uint64) {
				deadline := time.Now().Add(time.Duration(seconds+30) * time.Second)
				for a.Stats().Sent < n {
					if time.Now().After(deadline) {
						b.Fatalf("%d frames sent, want %d; stats %+v", a.Stats().Sent, n, a.Stats())
					}
					// the camera sets the pace: polling more often costs
					// the process more CPU than the passthrough itself
					time.Sleep(100 * time.Millisecond)
				}
			}
			waitSent(5)
			// return the clip's memory to the system now: the runtime
			// would otherwise do it while the agent is measured
			debug.FreeOSMemory()
			stopProfile := windowProfile(b, codec)
			s0, c0 := a.Stats(), cpuTime(b)
			b.ResetTimer()
			waitSent(s0.Sent + uint64(b.N))
			b.StopTimer()
			s1, c1 := a.Stats(), cpuTime(b)
			stopProfile()
			frames := s1.Sent - s0.Sent
			reportCPU(b, c1-c0, frames)
			b.ReportMetric(float64(s1.Bytes-s0.Bytes)*8/float64(frames)*15/1e6, "wire-Mbit/s")
			b.ReportMetric(cameraMbps, "camera-Mbit/s")
			if s1.Dropped != s0.Dropped {
				b.ReportMetric(float64(s1.Dropped-s0.Dropped), "dropped")
			}
		})
	}
}
