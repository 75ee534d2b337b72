package mp4

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"

	"camhub/internal/h264"
)

const interval = time.Second / 15

// frames returns how long n frames at 15 fps last.
func frames(n int) time.Duration { return time.Duration(n) * time.Second / 15 }

// near reports whether two durations are within a microsecond (the
// clip's times are whole 90 kHz ticks, a Duration whole nanoseconds).
func near(a, b time.Duration) bool { return a-b < time.Microsecond && b-a < time.Microsecond }

// captureTimes returns capture times for n frames at 15 fps with a few
// milliseconds of jitter, as a real camera's, from an arbitrary start.
func captureTimes(n int) []time.Time {
	start := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	out := make([]time.Time, n)
	for i := range out {
		out[i] = start.Add(time.Duration(i)*interval + time.Duration((i*7)%11-5)*time.Millisecond)
	}
	return out
}

// writeFile writes samples with a Writer to a file in dir and returns its
// path and the Writer's stats.
func writeFile(t *testing.T, dir string, opt Options, aus [][]byte, pts, dts []time.Duration) (string, Stats) {
	t.Helper()
	path := filepath.Join(dir, "out.mp4")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := NewWriter(f, opt)
	for i, au := range aus {
		if err := w.WriteAU(au, pts[i], dts[i]); err != nil {
			t.Fatalf("access unit %d: %v", i, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path, w.Stats()
}

// TestExport writes 45 frames (three GOPs) of 640x360 footage with
// jittered capture times: ffprobe reads exactly 45 frames of that size,
// the file lasts from the first capture to the last plus the last
// interval, and ffmpeg decodes it without complaint.
func TestExport(t *testing.T) {
	c := makeClip(t, "640:360", 45, 15, 0)
	times := captureTimes(len(c.aus))
	pts := make([]time.Duration, len(times))
	for i, tm := range times {
		pts[i] = tm.Sub(times[0])
	}
	path, st := writeFile(t, t.TempDir(), Options{}, c.aus, pts, pts)
	last := times[44].Sub(times[43])
	want := times[44].Sub(times[0]) + last
	if st.Samples != 45 || st.Skipped != 0 || st.Rejected != 0 || st.Duration != want {
		t.Errorf("stats %+v, want 45 samples lasting %v", st, want)
	}
	check(t, path, 45, 640, 360, want, time.Millisecond)

	// the frames are shown at the capture times (to ffprobe's rounding)
	got := framePTS(t, path)
	if len(got) != 45 {
		t.Fatalf("%d decoded frames", len(got))
	}
	for i, s := range got {
		if d := time.Duration(s*float64(time.Second)) - pts[i]; d < -50*time.Microsecond || d > 50*time.Microsecond {
			t.Errorf("frame %d shown at %.6f s, captured at %v", i, s, pts[i])
		}
	}

	// a given frame interval is the last sample's duration
	path, st = writeFile(t, t.TempDir(), Options{FrameInterval: 200 * time.Millisecond}, c.aus, pts, pts)
	want = times[44].Sub(times[0]) + 200*time.Millisecond
	if st.Duration != want {
		t.Errorf("duration %v, want %v", st.Duration, want)
	}
	check(t, path, 45, 640, 360, want, time.Millisecond)
}

// TestExportBFrames writes a clip with B-frames, as a camera may send
// them, with ffmpeg's PTS and DTS: decode order in the file, composition
// offsets, and the decoder outputs every frame in presentation order.
func TestExportBFrames(t *testing.T) {
	c := makeClip(t, "640:360", 45, 15, 2)
	reordered := false
	for i := range c.pts {
		if c.pts[i] != c.dts[i] {
			reordered = true
		}
	}
	if !reordered {
		t.Fatal("the clip has no B-frames: PTS equals DTS throughout")
	}
	path, st := writeFile(t, t.TempDir(), Options{}, c.aus, c.pts, c.dts)
	want := frames(45) // ffmpeg's times are 1/15 s apart
	if st.Samples != 45 || !near(st.Duration, want) {
		t.Errorf("stats %+v, want 45 samples lasting %v", st, want)
	}
	check(t, path, 45, 640, 360, want, time.Millisecond)
	got := framePTS(t, path)
	if len(got) != 45 {
		t.Fatalf("%d decoded frames, want 45", len(got))
	}
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			t.Fatalf("frame %d shown at %.6f s after frame %d at %.6f s: not in presentation order", i, got[i], i-1, got[i-1])
		}
	}
	// B-frames decoded after the keyframe are shown before it: their
	// composition offsets are negative, which ffmpeg's demuxer turns
	// into a start one reorder delay late (MSE shows the keyframe at 0)
	if got[0] < 0 || got[0] > interval.Seconds()+1e-6 {
		t.Errorf("the first frame is shown at %.6f s, want 0 to %v", got[0], interval)
	}
}

// TestExportSkipsLeadingDeltas starts an export in the middle of a GOP:
// the deltas before the first keyframe are skipped and counted, and the
// file starts at that keyframe.
func TestExportSkipsLeadingDeltas(t *testing.T) {
	c := makeClip(t, "640:360", 45, 15, 0)
	aus, pts := c.aus[5:], c.pts[5:]
	path, st := writeFile(t, t.TempDir(), Options{}, aus, pts, pts)
	if st.Skipped != 10 || st.Samples != 30 || !near(st.Duration, frames(30)) {
		t.Errorf("stats %+v, want 10 skipped, 30 samples lasting %v", st, frames(30))
	}
	check(t, path, 30, 640, 360, frames(30), time.Millisecond)
}

// TestExportLongGOP: a GOP longer than a fragment's limit is written in
// several fragments, the later ones beginning with a delta frame.
func TestExportLongGOP(t *testing.T) {
	c := makeClip(t, "160:96", maxFragmentSamples+20, 1000, 0)
	path, st := writeFile(t, t.TempDir(), Options{}, c.aus, c.pts, c.pts)
	n := maxFragmentSamples + 20
	if st.Samples != n {
		t.Errorf("stats %+v, want %d samples", st, n)
	}
	check(t, path, n, 160, 96, frames(n), time.Millisecond)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := bytes.Count(b, []byte("moof")); got != 2 {
		t.Errorf("%d fragments, want 2", got)
	}
}

// TestExportResolutionChange: a keyframe with another SPS ends the file
// with ErrParamsChanged; Close completes it with what came before, and a
// new Writer takes the new stream.
func TestExportResolutionChange(t *testing.T) {
	a := makeClip(t, "640:360", 30, 15, 0)
	b := makeClip(t, "320:180", 15, 15, 0)
	dir := t.TempDir()
	path := filepath.Join(dir, "a.mp4")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := NewWriter(f, Options{})
	for i, au := range a.aus {
		if err := w.WriteAU(au, time.Duration(i)*interval, time.Duration(i)*interval); err != nil {
			t.Fatal(err)
		}
	}
	next := time.Duration(len(a.aus)) * interval
	err = w.WriteAU(b.aus[0], next, next)
	if !errors.Is(err, ErrParamsChanged) {
		t.Fatalf("a keyframe of 320x180 after 640x360: %v, want ErrParamsChanged", err)
	}
	t.Log(err)
	if err := w.WriteAU(b.aus[1], next+interval, next+interval); !errors.Is(err, ErrParamsChanged) {
		t.Errorf("after the change: %v, want ErrParamsChanged", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if st := w.Stats(); st.Samples != 30 || st.Duration != 30*interval {
		t.Errorf("stats %+v, want 30 samples lasting %v", st, 30*interval)
	}
	check(t, path, 30, 640, 360, frames(30), time.Millisecond)

	path2, _ := writeFile(t, dir, Options{}, b.aus, b.pts, b.pts)
	check(t, path2, 15, 320, 180, frames(15), time.Millisecond)
}

// TestExportBadInput: a damaged access unit and a timestamp that goes
// back are rejected with an error and counted, the deltas after them are
// skipped to the next keyframe, and the file stays decodable.
func TestExportBadInput(t *testing.T) {
	c := makeClip(t, "640:360", 45, 15, 0)
	path := filepath.Join(t.TempDir(), "out.mp4")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := NewWriter(f, Options{})
	written := 0
	for i, au := range c.aus {
		at := time.Duration(i) * interval
		switch i {
		case 3: // garbage instead of an access unit
			if err := w.WriteAU([]byte("not h264"), at, at); !errors.Is(err, h264.ErrNoStartCode) {
				t.Errorf("garbage: %v", err)
			}
			continue
		case 20: // a DTS that goes back
			if err := w.WriteAU(au, at-time.Second, at-time.Second); !errors.Is(err, ErrTimestamp) {
				t.Errorf("DTS back: %v", err)
			}
			continue
		}
		if err := w.WriteAU(au, at, at); err != nil {
			t.Fatalf("access unit %d: %v", i, err)
		}
		if !(i > 3 && i < 15) && !(i > 20 && i < 30) {
			written++
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	st := w.Stats()
	if st.Rejected != 2 || st.Skipped != 11+9 || st.Samples != written || written != 23 {
		t.Errorf("stats %+v, want 2 rejected, 20 skipped, 23 samples", st)
	}
	check(t, path, 23, 640, 360, frames(45), time.Millisecond)

	// nothing but deltas: no file
	var buf bytes.Buffer
	w = NewWriter(&buf, Options{})
	for i, au := range c.aus[1:15] {
		if err := w.WriteAU(au, time.Duration(i)*interval, time.Duration(i)*interval); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); !errors.Is(err, ErrEmpty) || buf.Len() != 0 {
		t.Errorf("deltas only: %v, %d bytes written", err, buf.Len())
	}
	if err := w.WriteAU(c.aus[0], 0, 0); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
}

// TestFragments is what a browser's MSE SourceBuffer is given: the init
// segment then a fragment per GOP, or a fragment per frame; concatenated,
// they are a file ffprobe and ffmpeg read whole, B-frames included.
func TestFragments(t *testing.T) {
	for _, tc := range []struct {
		name    string
		bf      int
		perGOP  bool
		profile string
	}{
		// x264's choice for 640x360 at 15 fps: level 2.2; ultrafast is
		// constrained baseline, veryfast high
		{"per GOP", 0, true, "avc1.42C016"},
		{"per frame", 0, false, "avc1.42C016"},
		{"per GOP with B-frames", 2, true, "avc1.640016"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := makeClip(t, "640:360", 45, 15, tc.bf)
			m, err := NewMuxer(c.aus[0])
			if err != nil {
				t.Fatal(err)
			}
			if m.Codec() != tc.profile || m.MIME() != `video/mp4; codecs="`+tc.profile+`"` {
				t.Errorf("codec %q (%s), want %q", m.Codec(), m.MIME(), tc.profile)
			}
			if s := m.SPS(); s.Width != 640 || s.Height != 360 {
				t.Errorf("SPS %+v", s)
			}
			var file bytes.Buffer
			file.Write(m.Init())
			var run []Sample
			flush := func(end time.Duration) {
				frag, err := m.Fragment(run, end)
				if err != nil {
					t.Fatal(err)
				}
				sameAsMediacommon(t, frag)
				file.Write(frag)
				run = run[:0]
			}
			for i, au := range c.aus {
				if len(run) > 0 && (!tc.perGOP || h264.IsKeyframe(au)) {
					flush(c.dts[i])
				}
				run = append(run, Sample{AU: au, PTS: c.pts[i], DTS: c.dts[i]})
			}
			flush(c.dts[len(c.dts)-1] + interval)
			path := filepath.Join(t.TempDir(), "mse.mp4")
			if err := os.WriteFile(path, file.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			check(t, path, 45, 640, 360, frames(45), time.Millisecond)
		})
	}
}

// sameAsMediacommon asserts that mediacommon reads frag and writes the
// same bytes back: appendPart writes what fmp4.Part.Marshal writes.
func sameAsMediacommon(t *testing.T, frag []byte) {
	t.Helper()
	var parts fmp4.Parts
	if err := parts.Unmarshal(frag); err != nil || len(parts) != 1 {
		t.Fatalf("mediacommon reads the fragment: %v, %d parts", err, len(parts))
	}
	var buf seekablebuffer.Buffer
	if err := parts[0].Marshal(&buf); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), frag) {
		t.Fatalf("mediacommon writes the fragment as\n%x\nappendPart as\n%x", buf.Bytes(), frag)
	}
}

// TestMuxerErrors: what a Muxer refuses, and that it is unchanged after.
func TestMuxerErrors(t *testing.T) {
	c := makeClip(t, "320:180", 20, 10, 0)
	if _, err := NewMuxer(c.aus[1]); !errors.Is(err, ErrNeedKeyframe) {
		t.Errorf("NewMuxer(delta): %v", err)
	}
	// a keyframe without its parameter sets
	nalus, _ := h264.Split(c.aus[0])
	var slices [][]byte
	for _, n := range nalus {
		if h264.Type(n) != h264.TypeSPS && h264.Type(n) != h264.TypePPS {
			slices = append(slices, n)
		}
	}
	if _, err := NewMuxer(h264.Join(slices)); !errors.Is(err, ErrNoParams) {
		t.Errorf("NewMuxer(IDR without SPS): %v", err)
	}
	m, err := NewMuxer(c.aus[0])
	if err != nil {
		t.Fatal(err)
	}
	s := func(i int) Sample {
		return Sample{AU: c.aus[i], PTS: time.Duration(i) * interval, DTS: time.Duration(i) * interval}
	}
	for _, tc := range []struct {
		name    string
		samples []Sample
		end     time.Duration
		want    error
	}{
		{"none", nil, time.Second, ErrEmpty},
		{"a delta first", []Sample{s(1), s(2)}, time.Second, ErrNeedKeyframe},
		{"DTS not increasing", []Sample{s(0), s(2), s(1)}, time.Second, ErrTimestamp},
		{"end before the last DTS", []Sample{s(0), s(1)}, interval, ErrTimestamp},
		{"garbage", []Sample{s(0), {AU: []byte{0, 0, 1}, DTS: time.Second}}, 2 * time.Second, h264.ErrEmpty},
	} {
		if _, err := m.Fragment(tc.samples, tc.end); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	// still a fresh muxer: the first fragment starts the track
	frag, err := m.Fragment([]Sample{s(0), s(1)}, 2*interval)
	if err != nil || len(frag) == 0 {
		t.Fatalf("after errors: %v", err)
	}
	// the next fragment must continue the decode times
	if _, err := m.Fragment([]Sample{s(1)}, 2*interval); !errors.Is(err, ErrTimestamp) {
		t.Errorf("a fragment repeating a DTS: %v", err)
	}
	if _, err := m.Fragment([]Sample{s(2)}, 3*interval); err != nil {
		t.Errorf("a fragment starting with a delta after the first: %v", err)
	}
}

// cpuTime is the process's user and system CPU time: on a shared
// machine it measures the work better than the wall clock.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkWriteAU measures the Writer per access unit: 640x360 footage
// at 15 fps, GOPs of 15, to io.Discard (a fragment per GOP).
func BenchmarkWriteAU(b *testing.B) {
	c := makeClip(b, "640:360", 45, 15, 0)
	size := 0
	for _, au := range c.aus {
		size += len(au)
	}
	b.SetBytes(int64(size / len(c.aus)))
	b.ReportAllocs()
	w := NewWriter(io.Discard, Options{})
	b.ResetTimer()
	cpu := cpuTime(b)
	for i := range b.N {
		at := time.Duration(i) * interval
		if err := w.WriteAU(c.aus[i%len(c.aus)], at, at); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(cpuTime(b)-cpu)/float64(b.N), "cpu-ns/op")
}

// BenchmarkFragmentPerFrame measures the Muxer making a fragment of each
// access unit, as a low-latency MSE stream would.
func BenchmarkFragmentPerFrame(b *testing.B) {
	c := makeClip(b, "640:360", 45, 15, 0)
	m, err := NewMuxer(c.aus[0])
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime(b)
	sample := make([]Sample, 1)
	for i := range b.N {
		at := time.Duration(i) * interval
		sample[0] = Sample{AU: c.aus[i%len(c.aus)], PTS: at, DTS: at}
		if _, err := m.Fragment(sample, at+interval); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cpuTime(b)-cpu)/float64(b.N), "cpu-ns/op")
}
