package agent

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"gocv.io/x/gocv"

	"camhub/internal/avcodec"
	"camhub/internal/h264"
	"camhub/internal/testenv"
	"camhub/internal/wire"
)

// videoReceived is what a test received from an H.264 camera.
type videoReceived struct {
	msgs     []*nats.Msg // on cams.<id>.video.*, in order
	statuses []*wire.Status
}

// subscribeVideo receives the video and status of camera id, in the order
// they were sent, on a connection of its own.
func subscribeVideo(t testing.TB, url, id string) <-chan *nats.Msg {
	t.Helper()
	nc := testenv.Conn(t, url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	ch := make(chan *nats.Msg, 1<<15)
	if _, err := nc.ChanSubscribe(wire.SubjectPrefix+"."+id+".>", ch); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return ch
}

// collectVideo receives until done says so, failing the test after d.
func collectVideo(t testing.TB, ch <-chan *nats.Msg, r *videoReceived, d time.Duration, done func(*videoReceived) bool) {
	t.Helper()
	deadline := time.After(d)
	for !done(r) {
		select {
		case m := <-ch:
			if strings.HasSuffix(m.Subject, ".status") {
				var s wire.Status
				if err := json.Unmarshal(m.Data, &s); err != nil {
					t.Fatal(err)
				}
				r.statuses = append(r.statuses, &s)
				continue
			}
			if _, _, err := wire.ParseVideoSubject(m.Subject); err != nil {
				t.Fatalf("a message on %s: %v", m.Subject, err)
			}
			r.msgs = append(r.msgs, m)
		case <-deadline:
			t.Fatalf("not done within %v: %d video messages, %d statuses", d, len(r.msgs), len(r.statuses))
		}
	}
}

func (r *videoReceived) lastState(state string) bool {
	n := len(r.statuses)
	return n > 0 && r.statuses[n-1].State == state
}

// checkVideo checks the messages received: every one parses, its subject
// says what its Key header says, the first is a keyframe, and after every
// gap in Frame-Seq the next is a keyframe (whole GOPs were dropped). It
// decodes them all with libavcodec: every picture has the size the
// headers say, w x h if w > 0. It returns the headers and how many gaps.
func checkVideo(t testing.TB, msgs []*nats.Msg, w, h int) (vs []wire.Video, gaps int) {
	t.Helper()
	dec, err := avcodec.NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	img := gocv.NewMat()
	defer img.Close()
	for i, m := range msgs {
		v, err := wire.ParseVideo(m.Header)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if _, key, _ := wire.ParseVideoSubject(m.Subject); key != v.Key || key != h264.IsKeyframe(m.Data) {
			t.Fatalf("message %d (Frame-Seq %d) on %s: Frame-Key %v, keyframe in the data %v", i, v.Seq, m.Subject, v.Key, h264.IsKeyframe(m.Data))
		}
		if i == 0 && !v.Key {
			t.Fatalf("the first message (Frame-Seq %d) is not a keyframe", v.Seq)
		}
		if i > 0 {
			prev := vs[i-1]
			if v.Seq <= prev.Seq {
				t.Fatalf("Frame-Seq %d after %d", v.Seq, prev.Seq)
			}
			if v.Seq != prev.Seq+1 {
				gaps++
				if !v.Key {
					t.Fatalf("Frame-Seq %d after %d is not a keyframe: its reference was dropped", v.Seq, prev.Seq)
				}
			}
			if v.DTS <= prev.DTS && !v.Key {
				t.Errorf("Frame-Seq %d: DTS %d after %d", v.Seq, v.DTS, prev.DTS)
			}
		}
		ok, err := dec.Decode(m.Data, &img)
		if err != nil {
			t.Fatalf("decoding Frame-Seq %d (%d bytes, key %v): %v", v.Seq, len(m.Data), v.Key, err)
		}
		if ok && (img.Cols() != v.Width || img.Rows() != v.Height) {
			t.Fatalf("Frame-Seq %d: headers say %dx%d, the picture is %dx%d", v.Seq, v.Width, v.Height, img.Cols(), img.Rows())
		}
		if w > 0 && (v.Width != w || v.Height != h) {
			t.Fatalf("Frame-Seq %d is %dx%d, want %dx%d", v.Seq, v.Width, v.Height, w, h)
		}
		vs = append(vs, v)
	}
	return vs, gaps
}

// checkVideoCounts checks, once Run has returned, that every access unit
// given a Frame-Seq was sent or dropped, that the final report says so
// with codec h264, and that every native object was freed.
func checkVideoCounts(t testing.TB, a *Agent, r *videoReceived) {
	t.Helper()
	st := a.Stats()
	if st.Frames != st.Sent+st.Dropped {
		t.Errorf("stats %+v: frames != sent + dropped", st)
	}
	n := len(r.statuses)
	if n == 0 || r.statuses[n-1].State != wire.StateStopped {
		t.Fatalf("last report is not stopped")
	}
	last := r.statuses[n-1]
	if last.Codec != wire.CodecH264 || last.FramesSent != st.Sent || last.FramesDropped != st.Dropped {
		t.Errorf("stopped report says codec %q, %d sent, %d dropped; stats %+v", last.Codec, last.FramesSent, last.FramesDropped, st)
	}
	if uint64(len(r.msgs)) != st.Sent {
		t.Errorf("received %d access units, the agent sent %d", len(r.msgs), st.Sent)
	}
	if avcodec.Live() != 0 {
		t.Errorf("libavcodec objects left: %s", avcodec.LiveString())
	}
}

// Sources OpenCV reads, encoded with --codec h264: a subscriber gets a
// keyframe first on .key, then deltas on .delta, every one decodable at
// the size asked (odd sides rounded down to even), with Frame-PTS from
// the capture time.
func TestH264Encode(t *testing.T) {
	_, url := startNATS(t, nil)
	nc := dial(t, url)
	file := writeVideo(t, t.TempDir(), 320, 240, 20, 20)
	for _, tc := range []struct {
		name, source string
		w, h         int // --size
		wantW, wantH int
		loop         bool
	}{
		{"testpattern", "testpattern", 320, 240, 320, 240, false},
		{"odd size", "testpattern", 161, 121, 160, 120, false},
		{"file", file, 640, 480, 320, 240, true},
		{"gstreamer", "videotestsrc is-live=true ! video/x-raw,width=352,height=288,framerate=30/1 ! videoconvert ! appsink", 640, 480, 352, 288, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := strings.ReplaceAll(tc.name, " ", "-")
			ch := subscribeVideo(t, url, id)
			r := start(t, Config{ID: id, Source: tc.source, Codec: CodecH264, Encoder: avcodec.CodecX264,
				FPS: 30, Width: tc.w, Height: tc.h, Loop: tc.loop}, nc)
			var got videoReceived
			collectVideo(t, ch, &got, 30*time.Second, func(r *videoReceived) bool { return len(r.msgs) >= 45 })
			if err := r.stop(t); err != nil {
				t.Fatal(err)
			}
			collectVideo(t, ch, &got, 10*time.Second, func(r *videoReceived) bool { return r.lastState(wire.StateStopped) })
			vs, gaps := checkVideo(t, got.msgs, tc.wantW, tc.wantH)
			keys := 0
			for i, v := range vs {
				if v.Key {
					keys++
				}
				if v.DTS != v.PTS {
					t.Errorf("Frame-Seq %d: DTS %d, PTS %d: camhub's encoder makes no B-frames", v.Seq, v.DTS, v.PTS)
				}
				// PTS is the capture time on the agent's clock
				if i > 0 {
					dt := v.Time.Sub(vs[i-1].Time)
					dp := time.Duration(v.PTS-vs[i-1].PTS) * time.Second / wire.VideoClockRate
					if d := dt - dp; d < -time.Millisecond || d > time.Millisecond {
						t.Errorf("Frame-Seq %d: %v after the last by Frame-Time, %v by Frame-PTS", v.Seq, dt, dp)
					}
				}
			}
			if keys < 2 || keys > len(vs)/10 {
				t.Errorf("%d keyframes in %d access units: want one a second", keys, len(vs))
			}
			if gaps != 0 {
				t.Errorf("%d gaps in Frame-Seq with a fast subscriber", gaps)
			}
			checkVideoCounts(t, r.a, &got)
			if st := r.a.Stats(); st.Dropped > 1 { // one may be waiting when Run stops
				t.Errorf("stats %+v: dropped", st)
			}
			t.Logf("%d access units, %d keyframes, %d bytes; stats %+v", len(vs), keys, r.a.Stats().Bytes, r.a.Stats())
		})
	}
}

// rtspClip encodes footage as an H.264 IP camera would send it and
// returns the MPEG-TS and its access units (Annex B, 4-byte start codes,
// as the agent sends them).
func rtspClip(t testing.TB, size string, fps, seconds int, bitrate string) (string, [][]byte) {
	t.Helper()
	dir := t.TempDir()
	ts := filepath.Join(dir, "cam.ts")
	args := []string{"-stream_loop", "-1", "-i", testenv.Footage, "-t", fmt.Sprint(seconds),
		"-vf", fmt.Sprintf("scale=%s,fps=%d", size, fps), "-c:v", "libx264", "-preset", "veryfast",
		"-g", fmt.Sprint(fps), "-bf", "0", "-an"}
	if bitrate != "" {
		args = append(args, "-b:v", bitrate, "-maxrate", bitrate, "-bufsize", bitrate)
	}
	testenv.FFmpeg(t, append(args, "-f", "mpegts", ts)...)
	es := filepath.Join(dir, "cam.h264")
	testenv.FFmpeg(t, "-i", ts, "-c", "copy", "-f", "h264", es)
	b, err := os.ReadFile(es)
	if err != nil {
		t.Fatal(err)
	}
	aus, err := h264.AccessUnits(b)
	if err != nil {
		t.Fatal(err)
	}
	for i, au := range aus {
		ns, err := h264.Split(au)
		if err != nil {
			t.Fatal(err)
		}
		aus[i] = h264.Join(ns)
	}
	return ts, aus
}

func h264Launch(ts string) string {
	return "( filesrc location=" + ts + " ! tsdemux ! h264parse config-interval=-1 ! rtph264pay name=pay0 pt=96 )"
}

// findRun finds got, in order and without a gap, in want; it returns
// where it starts, or -1. Access units are compared byte for byte, or
// without access unit delimiters (which a TS muxer adds and a demuxer may
// keep) if noAUD.
func findRun(t testing.TB, got [][]byte, want [][]byte) int {
	t.Helper()
	for first := range want {
		if len(want)-first < len(got) {
			return -1
		}
		ok := true
		for i := range got {
			if !bytes.Equal(got[i], want[first+i]) {
				ok = false
				break
			}
		}
		if ok {
			return first
		}
	}
	return -1
}

// An H.264 IP camera (GStreamer's RTSP server sending a clip of real
// footage) with --codec h264: the agent passes its access units through
// byte for byte, from a keyframe on, with the camera's size and codec, and
// reports codec h264.
func TestH264RTSPPassthrough(t *testing.T) {
	ts, want := rtspClip(t, "640:360", 15, 6, "")
	srv := testenv.StartRTSPServer(t, h264Launch(ts))
	_, url := startNATS(t, nil)
	ch := subscribeVideo(t, url, "ipcam")
	r := start(t, Config{ID: "ipcam", Source: srv.URL(), Codec: CodecH264, OpenTimeout: 10 * time.Second}, dial(t, url))
	var got videoReceived
	collectVideo(t, ch, &got, 30*time.Second, func(r *videoReceived) bool { return len(r.msgs) >= 45 })
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	collectVideo(t, ch, &got, 10*time.Second, func(r *videoReceived) bool { return r.lastState(wire.StateStopped) })
	vs, gaps := checkVideo(t, got.msgs, 640, 360)
	if gaps != 0 {
		t.Errorf("%d gaps", gaps)
	}
	data := make([][]byte, len(got.msgs))
	for i, m := range got.msgs {
		data[i] = m.Data
	}
	if first := findRun(t, data, want); first < 0 || first > len(want)/2 {
		t.Fatalf("the %d access units received are not the clip's %d in a run from near its start (found at %d)", len(data), len(want), first)
	}
	if vs[0].Codec != "avc1.64001E" && !strings.HasPrefix(vs[0].Codec, "avc1.") {
		t.Errorf("codec %s", vs[0].Codec)
	}
	streaming := false
	for _, s := range got.statuses {
		if s.Codec != wire.CodecH264 {
			t.Errorf("status %s says codec %q", s.State, s.Codec)
		}
		streaming = streaming || s.State == wire.StateStreaming && s.Width == 640 && s.Height == 360
	}
	if !streaming {
		t.Error("no streaming status at 640x360")
	}
	checkVideoCounts(t, r.a, &got)
}

// An H.264 IP camera that loses power and comes back on its address: the
// agent reports the source error, reopens the camera with backoff and passes
// its H.264 through again, starting at a keyframe, Frame-Seq going on.
func TestH264RTSPCameraComesBack(t *testing.T) {
	ts, _ := rtspClip(t, "320:240", 15, 30, "")
	srv := testenv.StartRTSPServer(t, h264Launch(ts))
	_, url := startNATS(t, nil)
	ch := subscribeVideo(t, url, "ipcam")
	r := start(t, Config{ID: "ipcam", Source: srv.URL(), Codec: CodecH264, OpenTimeout: 10 * time.Second,
		ReportInterval: 100 * time.Millisecond}, dial(t, url))
	var got videoReceived
	collectVideo(t, ch, &got, 30*time.Second, func(r *videoReceived) bool { return len(r.msgs) >= 15 })
	srv.Kill()
	collectVideo(t, ch, &got, 30*time.Second, func(r *videoReceived) bool { return r.lastState(wire.StateSourceError) })
	before := len(got.msgs)
	testenv.StartRTSPServerOn(t, srv.Port, h264Launch(ts))
	collectVideo(t, ch, &got, 60*time.Second, func(r *videoReceived) bool {
		return len(r.msgs) >= before+15 && r.lastState(wire.StateStreaming)
	})
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	var prev uint64
	for i, m := range got.msgs {
		v, err := wire.ParseVideo(m.Header)
		if err != nil {
			t.Fatalf("access unit %d: %v", i, err)
		}
		if v.Seq <= prev {
			t.Errorf("access unit %d: Frame-Seq %d after %d", i, v.Seq, prev)
		}
		prev = v.Seq
		if i == before && !v.Key {
			t.Errorf("the first access unit after the camera came back (Frame-Seq %d) is not a keyframe", v.Seq)
		}
	}
	if n := r.a.Stats().SourceErrors; n == 0 {
		t.Error("no source error counted")
	}
	// Every access unit decodes, before and after (checkVideo decodes the
	// stream as one: the second session starts at a keyframe).
	checkVideo(t, got.msgs[before:], 320, 240)
}

// An RTSP camera that sends H.265: a source error saying so, retried,
// without the URL's credentials.
func TestH264RTSPH265Camera(t *testing.T) {
	dir := t.TempDir()
	hevc := filepath.Join(dir, "hevc.ts")
	testenv.FFmpeg(t, "-i", testenv.Footage, "-t", "2", "-vf", "scale=320:240", "-c:v", "libx265", "-preset", "ultrafast",
		"-x265-params", "log-level=error", "-an", "-f", "mpegts", hevc)
	srv := testenv.StartRTSPServer(t, "( filesrc location="+hevc+" ! tsdemux ! h265parse config-interval=-1 ! rtph265pay name=pay0 pt=96 )")
	_, url := startNATS(t, nil)
	ch := subscribeVideo(t, url, "hevc")
	u := "rtsp://admin:s3cret-pw@127.0.0.1:" + srv.Port + "/cam"
	r := start(t, Config{ID: "hevc", Source: u, Codec: CodecH264}, dial(t, url))
	var got videoReceived
	collectVideo(t, ch, &got, 30*time.Second, func(r *videoReceived) bool { return r.lastState(wire.StateSourceError) })
	s := got.statuses[len(got.statuses)-1]
	if !strings.Contains(s.Error, "no H.264") || !strings.Contains(s.Error, "H265") || strings.Contains(s.Error, "s3cret") {
		t.Errorf("error %q: want a clear one, naming H265, without the password", s.Error)
	}
	if strings.Contains(s.Source, "s3cret") {
		t.Errorf("status source %q", s.Source)
	}
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	if len(got.msgs) != 0 || r.a.Stats().SourceErrors == 0 {
		t.Errorf("%d messages; stats %+v", len(got.msgs), r.a.Stats())
	}
	if avcodec.Live() != 0 {
		t.Errorf("libavcodec objects left: %s", avcodec.LiveString())
	}
}

// A command source: ffmpeg writing a clip as MPEG-TS to its standard
// output. Its access units reach a subscriber as they were encoded and
// decode; when the command exits the agent reports a source error and
// starts it again.
func TestH264CommandSource(t *testing.T) {
	ts, want := rtspClip(t, "320:240", 15, 2, "")
	_, url := startNATS(t, nil)
	ch := subscribeVideo(t, url, "cmd")
	src := "exec:ffmpeg -hide_banner -loglevel error -re -i '" + ts + "' -c copy -f mpegts -"
	r := start(t, Config{ID: "cmd", Source: src, Codec: CodecH264}, dial(t, url))
	var got videoReceived
	collectVideo(t, ch, &got, 30*time.Second, func(r *videoReceived) bool { return r.lastState(wire.StateSourceError) })
	// started again after the backoff: the second run's Frame-PTS starts
	// again from the clip's (the report of the first run's end may come
	// before its last access unit: another goroutine sends it)
	first := 0
	collectVideo(t, ch, &got, 30*time.Second, func(r *videoReceived) bool {
		for first = 1; first < len(r.msgs); first++ {
			v0, _ := wire.ParseVideo(r.msgs[first-1].Header)
			v1, _ := wire.ParseVideo(r.msgs[first].Header)
			if v1.PTS <= v0.PTS {
				return len(r.msgs) > first+10
			}
		}
		return false
	})
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	collectVideo(t, ch, &got, 10*time.Second, func(r *videoReceived) bool { return r.lastState(wire.StateStopped) })
	checkVideo(t, got.msgs, 320, 240)
	data := make([][]byte, first)
	for i, m := range got.msgs[:first] {
		ns, err := h264.Split(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		if h264.Type(ns[0]) == h264.TypeAUD {
			ns = ns[1:]
		}
		data[i] = h264.Join(ns)
	}
	for i, w := range want {
		ns, _ := h264.Split(w)
		if h264.Type(ns[0]) == h264.TypeAUD {
			want[i] = h264.Join(ns[1:])
		}
	}
	if at := findRun(t, data, want); at != 0 || first != len(want) {
		t.Errorf("the first run: %d access units found at %d of the clip's %d", first, at, len(want))
	}
	var errText string
	for _, s := range got.statuses {
		if s.State == wire.StateSourceError {
			errText = s.Error
			break
		}
	}
	if !strings.Contains(errText, "ffmpeg") {
		t.Errorf("source error %q does not name the command", errText)
	}
	checkVideoCounts(t, r.a, &got)
}

// proxy is a TCP proxy to a NATS server whose client-to-server direction
// can be stalled, as a congested link.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cond   *sync.Cond
	paused bool
	wg     sync.WaitGroup
}

func startProxy(t testing.TB, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	p.cond = sync.NewCond(&p.mu)
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		p.pause(false)
		ln.Close()
		p.wg.Wait()
	})
	return p
}

func (p *proxy) url() string { return "nats://" + p.ln.Addr().String() }

func (p *proxy) pause(on bool) {
	p.mu.Lock()
	p.paused = on
	p.mu.Unlock()
	p.cond.Broadcast()
}

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		c.(*net.TCPConn).SetReadBuffer(4096) // a stall is felt soon
		p.wg.Add(2)
		go func() { // server to client: never stalled
			defer p.wg.Done()
			io.Copy(c, up)
			c.Close()
		}()
		go func() {
			defer p.wg.Done()
			defer up.Close()
			buf := make([]byte, 4096)
			for {
				n, err := c.Read(buf)
				p.mu.Lock()
				for p.paused {
					p.cond.Wait()
				}
				p.mu.Unlock()
				if n > 0 {
					if _, werr := up.Write(buf[:n]); werr != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}()
	}
}

// A stalled link: the publisher blocks, the agent drops whole GOPs, never
// a delta whose reference was dropped, counts them, and resumes at a
// keyframe it asks its encoder for. In what a subscriber receives, every
// gap in Frame-Seq is followed by a keyframe.
func TestH264StalledLinkDropsGOPs(t *testing.T) {
	_, url := startNATS(t, nil)
	p := startProxy(t, strings.TrimPrefix(url, "nats://"))
	ch := subscribeVideo(t, url, "stall")
	r := start(t, Config{ID: "stall", Codec: CodecH264, Encoder: avcodec.CodecX264, FPS: 30, Width: 320, Height: 240,
		Source: "videotestsrc is-live=true pattern=snow ! video/x-raw,width=320,height=240,framerate=30/1 ! videoconvert ! appsink"},
		dialSmall(t, p.url()))
	var got videoReceived
	collectVideo(t, ch, &got, 30*time.Second, func(r *videoReceived) bool { return len(r.msgs) >= 10 })
	for round := range 2 {
		p.pause(true)
		testenv.Eventually(t, 30*time.Second, "GOPs dropped", func() bool { return r.a.Stats().GOPsDropped > uint64(round) })
		mark := r.a.Stats().Frames
		p.pause(false)
		collectVideo(t, ch, &got, 30*time.Second, func(r *videoReceived) bool {
			n := len(r.msgs)
			if n == 0 {
				return false
			}
			v, err := wire.ParseVideo(r.msgs[n-1].Header)
			return err == nil && v.Seq > mark+5
		})
	}
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	collectVideo(t, ch, &got, 10*time.Second, func(r *videoReceived) bool { return r.lastState(wire.StateStopped) })
	_, gaps := checkVideo(t, got.msgs, 320, 240)
	st := r.a.Stats()
	if gaps < 2 || st.GOPsDropped < 2 || st.Dropped == 0 {
		t.Errorf("%d gaps; stats %+v", gaps, st)
	}
	t.Logf("%d access units received, %d gaps; stats %+v", len(got.msgs), gaps, st)
	checkVideoCounts(t, r.a, &got)
}

// dialSmall connects as the agent command does, over a socket with a
// small send buffer, so that a stalled link blocks the publisher within a
// few frames rather than after megabytes of kernel buffers.
func dialSmall(t testing.TB, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, nats.ReconnectBufSize(-1), nats.MaxReconnects(-1), nats.SetCustomDialer(smallDialer{}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

type smallDialer struct{}

func (smallDialer) Dial(network, address string) (net.Conn, error) {
	c, err := net.Dial(network, address)
	if err != nil {
		return nil, err
	}
	c.(*net.TCPConn).SetWriteBuffer(8 << 10)
	return c, nil
}

func TestSplitCommand(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		err  string
	}{
		{"ffmpeg -i x.mp4 -f mpegts -", []string{"ffmpeg", "-i", "x.mp4", "-f", "mpegts", "-"}, ""},
		{"  rpicam-vid\t-t 0  -o - ", []string{"rpicam-vid", "-t", "0", "-o", "-"}, ""},
		{`sh -c 'ffmpeg -i "a b.mp4" -f mpegts - | cat'`, []string{"sh", "-c", `ffmpeg -i "a b.mp4" -f mpegts - | cat`}, ""},
		{`ffmpeg -i "my clip.mp4" ''`, []string{"ffmpeg", "-i", "my clip.mp4", ""}, ""},
		{`a"b c"d`, []string{"ab cd"}, ""},
		{"", nil, "no command"},
		{"   ", nil, "no command"},
		{`sh -c 'oops`, nil, "unclosed ' quote"},
		{`x "y`, nil, `unclosed " quote`},
	} {
		got, err := splitCommand(tc.in)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("%q: %q, %v; want error %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || strings.Join(got, "|") != strings.Join(tc.want, "|") || len(got) != len(tc.want) {
			t.Errorf("%q: %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// NATS goes away and comes back: every access unit published while it is
// down fails, the rest of its GOP is dropped, and the agent resumes with
// a keyframe it asks its encoder for, without waiting for the next one a
// second later.
func TestH264NATSDown(t *testing.T) {
	s, url := startNATS(t, nil)
	port := s.Addr().(*net.TCPAddr).Port
	ch := subscribeVideo(t, url, "away")
	r := start(t, Config{ID: "away", Source: "testpattern", Codec: CodecH264, Encoder: avcodec.CodecX264,
		FPS: 30, Width: 160, Height: 120, ReportInterval: 100 * time.Millisecond}, dial(t, url))
	var got videoReceived
	collectVideo(t, ch, &got, 10*time.Second, func(r *videoReceived) bool { return len(r.msgs) >= 5 })
	s.Shutdown()
	s.WaitForShutdown()
	before := r.a.Stats()
	testenv.Eventually(t, 10*time.Second, "access units dropped while NATS is down", func() bool {
		st := r.a.Stats()
		return st.PublishFailed >= before.PublishFailed+5 && st.Captured >= before.Captured+45
	})
	opts := testenv.NATSOptions(t)
	opts.Port = port
	startNATS(t, opts)
	mark := r.a.Stats().Frames
	collectVideo(t, ch, &got, 20*time.Second, func(r *videoReceived) bool {
		n := len(r.msgs)
		if n == 0 {
			return false
		}
		v, err := wire.ParseVideo(r.msgs[n-1].Header)
		return err == nil && v.Seq > mark+3
	})
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	collectVideo(t, ch, &got, 10*time.Second, func(r *videoReceived) bool { return r.lastState(wire.StateStopped) })
	vs, gaps := checkVideo(t, got.msgs, 160, 120)
	keys := 0
	for _, v := range vs {
		if v.Key {
			keys++
		}
	}
	st := r.a.Stats()
	if gaps == 0 || st.GOPsDropped == 0 || st.PublishFailed == 0 {
		t.Errorf("%d gaps; stats %+v", gaps, st)
	}
	t.Logf("%d access units, %d keyframes, %d gaps; stats %+v", len(vs), keys, gaps, st)
	checkVideoCounts(t, r.a, &got)
}
