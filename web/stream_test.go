package web

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/jpeg"
	"io"
	"mime"
	"net"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"testing"
	"time"

	"camhub/internal/testenv"
	"camhub/internal/wire"
)

// part is one frame read from a stream.
type part struct {
	id   string
	seq  uint64
	time time.Time
	jpeg []byte
}

// mjpegReader reads an MJPEG stream strictly: each part is the boundary,
// headers with Content-Type image/jpeg and Content-Length, a blank line, that
// many bytes, CRLF. (mime/multipart would hand out a part only when the next
// one begins.)
type mjpegReader struct {
	r        *bufio.Reader
	boundary string
}

// openMJPEG starts reading the MJPEG stream at url; it ends with ctx.
func openMJPEG(t testing.TB, ctx context.Context, url string) *mjpegReader {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	mt, params, err := mime.ParseMediaType(res.Header.Get("Content-Type"))
	if res.StatusCode != 200 || err != nil || mt != "multipart/x-mixed-replace" || params["boundary"] == "" {
		body, _ := io.ReadAll(res.Body)
		t.Fatalf("GET %s: %d %q: %s", url, res.StatusCode, res.Header.Get("Content-Type"), body)
	}
	return &mjpegReader{r: bufio.NewReader(res.Body), boundary: params["boundary"]}
}

func (m *mjpegReader) next() (part, error) {
	var p part
	line, err := m.r.ReadString('\n')
	if err != nil {
		return p, err
	}
	if line != "--"+m.boundary+"\r\n" {
		return p, fmt.Errorf("boundary line %q", line)
	}
	h, err := textproto.NewReader(m.r).ReadMIMEHeader()
	if err != nil {
		return p, err
	}
	if h.Get(wire.HeaderContentType) != wire.ContentTypeJPEG {
		return p, fmt.Errorf("part Content-Type %q", h.Get("Content-Type"))
	}
	n, err := strconv.Atoi(h.Get("Content-Length"))
	if err != nil || n <= 0 {
		return p, fmt.Errorf("part Content-Length %q", h.Get("Content-Length"))
	}
	p.jpeg = make([]byte, n)
	if _, err := io.ReadFull(m.r, p.jpeg); err != nil {
		return p, err
	}
	var crlf [2]byte
	if _, err := io.ReadFull(m.r, crlf[:]); err != nil || string(crlf[:]) != "\r\n" {
		return p, fmt.Errorf("part not followed by CRLF: %q %v", crlf, err)
	}
	p.seq, _ = strconv.ParseUint(h.Get(wire.HeaderSeq), 10, 64)
	p.time, _ = time.Parse(time.RFC3339Nano, h.Get(wire.HeaderTime))
	return p, nil
}

// muxReader reads the page's stream.
type muxReader struct{ r *bufio.Reader }

func openMux(t testing.TB, ctx context.Context, url string) *muxReader {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != MuxContentType {
		body, _ := io.ReadAll(res.Body)
		t.Fatalf("GET %s: %d %q: %s", url, res.StatusCode, res.Header.Get("Content-Type"), body)
	}
	return &muxReader{r: bufio.NewReader(res.Body)}
}

func (m *muxReader) next() (part, error) {
	var p part
	line, err := m.r.ReadBytes('\n')
	if err != nil {
		return p, err
	}
	var h struct {
		ID     string `json:"id"`
		Seq    uint64 `json:"seq"`
		Time   string `json:"time"`
		Width  int    `json:"width"`
		Height int    `json:"height"`
		AgeMS  *int64 `json:"age_ms"`
		Len    int    `json:"len"`
	}
	if err := json.Unmarshal(line, &h); err != nil {
		return p, fmt.Errorf("record header %q: %v", line, err)
	}
	if h.ID == "" || h.Seq == 0 || h.Width <= 0 || h.Height <= 0 || h.AgeMS == nil || h.Len <= 0 {
		return p, fmt.Errorf("record header %q", line)
	}
	p.id, p.seq = h.ID, h.Seq
	if p.time, err = time.Parse(time.RFC3339Nano, h.Time); err != nil {
		return p, err
	}
	p.jpeg = make([]byte, h.Len)
	_, err = io.ReadFull(m.r, p.jpeg)
	return p, err
}

// ctxFor is a context that ends with the test.
func ctxFor(t testing.TB) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx, cancel
}

func TestMJPEG(t *testing.T) {
	_, nc := startHub(t)
	cam := newCamera(t, nc, "front", 160, 120, 5, 0)
	cam.report(wire.StateStreaming)
	s, ts := startWeb(t, Config{}, nc)
	cam.frame()
	testenv.Eventually(t, 10*time.Second, "the first frame", func() bool { return s.live.newest("front") != nil })

	ctx, _ := ctxFor(t)
	m := openMJPEG(t, ctx, ts.URL+"/cams/front/stream.mjpg")
	// The newest frame comes at once, then each new one.
	for want := uint64(1); want <= 4; want++ {
		p, err := m.next()
		if err != nil {
			t.Fatal(err)
		}
		if p.seq != want || !bytes.Equal(p.jpeg, cam.pics[(want-1)%5]) {
			t.Fatalf("part %d: Frame-Seq %d, or not the frame sent", want, p.seq)
		}
		if _, err := jpeg.Decode(bytes.NewReader(p.jpeg)); err != nil {
			t.Fatal(err)
		}
		cam.frame()
	}
	if st := s.Stats(); st.Clients != 1 || st.FramesSent < 4 {
		t.Errorf("stats %+v", st)
	}
	// HEAD says what the stream is, and ends
	for _, path := range []string{"/cams/front/stream.mjpg", "/api/stream"} {
		res, err := http.Head(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 || res.Header.Get("Content-Type") == "" {
			t.Errorf("HEAD %s: %d %q", path, res.StatusCode, res.Header.Get("Content-Type"))
		}
	}
}

// A client that reads nothing holds up nobody: a fast client gets every
// new frame meanwhile, the stalled one is cut off at the write deadline,
// and once the clients are gone so are their goroutines.
func TestSlowClient(t *testing.T) {
	_, nc := startHub(t)
	// Frames of ~200 kB fill the socket buffers of a client that reads
	// nothing within a few dozen frames.
	cam := newCamera(t, nc, "cam", 320, 240, 4, 0.6)
	if n := len(cam.pics[0]); n < 50<<10 {
		t.Fatalf("test frames of %d bytes are too small to fill socket buffers", n)
	}
	cam.report(wire.StateStreaming)
	s, ts := startWeb(t, Config{WriteTimeout: 500 * time.Millisecond}, nc)
	cam.frame()
	testenv.Eventually(t, 10*time.Second, "the first frame", func() bool { return s.live.newest("cam") != nil })

	// the slow client: asks, then reads nothing
	slow, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fmt.Fprintf(slow, "GET /cams/cam/stream.mjpg HTTP/1.1\r\nHost: x\r\n\r\n")
	testenv.Eventually(t, 10*time.Second, "the slow client's stream", func() bool { return s.Stats().Clients == 1 })

	ctx, cancel := ctxFor(t)
	fast := openMJPEG(t, ctx, ts.URL+"/cams/cam/stream.mjpg")
	got := make(chan uint64, 1024)
	readErr := make(chan error, 1)
	go func() {
		for {
			p, err := fast.next()
			if err != nil {
				readErr <- err
				return
			}
			got <- p.seq
		}
	}()
	// Publish until the slow client is cut off; the fast one keeps up
	// meanwhile: every frame it is sent is one just published.
	var newest uint64
	deadline := time.Now().Add(30 * time.Second)
	for s.Stats().ClientsDropped == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the slow client was never cut off: %+v", s.Stats())
		}
		seq := cam.frame()
		// wait for the fast client to receive this frame
		for newest < seq {
			select {
			case newest = <-got:
			case err := <-readErr:
				t.Fatalf("the fast client: %v", err)
			case <-time.After(5 * time.Second):
				t.Fatalf("the fast client did not get frame %d within 5 s (has %d): held up by the slow one", seq, newest)
			}
		}
	}
	// the slow client's handler returns, the fast one's goes on
	testenv.Eventually(t, 10*time.Second, "the slow client's goroutine to end", func() bool { return s.Stats().Clients == 1 })
	if st := s.Stats(); st.ClientsDropped != 1 {
		t.Errorf("after the slow client was cut off: %+v", st)
	}
	seq := cam.frame()
	for newest < seq {
		select {
		case newest = <-got:
		case err := <-readErr:
			t.Fatalf("the fast client: %v", err)
		case <-time.After(5 * time.Second):
			t.Fatalf("the fast client did not get frame %d after the slow one was cut off", seq)
		}
	}
	cancel()
	testenv.Eventually(t, 10*time.Second, "the clients' goroutines to end", func() bool { return s.Stats().Clients == 0 })
}

// A rewind replays from the buffer, from the time asked for, and its
// goroutines end with the client.
func TestRewind(t *testing.T) {
	_, nc := startHub(t)
	s, ts := startWeb(t, Config{}, nc)
	cam := newCamera(t, nc, "cam", 64, 48, 4, 0)
	cam.report(wire.StateStreaming)
	// 40 frames captured over the last 20 s, one every 500 ms
	now := time.Now()
	for i := range 40 {
		m := natsFrame(cam, uint64(i+1), now.Add(-20*time.Second+time.Duration(i)*500*time.Millisecond))
		if err := nc.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 10*time.Second, "the frames", func() bool {
		f := s.live.newest("cam")
		return f != nil && f.Seq == 40
	})

	// firstSince is the Frame-Seq of the first frame captured d or less
	// before a request made at the time it is called.
	firstSince := func(d time.Duration) uint64 {
		since := time.Now().Add(-d).Sub(now.Add(-20 * time.Second))
		return uint64((since+500*time.Millisecond-1)/(500*time.Millisecond)) + 1
	}
	ctx, cancel := ctxFor(t)
	want := firstSince(10 * time.Second)
	m := openMJPEG(t, ctx, ts.URL+"/cams/cam/stream.mjpg?since=10s&speed=1")
	p, err := m.next()
	if err != nil {
		t.Fatal(err)
	}
	if p.seq < want || p.seq > want+1 {
		t.Errorf("rewound 10 s: first Frame-Seq %d (%v ago), want %d", p.seq, time.Since(p.time), want)
	}
	for range 3 {
		q, err := m.next()
		if err != nil {
			t.Fatal(err)
		}
		if q.seq <= p.seq {
			t.Errorf("Frame-Seq %d after %d", q.seq, p.seq)
		}
		p = q
	}
	if st := s.Stats(); st.Replays != 1 || st.Clients != 1 {
		t.Errorf("while rewinding: %+v", st)
	}

	// the page's stream rewinds all cameras the same way
	want = firstSince(5 * time.Second)
	mux := openMux(t, ctx, ts.URL+"/api/stream?since=5s")
	r, err := mux.next()
	if err != nil {
		t.Fatal(err)
	}
	if r.id != "cam" || r.seq < want || r.seq > want+1 {
		t.Errorf("page stream rewound 5 s: %s Frame-Seq %d, want cam %d", r.id, r.seq, want)
	}

	cancel()
	testenv.Eventually(t, 10*time.Second, "the rewinds' goroutines to end", func() bool {
		st := s.Stats()
		return st.Replays == 0 && st.Clients == 0
	})

	// nothing in the buffer to rewind: 404
	quiet := newCamera(t, nc, "quiet", 8, 8, 1, 0)
	quiet.report(wire.StateStreaming)
	testenv.Eventually(t, 10*time.Second, "quiet's report", func() bool { return s.known("quiet") })
	var e apiError
	if st := getJSON(t, ts.URL+"/cams/quiet/stream.mjpg?since=10s", &e); st != 404 || !strings.Contains(e.Error, "nothing to rewind") {
		t.Errorf("rewinding a camera with no frames: %d %+v", st, e)
	}
	if st := s.Stats(); st.Replays != 0 || st.Clients != 0 {
		t.Errorf("after a refused rewind: %+v", st)
	}
}

// The page's stream carries every camera on one connection, and cameras
// that join appear in it.
func TestPageStream(t *testing.T) {
	_, nc := startHub(t)
	s, ts := startWeb(t, Config{}, nc)
	a := newCamera(t, nc, "a", 64, 48, 3, 0)
	a.frame()
	testenv.Eventually(t, 10*time.Second, "a's frame", func() bool { return s.known("a") })
	ctx, _ := ctxFor(t)
	mux := openMux(t, ctx, ts.URL+"/api/stream")
	p, err := mux.next()
	if err != nil || p.id != "a" || p.seq != 1 || !bytes.Equal(p.jpeg, a.pics[0]) {
		t.Fatalf("first record: %s %d %v", p.id, p.seq, err)
	}
	b := newCamera(t, nc, "b", 32, 24, 3, 0)
	b.frame()
	if p, err = mux.next(); err != nil || p.id != "b" || p.seq != 1 || !bytes.Equal(p.jpeg, b.pics[0]) {
		t.Fatalf("a camera that joined: %s %d %v", p.id, p.seq, err)
	}
	a.frame()
	if p, err = mux.next(); err != nil || p.id != "a" || p.seq != 2 {
		t.Fatalf("then: %s %d %v", p.id, p.seq, err)
	}

	// cams= picks cameras
	only := openMux(t, ctx, ts.URL+"/api/stream?cams=b")
	if p, err = only.next(); err != nil || p.id != "b" {
		t.Fatalf("cams=b: %s %v", p.id, err)
	}
	a.frame()
	b.frame()
	if p, err = only.next(); err != nil || p.id != "b" || p.seq != 2 {
		t.Fatalf("cams=b: %s %d %v", p.id, p.seq, err)
	}
}

// fps= limits the rate a client is sent; the newest frame wins.
func TestFPSLimit(t *testing.T) {
	_, nc := startHub(t)
	s, ts := startWeb(t, Config{}, nc)
	cam := newCamera(t, nc, "cam", 32, 24, 2, 0)
	cam.frame()
	testenv.Eventually(t, 10*time.Second, "the first frame", func() bool { return s.known("cam") })
	ctx, _ := ctxFor(t)
	m := openMJPEG(t, ctx, ts.URL+"/cams/cam/stream.mjpg?fps=4")
	if _, err := m.next(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	// 5 frames received, at 4 a second: at least a second apart from the
	// first, whatever the camera's rate.
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				cam.frame()
			}
		}
	}()
	var last part
	for range 4 {
		p, err := m.next()
		if err != nil {
			t.Fatal(err)
		}
		last = p
	}
	elapsed := time.Since(start)
	close(stop)
	<-done
	if elapsed < 900*time.Millisecond {
		t.Errorf("4 frames at fps=4 took %v", elapsed)
	}
	if st := s.Stats(); st.FramesSkipped == 0 {
		t.Errorf("no frames skipped at fps=4 of a 100 fps camera: %+v (last Frame-Seq %d)", st, last.seq)
	}
}

// Beyond MaxClients, streams are refused with 503.
func TestMaxClients(t *testing.T) {
	_, nc := startHub(t)
	s, ts := startWeb(t, Config{MaxClients: 1}, nc)
	cam := newCamera(t, nc, "cam", 32, 24, 1, 0)
	cam.frame()
	testenv.Eventually(t, 10*time.Second, "the first frame", func() bool { return s.known("cam") })
	ctx, _ := ctxFor(t)
	m := openMJPEG(t, ctx, ts.URL+"/cams/cam/stream.mjpg")
	if _, err := m.next(); err != nil {
		t.Fatal(err)
	}
	var e apiError
	if st := getJSON(t, ts.URL+"/api/stream", &e); st != 503 || !strings.Contains(e.Error, "too many") {
		t.Errorf("second stream: %d %+v", st, e)
	}
	if st := s.Stats(); st.ClientsRefused != 1 || st.Clients != 1 {
		t.Errorf("stats %+v", st)
	}
}

// Serve stops when its context ends, ending the streams, and returns nil.
func TestServeShutdown(t *testing.T) {
	_, nc := startHub(t)
	s, err := New(Config{}, nc, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()
	cam := newCamera(t, nc, "cam", 32, 24, 1, 0)
	cam.frame()
	testenv.Eventually(t, 10*time.Second, "the first frame", func() bool { return s.known("cam") })
	rctx, _ := ctxFor(t)
	m := openMJPEG(t, rctx, "http://"+ln.Addr().String()+"/cams/cam/stream.mjpg")
	if _, err := m.next(); err != nil {
		t.Fatal(err)
	}
	stop()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return within 10 s of its context ending")
	}
	if _, err := m.next(); err == nil {
		t.Error("the stream goes on after shutdown")
	}
	if st := s.Stats(); st.Clients != 0 {
		t.Errorf("after shutdown: %+v", st)
	}
	if err := s.Serve(context.Background(), ln); err == nil {
		t.Error("Serve ran twice")
	}
}
