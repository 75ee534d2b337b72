package mpegts

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"camhub/internal/h264"
)

// footage is real footage from Debian's opencv-doc.
const footage = "/usr/share/doc/opencv-doc/examples/data/vtest.avi"

// ffmpeg runs ffmpeg with args and fails the test on an error.
func ffmpeg(t testing.TB, args ...string) {
	t.Helper()
	cmd := exec.Command("ffmpeg", append([]string{"-hide_banner", "-loglevel", "error", "-y"}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// clip encodes 4 s of footage at 640x360, 15 fps, one keyframe a second,
// no B-frames, into MPEG-TS, and returns its path and its access units
// (its H.264 taken out again in Annex B form) without access unit
// delimiters.
func clip(t testing.TB) (string, [][]byte) {
	t.Helper()
	dir := t.TempDir()
	ts := filepath.Join(dir, "clip.ts")
	ffmpeg(t, "-i", footage, "-t", "4", "-vf", "scale=640:360,fps=15", "-c:v", "libx264", "-preset", "veryfast",
		"-g", "15", "-bf", "0", "-an", "-f", "mpegts", ts)
	es := filepath.Join(dir, "clip.h264")
	ffmpeg(t, "-i", ts, "-c", "copy", "-f", "h264", es)
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
		if h264.Type(ns[0]) == h264.TypeAUD {
			ns = ns[1:]
		}
		aus[i] = h264.Join(ns)
	}
	return ts, aus
}

// readAll reads access units until the source fails.
func readAll(t testing.TB, s *Source) ([]h264.AccessUnit, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var aus []h264.AccessUnit
	for {
		au, err := s.Read(ctx)
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("no end within 30 s, %d access units", len(aus))
			}
			return aus, err
		}
		aus = append(aus, au)
	}
}

// ffmpeg writes MPEG-TS (the clip's video, copied, beside AAC audio) to a
// pipe at its real rate: the access units read are the clip's byte for
// byte, then the end of the stream is io.EOF.
func TestFFmpegPipe(t *testing.T) {
	ts, want := clip(t)
	cmd := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-i", ts,
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-map", "0:v", "-map", "1:a",
		"-c:v", "copy", "-c:a", "aac", "-shortest", "-f", "mpegts", "pipe:1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	start := time.Now()
	src, err := Open(context.Background(), out, Options{})
	if err != nil {
		t.Fatalf("%v (ffmpeg: %s)", err, stderr.String())
	}
	defer src.Close()
	got, err := readAll(t, src)
	if !errors.Is(err, io.EOF) {
		t.Errorf("the end: %v, want io.EOF", err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d access units, the clip has %d (stats %+v)", len(got), len(want), src.Stats())
	}
	for i, au := range got {
		if !bytes.Equal(au.Data, want[i]) {
			t.Fatalf("access unit %d (%d bytes) is not the clip's (%d bytes)", i, len(au.Data), len(want[i]))
		}
		if au.Key != h264.IsKeyframe(want[i]) || au.Key != (i%15 == 0) {
			t.Errorf("access unit %d: Key %v", i, au.Key)
		}
		if sps, pps, _ := h264.Params(au.Data); au.Key && (sps == nil || pps == nil) {
			t.Errorf("keyframe %d without SPS or PPS", i)
		}
		if au.Seq != uint64(i+1) || au.DTS != au.PTS || au.TimeSource != h264.TimeReceive {
			t.Errorf("access unit %d: Seq %d, DTS %d, PTS %d, %s", i, au.Seq, au.DTS, au.PTS, au.TimeSource)
		}
		if au.Width != 640 || au.Height != 360 || !strings.HasPrefix(au.Codec, "avc1.64") {
			t.Errorf("access unit %d: %s %dx%d", i, au.Codec, au.Width, au.Height)
		}
		if i > 0 {
			if d := au.PTS - got[i-1].PTS; d != h264.ClockRate/15 {
				t.Errorf("access unit %d: PTS step %d", i, d)
			}
			if au.Time.Before(got[i-1].Time) {
				t.Errorf("access unit %d: Time %v before %v", i, au.Time, got[i-1].Time)
			}
		}
		if au.Time.Before(start) || au.Time.After(time.Now()) {
			t.Errorf("access unit %d: Time %v outside the run", i, au.Time)
		}
	}
	// ffmpeg -re writes the 4 s clip over about 4 s; the times are when each
	// access unit came, not when the one after it did
	span := got[len(got)-1].Time.Sub(got[0].Time)
	t.Logf("%d access units, times span %v, stats %+v", len(got), span, src.Stats())
	if span < 2*time.Second {
		t.Errorf("times span %v for a 4 s clip written at its rate", span)
	}
}

// A stream without H.264 (audio only; H.265 video): ErrNoH264 naming what
// it has.
func TestNoH264(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		has  string
	}{
		{"audio", []string{"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "1", "-c:a", "aac"}, "MPEG4Audio"},
		{"H.265", []string{"-i", footage, "-t", "1", "-vf", "scale=320:240", "-c:v", "libx265", "-preset", "ultrafast",
			"-x265-params", "log-level=error", "-an"}, "H265"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := filepath.Join(dir, tc.name+".ts")
			ffmpeg(t, append(tc.args, "-f", "mpegts", f)...)
			r, err := os.Open(f)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Open(context.Background(), r, Options{})
			if !errors.Is(err, ErrNoH264) || !strings.Contains(err.Error(), tc.has) {
				t.Errorf("%v: want ErrNoH264 naming %s", err, tc.has)
			}
			t.Log(err)
		})
	}
}

// Garbage, an empty stream, and a stream cut short: clear errors, no
// panic, and no access unit that is not whole.
func TestBadInput(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	noise := make([]byte, 5<<20)
	for i := range noise {
		noise[i] = byte(rng.Uint32())
	}
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"garbage", noise[:100000]},
		{"endless garbage", noise},
		{"text", bytes.Repeat([]byte("GET / HTTP/1.1\r\n"), 1000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Open(context.Background(), io.NopCloser(bytes.NewReader(tc.in)), Options{})
			if !errors.Is(err, ErrNotTS) {
				t.Errorf("%v, want ErrNotTS", err)
			}
			t.Log(err)
		})
	}

	ts, want := clip(t)
	b, err := os.ReadFile(ts)
	if err != nil {
		t.Fatal(err)
	}
	cut := b[:len(b)/2+77] // inside an access unit, inside a packet
	src, err := Open(context.Background(), io.NopCloser(bytes.NewReader(cut)), Options{Queue: len(want)})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	got, err := readAll(t, src)
	if !errors.Is(err, io.EOF) {
		t.Errorf("the end: %v, want io.EOF", err)
	}
	if len(got) == 0 || len(got) >= len(want) {
		t.Fatalf("%d access units from half the clip's %d", len(got), len(want))
	}
	for i, au := range got {
		if !bytes.Equal(au.Data, want[i]) {
			t.Fatalf("access unit %d of %d (%d bytes) is not the clip's (%d bytes)", i, len(got), len(au.Data), len(want[i]))
		}
	}
	if s := src.Stats(); s.Errors != 1 {
		t.Errorf("stats %+v: want the cut access unit counted", s)
	}
	t.Logf("cut: %d whole access units, then %v; stats %+v", len(got), err, src.Stats())
}

// Close while a Read waits on a stream that sends nothing more: both
// return.
func TestCloseWhileReading(t *testing.T) {
	ts, _ := clip(t)
	b, err := os.ReadFile(ts)
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	go func() {
		pw.Write(b[:len(b)/2]) // then nothing: the pipe stays open
	}()
	src, err := Open(context.Background(), pr, Options{})
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
	pw.Close()
}
