package agent

import (
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"camhub/internal/avcodec"
	"camhub/internal/h264"
	"camhub/internal/ops"
	"camhub/internal/testenv"
	"camhub/internal/wire"
)

// tiered is what a test received from a camera with a small tier.
type tiered struct {
	main, lo []*nats.Msg
	statuses []*wire.Status
}

// collectTiers receives everything camera id sends on ch until done says
// so, failing the test after d.
func collectTiers(t testing.TB, ch <-chan *nats.Msg, r *tiered, d time.Duration, done func(*tiered) bool) {
	t.Helper()
	deadline := time.After(d)
	for !done(r) {
		select {
		case m := <-ch:
			switch {
			case strings.HasSuffix(m.Subject, "."+wire.KindStatus):
				var s wire.Status
				if err := json.Unmarshal(m.Data, &s); err != nil {
					t.Fatal(err)
				}
				r.statuses = append(r.statuses, &s)
			case strings.Contains(m.Subject, "."+wire.KindLo+"."):
				if _, _, _, err := wire.ParseLoSubject(m.Subject); err != nil {
					t.Fatalf("a message on %s: %v", m.Subject, err)
				}
				r.lo = append(r.lo, m)
			default:
				r.main = append(r.main, m)
			}
		case <-deadline:
			t.Fatalf("not done within %v: %d main, %d small-tier messages, %d statuses", d, len(r.main), len(r.lo), len(r.statuses))
		}
	}
}

// A camera with a JPEG small tier publishes both tiers from the same
// captured frames: the main tier at --size, the small one at --lo-size
// (checked by decoding), each with its own Frame-Seq whose gaps are its own
// drops, and the status report says what the small tier is.
func TestLoTierJPEG(t *testing.T) {
	_, url := startNATS(t, nil)
	ch := subscribeVideo(t, url, "front") // cams.front.>
	cfg := Config{ID: "front", Source: "testpattern", FPS: 20, Width: 640, Height: 480,
		LoWidth: 320, LoHeight: 180, LoFPS: 10, ReportInterval: 100 * time.Millisecond}
	r := start(t, cfg, dial(t, url))
	var got tiered
	collectTiers(t, ch, &got, 20*time.Second, func(g *tiered) bool { return len(g.lo) >= 15 && len(g.main) >= 30 })
	srv := httptest.NewServer(ops.Handler(r.a.Collector(), func() (bool, any) { return r.a.Health() }))
	defer srv.Close()
	if n := scrape(t, srv.URL, "camhub_agent_lo_frames_sent_total", "front"); n < 15 {
		t.Errorf("camhub_agent_lo_frames_sent_total %v", n)
	}
	if n := scrape(t, srv.URL, "camhub_agent_lo_encode_seconds_total", "front"); n <= 0 {
		t.Errorf("camhub_agent_lo_encode_seconds_total %v", n)
	}
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	collectTiers(t, ch, &got, 10*time.Second, func(g *tiered) bool {
		n := len(g.statuses)
		return n > 0 && g.statuses[n-1].State == wire.StateStopped
	})
	for _, m := range got.main {
		if f := decode(t, m); f.Width != 640 || f.Height != 480 {
			t.Fatalf("main frame %d is %dx%d", f.Seq, f.Width, f.Height)
		}
	}
	var prev, gaps uint64
	var first, last time.Time
	for _, m := range got.lo {
		if m.Subject != "cams.front.lo.frames" {
			t.Fatalf("small tier on %s", m.Subject)
		}
		// 4:3 fitted into 320x180
		f := decode(t, m)
		if f.Width != 240 || f.Height != 180 {
			t.Fatalf("small-tier frame %d is %dx%d, want 240x180", f.Seq, f.Width, f.Height)
		}
		if f.Seq <= prev {
			t.Fatalf("small-tier Frame-Seq %d after %d", f.Seq, prev)
		}
		gaps += f.Seq - prev - 1
		prev = f.Seq
		if first.IsZero() {
			first = f.Time
		}
		last = f.Time
	}
	lo := r.a.LoStats()
	if gaps+(lo.Frames-prev) != lo.Dropped {
		t.Errorf("small-tier Frame-Seq gaps %d (and %d after the last) but %d dropped", gaps, lo.Frames-prev, lo.Dropped)
	}
	if lo.Sent != uint64(len(got.lo)) {
		t.Errorf("small tier sent %d, received %d", lo.Sent, len(got.lo))
	}
	// --lo-fps 10 of a 20 fps camera: about every other frame
	if n := len(got.lo); n > 1 {
		if rate := float64(n-1) / last.Sub(first).Seconds(); rate > 13 {
			t.Errorf("small tier at %.1f fps, want at most 10 (+ a margin)", rate)
		}
	}
	st := r.a.Stats()
	if st.Sent != uint64(len(got.main)) {
		t.Errorf("main tier sent %d, received %d", st.Sent, len(got.main))
	}
	saw := false
	for _, s := range got.statuses {
		if s.Lo == nil {
			t.Fatalf("a report without the small tier: %+v", s)
		}
		if s.Lo.Codec != wire.CodecJPEG {
			t.Errorf("small tier's codec %q", s.Lo.Codec)
		}
		saw = saw || s.Lo.FramesSent > 0 && s.Lo.Width == 240 && s.Lo.Height == 180 && s.Lo.BytesSent > 0
	}
	if !saw {
		t.Error("no report of the small tier sending 240x180")
	}
	if lo.Encode <= 0 {
		t.Error("no small-tier encode time measured")
	}
}

// An H.264 RTSP camera with a sub-stream: both are passed through, the
// main one on cams.<id>.video.*, the sub-stream on cams.<id>.lo.video.*,
// each decodable at its own size.
func TestLoTierRTSPSubstream(t *testing.T) {
	mainTS, _ := rtspClip(t, "640:360", 15, 6, "")
	loTS, _ := rtspClip(t, "320:180", 15, 6, "")
	mainSrv := testenv.StartRTSPServer(t, h264Launch(mainTS))
	loSrv := testenv.StartRTSPServer(t, h264Launch(loTS))
	_, url := startNATS(t, nil)
	ch := subscribeVideo(t, url, "ipcam")
	r := start(t, Config{ID: "ipcam", Source: mainSrv.URL(), Codec: CodecH264, LoSource: loSrv.URL(),
		OpenTimeout: 10 * time.Second, ReportInterval: 200 * time.Millisecond}, dial(t, url))
	var got tiered
	collectTiers(t, ch, &got, 40*time.Second, func(g *tiered) bool { return len(g.lo) >= 30 && len(g.main) >= 30 })
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	checkVideo(t, got.main, 640, 360)
	checkVideo(t, loAsMain(t, got.lo), 320, 180)
	saw := false
	for _, s := range got.statuses {
		saw = saw || s.Lo != nil && s.Lo.Codec == wire.CodecH264 && s.Lo.Width == 320 && s.Lo.Height == 180
	}
	if !saw {
		t.Error("no report of a 320x180 H.264 small tier")
	}
}

// loAsMain returns a small tier's access units under the main tier's
// subjects, for checkVideo, after checking each subject's kind.
func loAsMain(t testing.TB, lo []*nats.Msg) []*nats.Msg {
	t.Helper()
	out := make([]*nats.Msg, len(lo))
	for i, m := range lo {
		id, video, key, err := wire.ParseLoSubject(m.Subject)
		if err != nil || !video {
			t.Fatalf("small tier on %s", m.Subject)
		}
		c := *m
		c.Subject = wire.VideoSubject(id, key)
		out[i] = &c
	}
	return out
}

// An H.264 small tier encoded from the captured frames, beside a JPEG and
// an H.264 main tier: on cams.<id>.lo.video.key|delta, decodable by
// libavcodec at the small size, a keyframe with its SPS and PPS first and
// about every second, its own Frame-Seq whose gaps are its drops, and the
// status report says so. Every libavcodec object is freed.
func TestLoTierH264Encoded(t *testing.T) {
	_, url := startNATS(t, nil)
	nc := dial(t, url)
	for _, main := range []string{CodecJPEG, CodecH264} {
		t.Run(main, func(t *testing.T) {
			id := "lo264-" + main
			ch := subscribeVideo(t, url, id)
			r := start(t, Config{ID: id, Source: "testpattern", Codec: main, Encoder: avcodec.CodecX264, FPS: 20,
				Width: 640, Height: 480, LoCodec: CodecH264, LoWidth: 320, LoHeight: 180, LoFPS: 10,
				ReportInterval: 100 * time.Millisecond}, nc)
			var got tiered
			collectTiers(t, ch, &got, 30*time.Second, func(g *tiered) bool { return len(g.lo) >= 25 && len(g.main) >= 30 })
			if err := r.stop(t); err != nil {
				t.Fatal(err)
			}
			collectTiers(t, ch, &got, 10*time.Second, func(g *tiered) bool {
				n := len(g.statuses)
				return n > 0 && g.statuses[n-1].State == wire.StateStopped
			})
			vs, gaps := checkVideo(t, loAsMain(t, got.lo), 240, 180) // 4:3 fitted into 320x180
			keys := 0
			for i, v := range vs {
				if !v.Key {
					continue
				}
				keys++
				if _, _, err := h264.Params(got.lo[i].Data); err != nil {
					t.Errorf("small-tier keyframe %d: %v", v.Seq, err)
				}
			}
			// --lo-fps 10, a keyframe a second
			if keys < 2 || keys > len(vs)/5 {
				t.Errorf("%d keyframes in %d small-tier access units: want one a second", keys, len(vs))
			}
			lo := r.a.LoStats()
			last := vs[len(vs)-1].Seq
			if missing := lo.Frames - uint64(len(vs)); missing != lo.Dropped {
				t.Errorf("small tier: %d Frame-Seqs given, %d received, but %d dropped (%d gaps, last %d)", lo.Frames, len(vs), lo.Dropped, gaps, last)
			}
			if lo.Sent != uint64(len(vs)) || lo.Encode <= 0 {
				t.Errorf("small tier: stats %+v, %d received", lo, len(vs))
			}
			saw := false
			for _, s := range got.statuses {
				saw = saw || s.Lo != nil && s.Lo.Codec == wire.CodecH264 && s.Lo.Width == 240 && s.Lo.Height == 180 && s.Lo.FramesSent > 0
			}
			if !saw {
				t.Error("no report of a 240x180 H.264 small tier")
			}
			if main == CodecH264 {
				checkVideo(t, got.main, 640, 480)
			}
			if avcodec.Live() != 0 {
				t.Errorf("libavcodec objects left: %s", avcodec.LiveString())
			}
		})
	}
}

// A stalled link: the H.264 small tier's queue drops whole GOPs, never a
// delta whose keyframe was dropped, counts them apart from the main
// tier's, and resumes at a keyframe it asks its encoder for.
func TestLoTierH264StalledLink(t *testing.T) {
	_, url := startNATS(t, nil)
	p := startProxy(t, strings.TrimPrefix(url, "nats://"))
	ch := subscribeVideo(t, url, "lostall")
	r := start(t, Config{ID: "lostall", FPS: 30, Width: 320, Height: 240, Encoder: avcodec.CodecX264,
		LoCodec: CodecH264, LoWidth: 160, LoHeight: 120,
		Source: "videotestsrc is-live=true pattern=snow ! video/x-raw,width=320,height=240,framerate=30/1 ! videoconvert ! appsink"},
		dialSmall(t, p.url()))
	var got tiered
	collectTiers(t, ch, &got, 30*time.Second, func(g *tiered) bool { return len(g.lo) >= 10 })
	for round := range 2 {
		p.pause(true)
		testenv.Eventually(t, 30*time.Second, "small-tier GOPs dropped", func() bool { return r.a.LoStats().GOPsDropped > uint64(round) })
		mark := r.a.LoStats().Frames
		p.pause(false)
		collectTiers(t, ch, &got, 30*time.Second, func(g *tiered) bool {
			n := len(g.lo)
			if n == 0 {
				return false
			}
			v, err := wire.ParseVideo(g.lo[n-1].Header)
			return err == nil && v.Seq > mark+5
		})
	}
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	collectTiers(t, ch, &got, 10*time.Second, func(g *tiered) bool {
		n := len(g.statuses)
		return n > 0 && g.statuses[n-1].State == wire.StateStopped
	})
	vs, gaps := checkVideo(t, loAsMain(t, got.lo), 160, 120)
	lo := r.a.LoStats()
	if gaps < 2 || lo.GOPsDropped < 2 || lo.Dropped == 0 {
		t.Errorf("%d gaps; small-tier stats %+v", gaps, lo)
	}
	if lo.Frames != lo.Sent+lo.Dropped || lo.Sent != uint64(len(vs)) {
		t.Errorf("small-tier stats %+v: frames != sent + dropped, or %d received", lo, len(vs))
	}
	if avcodec.Live() != 0 {
		t.Errorf("libavcodec objects left: %s", avcodec.LiveString())
	}
	t.Logf("%d small-tier access units received, %d gaps; stats %+v", len(vs), gaps, lo)
}

func TestLoTierConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string // in the error; empty: valid
	}{
		{"default size", Config{ID: "a", Source: "testpattern", LoCodec: CodecJPEG}, ""},
		{"too big", Config{ID: "a", Source: "testpattern", LoWidth: 640, LoHeight: 360}, "at most half"},
		{"fps above main", Config{ID: "a", Source: "testpattern", FPS: 10, LoFPS: 20}, "lo-fps"},
		{"h264 encoded", Config{ID: "a", Source: "testpattern", LoCodec: CodecH264}, ""},
		{"bad codec", Config{ID: "a", Source: "testpattern", LoCodec: "vp8"}, "lo-codec"},
		{"source not rtsp", Config{ID: "a", Source: "testpattern", LoSource: "http://x/y"}, "rtsp://"},
		{"passthrough without sub-stream", Config{ID: "a", Source: "rtsp://cam/x", Codec: CodecH264, LoWidth: 320, LoHeight: 180}, "lo-source"},
		{"sub-stream", Config{ID: "a", Source: "rtsp://cam/x", Codec: CodecH264, LoSource: "rtsp://u:secret@cam/sub"}, ""},
		{"sub-stream with size", Config{ID: "a", Source: "rtsp://cam/x", Codec: CodecH264, LoSource: "rtsp://cam/sub", LoWidth: 320, LoHeight: 180}, "lo-size"},
		{"bad quality", Config{ID: "a", Source: "testpattern", LoWidth: 160, LoHeight: 120, LoQuality: 101}, "lo-quality"},
	} {
		err := tc.cfg.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrConfig)):
			t.Errorf("%s: %v, want an error about %q", tc.name, err, tc.want)
		case err != nil && strings.Contains(err.Error(), "secret"):
			t.Errorf("%s: the error shows a password: %v", tc.name, err)
		}
	}
}
