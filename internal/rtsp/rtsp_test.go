package rtsp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"camhub/internal/h264"
	"camhub/internal/testenv"
)

func h264Launch(ts string) string {
	return "( filesrc location=" + ts + " ! tsdemux ! h264parse config-interval=-1 ! rtph264pay name=pay0 pt=96 )"
}

// A real H.264 camera stand-in (x264 from real footage, served by
// GStreamer's RTSP server): the access units read are the clip's, NAL unit
// for NAL unit, from a keyframe on, in order and without a gap, with SPS
// and PPS in every keyframe and increasing timestamps.
func TestPassthrough(t *testing.T) {
	for _, transport := range []string{"tcp", "udp"} {
		t.Run(transport, func(t *testing.T) {
			ts, want := clip(t, "640:360", 15, 4, "")
			srv := startServer(t, h264Launch(ts))
			var logs bytes.Buffer
			src, err := Open(context.Background(), srv.URL(), Options{Transport: transport,
				Logger: slog.New(slog.NewTextHandler(&syncWriter{w: &logs}, nil))})
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			t0 := time.Now()

			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			au, err := src.Read(ctx)
			if err != nil {
				t.Fatal(err)
			}
			got := []h264.AccessUnit{au}
			first := -1
			for i, w := range want {
				if sameNALUs(t, au.Data, w) {
					first = i
					break
				}
			}
			if first < 0 {
				t.Fatalf("the first access unit read (%d bytes) is none of the clip's", len(au.Data))
			}
			if first > len(want)/2 {
				t.Fatalf("the stream started at the clip's access unit %d of %d", first, len(want))
			}
			for len(got) < len(want)-first {
				au, err := src.Read(ctx)
				if err != nil {
					t.Fatalf("after %d of %d access units: %v", len(got), len(want)-first, err)
				}
				got = append(got, au)
			}
			t.Logf("%s: %d access units; the stream started at the clip's access unit %d; stats %+v; log %s",
				transport, len(got), first, src.Stats(), logs.String())
			for i, au := range got {
				w := want[first+i]
				// byte for byte: the clip's NAL units behind 4-byte start codes
				if !bytes.Equal(au.Data, h264.Join(nalus(t, w, false))) {
					t.Fatalf("access unit %d (%d bytes: %s) is not the clip's %d (%d bytes: %s)", i, len(au.Data), describe(t, au.Data), first+i, len(w), describe(t, w))
				}
				if au.Key != h264.IsKeyframe(w) {
					t.Errorf("access unit %d: Key %v", i, au.Key)
				}
				if au.Key {
					if sps, pps, _ := h264.Params(au.Data); sps == nil || pps == nil {
						t.Errorf("keyframe %d without SPS or PPS", i)
					}
				}
				if i == 0 && !au.Key {
					t.Error("the first access unit is not a keyframe")
				}
				if i > 0 {
					prev := got[i-1]
					if au.Seq != prev.Seq+1 {
						t.Errorf("access unit %d: Seq %d after %d", i, au.Seq, prev.Seq)
					}
					if au.PTS <= prev.PTS {
						t.Errorf("access unit %d: PTS %d after %d", i, au.PTS, prev.PTS)
					}
					// the server computes RTP time from nanoseconds: ±1 tick
					if d := au.PTS - prev.PTS; d < h264.ClockRate/15-1 || d > h264.ClockRate/15+1 {
						t.Errorf("access unit %d: PTS step %d ticks, want %d", i, d, h264.ClockRate/15)
					}
					if au.TimeSource == prev.TimeSource && au.Time.Before(prev.Time) {
						t.Errorf("access unit %d: Time %v before %v", i, au.Time, prev.Time)
					}
				}
				if au.DTS != au.PTS {
					t.Errorf("access unit %d: DTS %d, PTS %d without B-frames", i, au.DTS, au.PTS)
				}
				if sps, _, _ := h264.Params(want[0]); au.Codec != mustCodec(t, sps) || au.Width != 640 || au.Height != 360 {
					t.Errorf("access unit %d: %s %dx%d", i, au.Codec, au.Width, au.Height)
				}
				if au.Time.Before(t0.Add(-time.Second)) || au.Time.After(time.Now().Add(DefaultMaxClockSkew)) {
					t.Errorf("access unit %d: Time %v (%s), read between %v and now", i, au.Time, au.TimeSource, t0)
				}
			}
			if s := src.Stats(); s.Dropped != 0 || s.Lost != 0 || s.Errors != 0 || s.ParamsAdded != 0 {
				t.Errorf("stats %+v", s)
			}
			sources := map[h264.TimeSource]int{}
			for _, au := range got {
				sources[au.TimeSource]++
			}
			t.Logf("time sources %v", sources)
		})
	}
}

// syncWriter makes a bytes.Buffer safe for a logger used from several
// goroutines.
type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// A camera that offers H.265 or Motion JPEG: ErrUnsupportedCodec, naming
// what it offers; the credentials of the URL appear nowhere.
func TestUnsupportedCodec(t *testing.T) {
	dir := t.TempDir()
	hevc := filepath.Join(dir, "hevc.ts")
	ffmpeg(t, "-i", footage, "-t", "2", "-vf", "scale=320:240", "-c:v", "libx265", "-preset", "ultrafast",
		"-x265-params", "log-level=error", "-an", "-f", "mpegts", hevc)
	for _, tc := range []struct{ name, launch, offers string }{
		{"H.265", "( filesrc location=" + hevc + " ! tsdemux ! h265parse config-interval=-1 ! rtph265pay name=pay0 pt=96 )", "H265"},
		{"MJPEG", "( videotestsrc is-live=true ! video/x-raw,format=I420,width=320,height=240,framerate=15/1 ! jpegenc ! rtpjpegpay name=pay0 pt=26 )", "M-JPEG"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startServer(t, tc.launch)
			var logs bytes.Buffer
			u := "rtsp://admin:s3cret-pw@127.0.0.1:" + srv.Port + "/cam"
			src, err := Open(context.Background(), u, Options{Logger: slog.New(slog.NewTextHandler(&syncWriter{w: &logs}, nil))})
			if err == nil {
				src.Close()
				t.Fatal("opened")
			}
			if !errors.Is(err, ErrUnsupportedCodec) || !strings.Contains(err.Error(), tc.offers) {
				t.Errorf("error %q: want ErrUnsupportedCodec naming %s", err, tc.offers)
			}
			if strings.Contains(err.Error()+logs.String(), "s3cret") || strings.Contains(err.Error()+logs.String(), "admin") {
				t.Errorf("credentials in the error %q or the log %q", err, logs.String())
			}
			t.Logf("%v", err)
		})
	}
}

// A server that accepts the connection and never answers: Open fails
// within OpenTimeout, and so does it when the caller's context ends
// first.
func TestOpenTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // held open, never answered
			mu.Unlock()
		}
	}()
	defer func() {
		ln.Close()
		wg.Wait()
		for _, c := range conns {
			c.Close()
		}
	}()
	u := "rtsp://user:pw@" + ln.Addr().String() + "/cam"

	start := time.Now()
	_, err = Open(context.Background(), u, Options{OpenTimeout: 700 * time.Millisecond})
	took := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v, want a deadline", err)
	}
	if took < 700*time.Millisecond || took > 700*time.Millisecond+2*time.Second {
		t.Errorf("failed after %v with a 700ms OpenTimeout", took)
	}
	if strings.Contains(err.Error(), "pw@") {
		t.Errorf("credentials in %q", err)
	}
	t.Logf("%v after %v", err, took.Round(time.Millisecond))

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, err = Open(ctx, u, Options{OpenTimeout: time.Minute})
	if took := time.Since(start); !errors.Is(err, context.DeadlineExceeded) || took > 2*time.Second {
		t.Errorf("with the caller's context ending: %v after %v", err, took)
	}

	// nothing listening at all
	ln2, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln2.Addr().String()
	ln2.Close()
	if _, err := Open(context.Background(), "rtsp://"+addr+"/cam", Options{}); err == nil {
		t.Error("opened a port nobody listens on")
	}
}

// The server killed mid-stream: Read returns an error (after what was
// queued), it does not hang; Close after that returns and Read says
// ErrClosed.
func TestServerKilled(t *testing.T) {
	ts, _ := clip(t, "320:180", 15, 20, "")
	srv := startServer(t, h264Launch(ts))
	src, err := Open(context.Background(), srv.URL(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for range 10 {
		if _, err := src.Read(ctx); err != nil {
			t.Fatal(err)
		}
	}
	srv.Kill()
	killed := time.Now()
	for {
		_, err := src.Read(ctx)
		if err == nil {
			continue
		}
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrClosed) {
			t.Fatalf("Read: %v", err)
		}
		t.Logf("Read: %v, %v after the kill", err, time.Since(killed).Round(time.Millisecond))
		break
	}
	src.Close()
	if _, err := src.Read(ctx); !errors.Is(err, ErrClosed) && err == nil {
		t.Errorf("Read after Close: %v", err)
	}
}

// Close while a Read waits: the Read returns ErrClosed.
func TestCloseWhileReading(t *testing.T) {
	ts, _ := clip(t, "320:180", 15, 20, "")
	srv := startServer(t, h264Launch(ts))
	src, err := Open(context.Background(), srv.URL(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		for {
			if _, err := src.Read(context.Background()); err != nil {
				errc <- err
				return
			}
		}
	}()
	src.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("Read: %v, want ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Read still waiting 10 s after Close")
	}
	src.Close() // again: no effect
}

// A reader slower than the camera loses whole GOPs: every access unit it
// gets after a gap in Seq is a keyframe, and the drops are counted.
func TestSlowReaderDropsGOPs(t *testing.T) {
	ts, _ := clip(t, "320:180", 15, 20, "")
	srv := startServer(t, h264Launch(ts))
	src, err := Open(context.Background(), srv.URL(), Options{Queue: 5})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var prev h264.AccessUnit
	gaps := 0
	for src.Stats().Cuts < 3 {
		au, err := src.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if prev.Seq != 0 && au.Seq != prev.Seq+1 {
			gaps++
			if !au.Key {
				t.Fatalf("access unit %d after %d is not a keyframe", au.Seq, prev.Seq)
			}
		}
		prev = au
		// a reader at a third of the camera's rate (the slowness under
		// test, not synchronisation): the queue of 5 fills
		time.Sleep(200 * time.Millisecond)
	}
	s := src.Stats()
	t.Logf("stats %+v, %d gaps", s, gaps)
	if s.Dropped == 0 {
		t.Error("nothing counted as dropped")
	}
}

func mustCodec(t testing.TB, sps []byte) string {
	c, err := h264.CodecString(sps)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// describe lists the types and sizes of an access unit's NAL units.
func describe(t testing.TB, au []byte) string {
	ns, err := h264.Split(au)
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, n := range ns {
		fmt.Fprintf(&b, "%d:%d ", h264.Type(n), len(n))
	}
	return b.String()
}

// A camera that sends SPS and PPS only in the SDP (and its first
// keyframe): every keyframe read has them, put before its slices, and
// is otherwise the camera's.
func TestParamsFromSDP(t *testing.T) {
	_, want := clip(t, "320:180", 15, 4, "")
	sps, pps, err := h264.Params(want[0])
	if err != nil || sps == nil || pps == nil {
		t.Fatalf("the clip's first access unit has no SPS or PPS: %v", err)
	}
	// the clip without parameter sets after its first access unit
	var es []byte
	stripped := make([][]byte, len(want))
	for i, au := range want {
		var keep [][]byte
		for _, n := range nalus(t, au, false) {
			if i == 0 || (h264.Type(n) != h264.TypeSPS && h264.Type(n) != h264.TypePPS) {
				keep = append(keep, n)
			}
		}
		stripped[i] = h264.Join(keep)
		es = append(es, stripped[i]...)
	}
	dir := t.TempDir()
	esPath, ts := filepath.Join(dir, "stripped.h264"), filepath.Join(dir, "stripped.ts")
	if err := os.WriteFile(esPath, es, 0o644); err != nil {
		t.Fatal(err)
	}
	ffmpeg(t, "-framerate", "15", "-i", esPath, "-c", "copy", "-f", "mpegts", ts)
	// h264parse and rtph264pay as they come: parameter sets are not repeated
	srv := startServer(t, "( filesrc location="+ts+" ! tsdemux ! h264parse ! rtph264pay name=pay0 pt=96 )")
	src, err := Open(context.Background(), srv.URL(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	keys := 0
	for i := 0; i < len(want); i++ {
		au, err := src.Read(ctx)
		if err != nil {
			t.Fatalf("after %d access units: %v", i, err)
		}
		if i == 0 {
			// find where the stream started
			for i < len(want) && !sameNALUs(t, au.Data, stripped[i]) {
				i++
			}
			if i > len(want)/2 {
				t.Fatalf("the first access unit read is not among the clip's first half")
			}
		}
		exp := stripped[i]
		if au.Key {
			keys++
			if exp, err = h264.EnsureParams(stripped[i], sps, pps); err != nil {
				t.Fatal(err)
			}
			if s, p, _ := h264.Params(au.Data); s == nil || p == nil {
				t.Fatalf("keyframe %d without parameter sets", i)
			}
		}
		if !sameNALUs(t, au.Data, exp) {
			t.Fatalf("access unit %d: %s, want %s", i, describe(t, au.Data), describe(t, exp))
		}
	}
	if keys < 2 || src.Stats().ParamsAdded != uint64(keys-1) {
		t.Errorf("%d keyframes, stats %+v: want all but the first given the SDP's parameter sets", keys, src.Stats())
	}
	t.Logf("%d keyframes, each with the SDP's SPS and PPS", keys)
}

// A camera that asks for credentials: those in the URL open it; wrong
// ones fail; neither the error nor the log shows them.
func TestCredentials(t *testing.T) {
	ts, _ := clip(t, "320:180", 15, 10, "")
	srv := startServer(t, h264Launch(ts), "viewer:Pa55-word")
	var logs bytes.Buffer
	opts := Options{Logger: slog.New(slog.NewTextHandler(&syncWriter{w: &logs}, nil))}
	base := "127.0.0.1:" + srv.Port + "/cam"

	src, err := Open(context.Background(), "rtsp://viewer:Pa55-word@"+base, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if au, err := src.Read(ctx); err != nil || !au.Key {
		t.Fatalf("the first access unit: key %v, %v", au.Key, err)
	}
	if strings.Contains(src.Name(), "Pa55") {
		t.Errorf("Name %q", src.Name())
	}
	src.Close()

	for _, u := range []string{"rtsp://viewer:wrong-pw@" + base, "rtsp://" + base} {
		_, err := Open(context.Background(), u, opts)
		if err == nil {
			t.Fatalf("%s opened", Redact(u))
		}
		if !errors.Is(err, ErrUnauthorized) {
			t.Errorf("%v, want ErrUnauthorized", err)
		}
		if strings.Contains(err.Error(), "wrong-pw") {
			t.Errorf("the password in %q", err)
		}
		t.Log(err)
	}
	if strings.Contains(logs.String(), "Pa55") || strings.Contains(logs.String(), "wrong-pw") {
		t.Errorf("a password in the log: %s", logs.String())
	}
}

func TestRedact(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"rtsp://10.0.0.5/stream", "rtsp://10.0.0.5/stream"},
		{"rtsp://user:pass@10.0.0.5:554/stream?x=1", "rtsp://REDACTED@10.0.0.5:554/stream?x=1"},
		{"rtsp://user@cam/x", "rtsp://REDACTED@cam/x"},
		{"rtsp://us%zz:pa ss@cam/x", "rtsp://REDACTED@cam/x"}, // not a valid URL
		{"us:pw@cam", "REDACTED@cam"},
	} {
		if got := Redact(tc.in); got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	_, err := Open(context.Background(), "rtsp://us%zz:pa ss@cam/x", Options{})
	if err == nil || strings.Contains(err.Error(), "pa ss") {
		t.Errorf("Open of an invalid URL: %v", err)
	}
	if _, err := Open(context.Background(), "rtsp://cam/x", Options{Transport: "quic"}); err == nil {
		t.Error("transport quic accepted")
	}
}

// A camera that stops sending but keeps its connection (the server
// process stopped): Read fails once ReadTimeout has passed without data.
func TestServerStalled(t *testing.T) {
	ts, _ := clip(t, "320:180", 15, 20, "")
	srv := startServer(t, h264Launch(ts))
	src, err := Open(context.Background(), srv.URL(), Options{ReadTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for range 5 {
		if _, err := src.Read(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := srv.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer srv.Signal(syscall.SIGCONT)
	stopped := time.Now()
	for {
		if _, err := src.Read(ctx); err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatal("Read still waiting 30 s after the camera stopped")
			}
			t.Logf("Read: %v, %v after the camera stopped", err, time.Since(stopped).Round(time.Millisecond))
			break
		}
	}
}

// With Options.Deliver the access units come through the callback, on the
// source's own goroutine, byte for byte and in order from a keyframe;
// Read only says why the stream ended; no call comes after Close.
func TestDeliver(t *testing.T) {
	ts, want := clip(t, "320:180", 15, 20, "")
	srv := startServer(t, h264Launch(ts))
	var mu sync.Mutex
	var got []h264.AccessUnit
	closed := false
	src, err := Open(context.Background(), srv.URL(), Options{Deliver: func(au h264.AccessUnit) {
		mu.Lock()
		defer mu.Unlock()
		if closed {
			t.Error("an access unit delivered after Close returned")
		}
		got = append(got, au)
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	testenv.Eventually(t, 30*time.Second, "20 access units delivered", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) >= 20
	})
	srv.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if au, err := src.Read(ctx); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Read: %d bytes, %v; want the stream's end", len(au.Data), err)
	}
	src.Close()
	mu.Lock()
	closed = true
	aus := got
	mu.Unlock()

	if !aus[0].Key {
		t.Fatal("the first access unit delivered is not a keyframe")
	}
	first := -1
	for i, w := range want {
		if bytes.Equal(aus[0].Data, h264.Join(nalus(t, w, false))) {
			first = i
			break
		}
	}
	if first < 0 {
		t.Fatal("the first access unit delivered is none of the clip's")
	}
	for i, au := range aus {
		if first+i >= len(want) {
			break
		}
		if !bytes.Equal(au.Data, h264.Join(nalus(t, want[first+i], false))) {
			t.Fatalf("access unit %d is not the clip's %d", i, first+i)
		}
		if au.Seq != aus[0].Seq+uint64(i) {
			t.Fatalf("access unit %d: Seq %d after %d: a gap", i, au.Seq, aus[0].Seq)
		}
	}
	if n := src.queue.Len(); n != 0 {
		t.Errorf("%d access units queued for Read as well", n)
	}
}
