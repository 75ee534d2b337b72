//go:build cgo

package detector_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image/jpeg"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"camhub/detector"
	"camhub/hub"
	"camhub/hub/hubtest"
	"camhub/internal/avcodec"
	"camhub/internal/export"
	"camhub/internal/motion"
	"camhub/internal/motion/motiontest"
	"camhub/internal/replay"
	"camhub/internal/testenv"
	"camhub/internal/wire"
)

const (
	cam    = "front"
	width  = 640
	height = 480
	gop    = 20 // a keyframe every 2 s
)

// camera is a fixture as an agent sends it: JPEG frames or H.264 access
// units, with capture times 100 ms apart from t0 (in the past, as if the
// frames had come late: the buffer seeks by the time it stored them).
type camera struct {
	t     testing.TB
	nc    *nats.Conn
	video bool
	data  [][]byte
	t0    time.Time
	next  int
}

func newCamera(t testing.TB, url string, video bool, frames [][]byte) *camera {
	// the walk, then still frames for the post-roll
	for range 50 {
		frames = append(frames, frames[len(frames)-1])
	}
	data := frames
	if video {
		data = motiontest.H264(t, frames, gop)
	}
	t0 := time.Now().Add(-time.Duration(len(frames)) * motiontest.Interval).Truncate(time.Millisecond)
	return &camera{t: t, nc: testenv.Conn(t, url), video: video, data: data, t0: t0}
}

func (c *camera) at(i int) time.Time { return c.t0.Add(time.Duration(i) * motiontest.Interval) }

// publish sends the fixture's frames up to (not including) frame n, four
// times faster than they were captured: a camera, not synchronisation.
func (c *camera) publish(n int) {
	c.t.Helper()
	tick := time.NewTicker(motiontest.Interval / 4)
	defer tick.Stop()
	for ; c.next < min(n, len(c.data)); c.next++ {
		<-tick.C
		i := c.next
		var m *nats.Msg
		if c.video {
			m = testenv.VideoMsg(c.t, cam, uint64(i+1), c.at(i), c.data[i], width, height)
		} else {
			m = testenv.FrameMsg(cam, uint64(i+1), c.at(i), c.data[i], width, height)
		}
		if err := c.nc.PublishMsg(m); err != nil {
			c.t.Fatal(err)
		}
	}
	if err := c.nc.Flush(); err != nil {
		c.t.Fatal(err)
	}
}

func startDetector(t testing.TB, nc *nats.Conn) *detector.Detector {
	t.Helper()
	d, err := detector.New(nc, detector.Config{Defaults: motion.DefaultCamera()}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d
}

// events returns every document stored in EVENTS for cam.
func events(t testing.TB, js jetstream.JetStream) []wire.Event {
	t.Helper()
	ctx := testenv.Context(t, 10*time.Second)
	cons, err := js.OrderedConsumer(ctx, wire.EventsStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{wire.EventsSubject(cam)}})
	if err != nil {
		t.Fatal(err)
	}
	var out []wire.Event
	for {
		info := cons.CachedInfo()
		if len(out) == 0 && (info == nil || info.NumPending == 0) {
			return nil
		}
		m, err := cons.Next(jetstream.FetchMaxWait(time.Second))
		if errors.Is(err, jetstream.ErrNoMessages) || errors.Is(err, nats.ErrTimeout) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		e, err := wire.ParseEvent(m.Subject(), m.Data())
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, *e)
		if meta, err := m.Metadata(); err == nil && meta.NumPending == 0 {
			return out
		}
	}
}

// ended waits for the event to be stored with its end and clip.
func ended(t testing.TB, js jetstream.JetStream) wire.Event {
	t.Helper()
	var last *wire.Event
	testenv.Eventually(t, 60*time.Second, "the event stored with its clip", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		e, err := replay.LastEvent(ctx, js, cam)
		if err != nil || e == nil || e.Open() {
			return false
		}
		last = e
		return true
	})
	return *last
}

// motionMsgs records cams.<cam>.motion.
type motionMsgs struct {
	mu   sync.Mutex
	msgs []wire.Motion
}

func recordMotion(t testing.TB, url string) *motionMsgs {
	var r motionMsgs
	nc := testenv.Conn(t, url)
	if _, err := nc.Subscribe(wire.MotionSubject(cam), func(m *nats.Msg) {
		mm, err := wire.ParseMotion(m.Subject, m.Data)
		if err != nil {
			t.Error(err)
			return
		}
		r.mu.Lock()
		r.msgs = append(r.msgs, *mm)
		r.mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return &r
}

func (r *motionMsgs) get() []wire.Motion {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]wire.Motion(nil), r.msgs...)
}

// checkClip checks the stored event against the fixture, and its clip.
func checkClip(t *testing.T, js jetstream.JetStream, c *camera, ev wire.Event) {
	t.Helper()
	set := motion.DefaultCamera()
	motionAt := c.t0.Add(motiontest.MotionStart)
	if d := ev.Start.Sub(motionAt); d < -time.Second || d > time.Second {
		t.Errorf("the event starts at %v, %v after the motion", ev.Start, d)
	}
	if min := c.t0.Add(motiontest.MotionEnd + set.Motion.OffDelay - time.Second); ev.End.Before(min) {
		t.Errorf("the event ends at %v, before the motion's end and the off-delay (%v)", ev.End, min)
	}
	if ev.ID != wire.EventID(cam, ev.Start) || ev.Score <= 0 || len(ev.Boxes) == 0 {
		t.Errorf("event %+v", ev)
	}
	from := ev.Start.Add(-set.PreRoll)
	var seqs []uint64
	var first, last time.Time
	var firstKey bool
	err := replay.ReadClip(testenv.Context(t, 30*time.Second), js, ev.ID, false, func(m jetstream.Msg, f wire.Frame) error {
		if len(seqs) == 0 {
			first = f.Time
			firstKey = m.Headers().Get(wire.HeaderKey) == "1"
		}
		seqs = append(seqs, f.Seq)
		last = f.Time
		if c.video {
			if _, err := wire.ParseVideo(m.Headers()); err != nil {
				t.Errorf("clip message %d: %v", f.Seq, err)
			}
		} else if !wire.LooksLikeJPEG(m.Data()) || m.Headers().Get(wire.HeaderWidth) != "640" {
			t.Errorf("clip message %d: not the camera's JPEG with its headers", f.Seq)
		}
		if cs := wire.CamsSubject(ev.ID, m.Subject()); cs == "" {
			t.Errorf("clip message on %s", m.Subject())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seqs) == 0 {
		t.Fatal("an empty clip")
	}
	if first.After(from.Add(motiontest.Interval)) {
		t.Errorf("the clip starts at %v, after the pre-roll's start %v (+ a frame)", first, from)
	}
	if c.video && (!firstKey || first.After(from)) {
		t.Errorf("the H.264 clip starts at %v (a keyframe: %v), not at a keyframe at or before %v", first, firstKey, from)
	}
	if !c.video && first.Before(from) {
		t.Errorf("the clip starts at %v, before the pre-roll's start %v", first, from)
	}
	if want := ev.End.Add(set.PostRoll - motiontest.Interval); last.Before(want) {
		t.Errorf("the clip ends at %v, before the post-roll's end %v", last, ev.End.Add(set.PostRoll))
	}
	for i := 1; i < len(seqs); i++ {
		if seqs[i] != seqs[i-1]+1 {
			t.Fatalf("the clip's Frame-Seq goes %d, %d: not contiguous", seqs[i-1], seqs[i])
		}
	}
	if ev.Clip.Frames != len(seqs) || ev.Clip.First != first || ev.Clip.Last != last {
		t.Errorf("the event says the clip is %d frames %v to %v; it is %d, %v to %v", ev.Clip.Frames, ev.Clip.First, ev.Clip.Last, len(seqs), first, last)
	}
	t.Logf("event %s: %v to %v (motion %v to %v); clip of %d frames, %v to %v",
		ev.ID, ev.Start.Sub(c.t0), ev.End.Sub(c.t0), motiontest.MotionStart, motiontest.MotionEnd, len(seqs), first.Sub(c.t0), last.Sub(c.t0))
}

func TestEvent(t *testing.T) {
	for _, video := range []bool{false, true} {
		name := "jpeg"
		if video {
			name = "h264"
		}
		t.Run(name, func(t *testing.T) {
			h, js := hubtest.StartJS(t, nil)
			mm := recordMotion(t, h.ClientURL())
			thumbFirst := thumbBeforeEvent(t, h.ClientURL(), js)
			c := newCamera(t, h.ClientURL(), video, motiontest.Walk(t, width, height))
			check, decoders := matLeaks(t), avcodec.Live()
			d := startDetector(t, testenv.Conn(t, h.ClientURL()))
			c.publish(len(c.data))
			ev := ended(t, js)
			checkClip(t, js, c, ev)
			if evs := events(t, js); len(evs) != 2 || evs[0].ID != ev.ID || evs[1].ID != ev.ID || !evs[0].Open() {
				t.Errorf("EVENTS holds %d documents, want the start and the end of one event: %+v", len(evs), evs)
			}
			testenv.Eventually(t, 10*time.Second, "motion ON and OFF", func() bool { return len(mm.get()) == 2 })
			if m := mm.get(); m[0].State != wire.MotionOn || m[1].State != wire.MotionOff || m[0].Event != ev.ID || m[1].Event != ev.ID {
				t.Errorf("motion messages %+v", m)
			}
			// the clip exported as the viewer does: every frame, H.264 as it is
			out := filepath.Join(t.TempDir(), "event.mp4")
			res, err := export.Event(testenv.Context(t, time.Minute), js, ev.ID, out, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.Frames != ev.Clip.Frames || res.First != ev.Clip.First || res.Last != ev.Clip.Last || (video && res.Codec != "avc1") {
				t.Errorf("exported %+v, the clip is %+v", res, ev.Clip)
			}
			checkThumb(t, js, c, ev)
			if r := thumbFirst(); r != "yes" {
				t.Errorf("the thumbnail was not stored before the event's first document: %s", r)
			}
			st := d.Stats()
			t.Logf("stats %+v", st)
			d.Close()
			check("after the detector closed")
			if n := avcodec.Live(); n != decoders {
				t.Errorf("%d H.264 decoders open, %d before: %s", n, decoders, avcodec.LiveString())
			}
			if st.Events != 1 || st.Bad != 0 || st.Thumbs != 1 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// TestRestart stops the hub, with the detector in it, during an event and
// starts them again on the same store: the event carries on, its clip has
// every frame once.
func TestRestart(t *testing.T) {
	for _, video := range []bool{false, true} {
		name := "jpeg"
		if video {
			name = "h264"
		}
		t.Run(name, func(t *testing.T) {
			cfg := hubtest.Config()
			cfg.Storage, cfg.StoreDir = hub.StorageFile, t.TempDir()
			h1, err := hub.Start(context.Background(), cfg, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			d1 := startDetector(t, h1.Conn())
			c := newCamera(t, h1.ClientURL(), video, motiontest.Walk(t, width, height))
			// into the motion: the event started, part of its clip stored
			c.publish(int((motiontest.MotionStart + 4*time.Second) / motiontest.Interval))
			testenv.Eventually(t, 30*time.Second, "the event started and its clip being stored", func() bool {
				return d1.Stats().Events == 1 && d1.Stats().Copied > 50
			})
			d1.Close()
			h1.Close()

			cfg.Listen = "127.0.0.1:0"
			h2 := hubtest.Start(t, &cfg)
			js := hubtest.JetStream(t, h2.ClientURL())
			startDetector(t, testenv.Conn(t, h2.ClientURL()))
			c.nc = testenv.Conn(t, h2.ClientURL())
			c.publish(len(c.data))
			ev := ended(t, js)
			checkClip(t, js, c, ev)
			evs := events(t, js)
			if len(evs) != 2 || evs[0].ID != evs[1].ID {
				b, _ := json.Marshal(evs)
				t.Errorf("EVENTS holds %d documents, want one event's start and end: %s", len(evs), b)
			}
			checkThumb(t, js, c, ev) // stored once, before the restart
			if d1.Stats().Thumbs != 1 {
				t.Errorf("the first detector stored %d thumbnails", d1.Stats().Thumbs)
			}
		})
	}
}

// Sensor noise on a still picture (JPEG) and a sudden brightness step
// (H.264) raise no event.
func TestNoEvent(t *testing.T) {
	for _, tc := range []struct {
		name   string
		video  bool
		frames func(testing.TB, int, int) [][]byte
		min    uint64 // analysed pictures that cover the fixture's point
	}{
		{"jpeg noise", false, motiontest.Noise, 60},
		{"h264 brightness", true, motiontest.Brightness, 90},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, js := hubtest.StartJS(t, nil)
			mm := recordMotion(t, h.ClientURL())
			c := newCamera(t, h.ClientURL(), tc.video, tc.frames(t, width, height))
			d := startDetector(t, testenv.Conn(t, h.ClientURL()))
			c.publish(len(c.data))
			testenv.Eventually(t, 60*time.Second, "the fixture analysed", func() bool { return d.Stats().Analysed >= tc.min })
			if st := d.Stats(); st.Events != 0 || st.Bad != 0 {
				t.Errorf("stats %+v", st)
			}
			if evs := events(t, js); len(evs) != 0 {
				t.Errorf("events %+v", evs)
			}
			if m := mm.get(); len(m) != 0 {
				t.Errorf("motion %+v", m)
			}
		})
	}
}

// checkThumb checks that CLIPS holds exactly one thumbnail of ev: a JPEG
// of the fixture's size, captured during the event, with its headers.
func checkThumb(t *testing.T, js jetstream.JetStream, c *camera, ev wire.Event) {
	t.Helper()
	ctx := testenv.Context(t, 10*time.Second)
	subj := wire.ThumbSubject(ev.ID, cam)
	st, err := js.Stream(ctx, wire.ClipsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(subj))
	if err != nil {
		t.Fatal(err)
	}
	if n := info.State.Subjects[subj]; n != 1 {
		t.Fatalf("CLIPS holds %d messages on %s, want one thumbnail", n, subj)
	}
	m, err := st.GetLastMsgForSubject(ctx, subj)
	if err != nil {
		t.Fatal(err)
	}
	if !wire.LooksLikeJPEG(m.Data) || m.Header.Get(wire.HeaderMsgID) != wire.ThumbMsgID(ev.ID) ||
		m.Header.Get(wire.HeaderWidth) != "640" || m.Header.Get(wire.HeaderHeight) != "480" {
		t.Fatalf("thumbnail %d bytes, headers %v", len(m.Data), m.Header)
	}
	img, err := jpeg.Decode(bytes.NewReader(m.Data))
	if err != nil || img.Bounds().Dx() != 640 || img.Bounds().Dy() != 480 {
		t.Fatalf("the thumbnail does not decode as a 640x480 JPEG: %v", err)
	}
	at, err := time.Parse(time.RFC3339Nano, m.Header.Get(wire.HeaderTime))
	if err != nil || at.Before(ev.Start) || at.After(ev.Start.Add(2*time.Second)) {
		t.Errorf("the thumbnail was captured at %v (%v), the event started at %v", at, err, ev.Start)
	}
	if _, ferr := wire.ParseFrame(m.Header); ferr == nil {
		t.Error("the thumbnail's headers are a frame's: a clip reader would take it for one")
	}
	if !c.video { // a JPEG camera's own frame, as it came
		found := false
		for _, f := range c.data {
			found = found || bytes.Equal(f, m.Data)
		}
		if !found {
			t.Error("the JPEG camera's thumbnail is not one of its frames")
		}
	}
}

// thumbBeforeEvent watches cam's events: whether, when the first document
// of an event came, its thumbnail was already stored ("yes").
func thumbBeforeEvent(t testing.TB, url string, js jetstream.JetStream) func() string {
	var mu sync.Mutex
	result := "no event"
	nc := testenv.Conn(t, url)
	if _, err := nc.Subscribe(wire.EventsSubject(cam), func(m *nats.Msg) {
		e, err := wire.ParseEvent(m.Subject, m.Data)
		if err != nil || !e.Open() {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r := "yes"
		if st, err := js.Stream(ctx, wire.ClipsStream); err != nil {
			r = err.Error()
		} else if _, err := st.GetLastMsgForSubject(ctx, wire.ThumbSubject(e.ID, cam)); err != nil {
			r = err.Error()
		}
		mu.Lock()
		result = r
		mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return func() string {
		mu.Lock()
		defer mu.Unlock()
		return result
	}
}
