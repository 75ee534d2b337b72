// Package bench measures camhub's capacity for docs/SCALING.md. These are
// measurements, not checks: benchmarks that run once (-benchtime 1x) and
// print tables.
//
//	go test -run '^$' -bench JPEGSizes -benchtime 1x -v -timeout 20m ./bench/
//	go test -run '^$' -bench HubCapacity -benchtime 1x -v -timeout 20m ./bench/
//	CAMHUB_SCALE_SINGLE=1 CAMHUB_SCALE_STEPS=96,128,192,256 go test -run '^$' -bench HubCapacity -benchtime 1x -v ./bench/
package bench

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"camhub/internal/testenv"
	"camhub/internal/wire"
)

var bin string

func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.bench"); f == nil || f.Value.String() == "" {
		os.Exit(m.Run()) // no benchmark asked for: nothing to build
	}
	dir, err := os.MkdirTemp("", "camhub-bench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	build := exec.Command("go", "build", "-o", dir+"/", "../cmd/hub", "../cmd/agent")
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

// proc is a camhub binary run for a measurement.
type proc struct {
	cmd  *exec.Cmd
	log  testenv.Buffer // its output
	done chan struct{}
}

func (p *proc) text() string { return p.log.String() }

func start(t testing.TB, name string, args ...string) *proc {
	t.Helper()
	p := &proc{done: make(chan struct{})}
	p.cmd = exec.Command(filepath.Join(bin, name), args...)
	// The hub in open mode: these measurements are not about login.
	p.cmd.Env = append(os.Environ(), "CAMHUB_INSECURE=true")
	p.cmd.Stdout, p.cmd.Stderr = &p.log, &p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("%s %v log:\n%s", name, args, p.text())
		}
	})
	return p
}

func (p *proc) waitLog(t testing.TB, re string) {
	t.Helper()
	rx := regexp.MustCompile(re)
	for deadline := time.Now().Add(60 * time.Second); !rx.MatchString(p.text()); {
		select {
		case <-p.done:
			t.Fatalf("exited before logging %q:\n%s", re, p.text())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("did not log %q:\n%s", re, p.text())
		}
		time.Sleep(50 * time.Millisecond) // polling interval, not synchronisation
	}
}

// cpuSeconds is the CPU time (user + system) process pid has used.
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ
}

// frameSizes runs a real agent against a NATS server and returns the mean
// size of n frames it sends.
func frameSizes(t testing.TB, url string, n int, args ...string) (mean float64, sample []byte, dims string) {
	t.Helper()
	nc := testenv.Conn(t, url)
	ch := make(chan *nats.Msg, 256)
	sub, err := nc.ChanSubscribe(wire.FramesSubject("size"), ch)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	nc.Flush()
	agent := start(t, "agent", append([]string{"--id", "size", "--nats", url, "--fps", "10"}, args...)...)
	defer func() { agent.cmd.Process.Kill(); <-agent.done }() // one agent at a time on the subject
	total := 0
	skip := 3 // the first frames: the agent still settling
	for i := 0; i < n+skip; i++ {
		select {
		case m := <-ch:
			if i >= skip {
				total += len(m.Data)
				sample = m.Data
				dims = m.Header.Get(wire.HeaderWidth) + "x" + m.Header.Get(wire.HeaderHeight)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("no frames from agent %v", args)
		}
	}
	return float64(total) / float64(n), sample, dims
}

// The JPEG sizes the agent sends: the test pattern and a richer moving
// picture (ffmpeg's testsrc2, encoded at high quality), at 640x480 and
// 1280x720 and quality 60, 80 and 90, and the bandwidth per camera that
// makes at 5, 10, 15 and 30 fps.
func BenchmarkJPEGSizes(b *testing.B) {
	t := b
	ns := testenv.NATS(t, nil)
	dir := t.TempDir()
	rich := filepath.Join(dir, "testsrc2.mp4")
	ff := exec.Command("ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30:duration=20",
		"-c:v", "libx264", "-crf", "12", "-pix_fmt", "yuv420p", rich)
	if out, err := ff.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, out)
	}
	// the same with sensor-like noise (a dim or cheap camera): the hardest
	// case for JPEG
	noisy := filepath.Join(dir, "testsrc2-noise.mp4")
	ff = exec.Command("ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30:duration=20",
		"-vf", "noise=alls=12:allf=t+u", "-c:v", "libx264", "-crf", "12", "-pix_fmt", "yuv420p", noisy)
	if out, err := ff.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, out)
	}
	fmt.Println("| picture | --size | frames | quality | JPEG KiB | Mbit/s at 5 fps | 10 fps | 15 fps | 30 fps |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	sources := []struct{ name, source string }{{"testpattern", "testpattern"}, {"testsrc2", rich}, {"testsrc2+noise", noisy}}
	if os.Getenv("CAMHUB_SCALE_RICH_ONLY") != "" {
		sources = sources[2:]
	}
	for _, src := range sources {
		for _, size := range []string{"640x480", "1280x720"} {
			for _, q := range []string{"60", "80", "90"} {
				args := []string{"--source", src.source, "--size", size, "--quality", q}
				if src.source != "testpattern" {
					args = append(args, "--loop")
				}
				mean, sample, dims := frameSizes(t, ns.ClientURL(), 30, args...)
				if size == "640x480" && q == "80" && src.name == "testpattern" {
					os.WriteFile(filepath.Join(os.TempDir(), "camhub-bench-640x480-q80.jpg"), sample, 0o644)
				}
				mbit := func(fps float64) string { return fmt.Sprintf("%.1f", mean*8*fps/1e6) }
				fmt.Printf("| %s | %s | %s | %s | %.1f | %s | %s | %s | %s |\n", src.name, size, dims, q, mean/1024, mbit(5), mbit(10), mbit(15), mbit(30))
			}
		}
	}
}

// cluster is one or three hub processes.
type cluster struct {
	hubs []*proc
	urls []string
}

func hubs(t testing.TB, n, replicas int) *cluster {
	t.Helper()
	ports := testenv.FreePorts(t, 2*n)
	c := &cluster{}
	var routes []string
	for i := range n {
		c.urls = append(c.urls, fmt.Sprintf("nats://127.0.0.1:%d", ports[i]))
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", ports[n+i]))
	}
	for i := range n {
		args := []string{"--name", fmt.Sprintf("bench%d", i+1), "--listen", fmt.Sprintf("127.0.0.1:%d", ports[i]), "--monitor", "",
			"--replay", "10s", "--replay-bytes", "512MiB", "--log-level", "warn"}
		if n > 1 {
			args = append(args, "--cluster", fmt.Sprintf("127.0.0.1:%d", ports[n+i]), "--routes", strings.Join(routes, ","),
				"--replicas", strconv.Itoa(replicas), "--log-level", "info")
		}
		c.hubs = append(c.hubs, start(t, "hub", args...))
	}
	for _, h := range c.hubs {
		if n > 1 {
			h.waitLog(t, `msg="replay buffer ready"`)
		}
	}
	// a single hub logs at warn: wait for it to answer instead
	for deadline := time.Now().Add(60 * time.Second); ; {
		nc, err := nats.Connect(c.urls[0])
		if err == nil {
			js, _ := jetstream.New(nc)
			_, err = js.Stream(context.Background(), wire.FramesStream)
			nc.Close()
		}
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond) // polling interval, not synchronisation
	}
	return c
}

func (c *cluster) cpu() float64 {
	s := 0.0
	for _, h := range c.hubs {
		s += cpuSeconds(h.cmd.Process.Pid)
	}
	return s
}

type result struct {
	cams                        int
	offered, delivered, stored  float64 // frames per second
	hubCores, mbit              float64
	publishErrors, slowConsumer int64
}

// load publishes cams simulated cameras at fps each (a pre-encoded JPEG,
// core NATS publish as the agent does) spread over the hubs' URLs, with one
// viewer subscribed to every camera, for d, and measures what came through.
func load(t testing.TB, c *cluster, jpeg []byte, cams int, fps float64, d time.Duration) result {
	t.Helper()
	var delivered atomic.Int64
	viewer, err := nats.Connect(c.urls[0])
	if err != nil {
		t.Fatal(err)
	}
	defer viewer.Close()
	var slow atomic.Int64
	viewer.SetErrorHandler(func(*nats.Conn, *nats.Subscription, error) { slow.Add(1) })
	sub, err := viewer.Subscribe(wire.AllFrames, func(*nats.Msg) { delivered.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	sub.SetPendingLimits(-1, 256<<20)
	viewer.Flush()
	js, _ := jetstream.New(viewer)
	lastSeq := func() uint64 {
		st, err := js.Stream(context.Background(), wire.FramesStream)
		if err != nil {
			return 0
		}
		return st.CachedInfo().State.LastSeq
	}

	var conns []*nats.Conn
	for i := range cams {
		nc, err := nats.Connect(c.urls[i%len(c.urls)], nats.ReconnectBufSize(-1))
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, nc)
	}
	defer func() {
		for _, nc := range conns {
			nc.Close()
		}
	}()
	var offered, errs atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	warm := 2 * time.Second
	for i, nc := range conns {
		id := fmt.Sprintf("sim%03d", i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(time.Duration(float64(time.Second) / fps))
			defer tick.Stop()
			var seq uint64
			for {
				select {
				case <-ctx.Done():
					return
				case now := <-tick.C:
					seq++
					m := &nats.Msg{Subject: wire.FramesSubject(id), Data: jpeg,
						Header: wire.Frame{Seq: seq, Time: now, Width: 640, Height: 480}.Header()}
					if err := nc.PublishMsg(m); err != nil {
						errs.Add(1)
					} else {
						offered.Add(1)
					}
				}
			}
		}()
	}
	// warm up, then measure over d
	time.Sleep(warm) // load phase length, not synchronisation
	o0, d0, s0, c0, t0 := offered.Load(), delivered.Load(), lastSeq(), c.cpu(), time.Now()
	time.Sleep(d) // load phase length, not synchronisation
	o1, d1, s1, c1, t1 := offered.Load(), delivered.Load(), lastSeq(), c.cpu(), time.Now()
	cancel()
	wg.Wait()
	secs := t1.Sub(t0).Seconds()
	r := result{cams: cams, offered: float64(o1-o0) / secs, delivered: float64(d1-d0) / secs, stored: float64(s1-s0) / secs,
		hubCores: (c1 - c0) / secs, publishErrors: errs.Load(), slowConsumer: slow.Load()}
	r.mbit = r.offered * float64(len(jpeg)) * 8 / 1e6
	return r
}

// How many 30 fps cameras one hub carries on this machine, and the same
// load through a 3-node cluster keeping the buffer at R1 and at R3, from
// the same run.
func BenchmarkHubCapacity(b *testing.B) {
	t := b
	jpeg, err := os.ReadFile(filepath.Join(os.TempDir(), "camhub-bench-640x480-q80.jpg"))
	if err != nil {
		t.Fatalf("run BenchmarkJPEGSizes first (it saves a 640x480 q80 test-pattern frame): %v", err)
	}
	steps := []int{4, 8, 16, 32, 48, 64}
	if s := os.Getenv("CAMHUB_SCALE_STEPS"); s != "" {
		steps = nil
		for _, f := range strings.Split(s, ",") {
			n, _ := strconv.Atoi(f)
			steps = append(steps, n)
		}
	}
	d := 8 * time.Second
	fmt.Printf("frame: %d bytes (640x480 q80 test pattern), 30 fps per camera, %v per step\n", len(jpeg), d)
	fmt.Println("| hubs | replicas | cameras | offered fps | Mbit/s in | delivered fps (1 viewer) | stored fps | hub CPU (cores, all nodes) | CPU ms per stored frame |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	topos := []struct{ n, r int }{{1, 1}, {3, 1}, {3, 3}}
	if os.Getenv("CAMHUB_SCALE_SINGLE") != "" {
		topos = topos[:1]
	}
	for _, topo := range topos {
		c := hubs(t, topo.n, topo.r)
		for _, cams := range steps {
			r := load(t, c, jpeg, cams, 30, d)
			per := 0.0
			if r.stored > 0 {
				per = r.hubCores * 1000 / r.stored
			}
			fmt.Printf("| %d | R%d | %d | %.0f | %.0f | %.0f | %.0f | %.2f | %.2f |\n", topo.n, topo.r, r.cams, r.offered, r.mbit, r.delivered, r.stored, r.hubCores, per)
			if r.publishErrors > 0 || r.slowConsumer > 0 {
				fmt.Printf("|   |   | (publish errors %d, viewer slow-consumer errors %d) |\n", r.publishErrors, r.slowConsumer)
			}
		}
		for _, h := range c.hubs {
			h.cmd.Process.Kill()
			<-h.done
		}
	}
}
