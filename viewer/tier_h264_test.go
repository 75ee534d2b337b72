package viewer

import (
	"encoding/json"
	"fmt"
	"image"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"gocv.io/x/gocv"

	"camhub/hub/hubtest"
	"camhub/internal/h264"
	"camhub/internal/testenv"
	"camhub/internal/testenv/cvtest"
	"camhub/internal/wire"
)

// tierStream is one tier of a test camera: an H.264 clip played in a
// loop, or one JPEG.
type tierStream struct {
	codec string
	w, h  int
	aus   [][]byte // H.264
	avc   string   // its RFC 6381 codec
	jpeg  []byte   // JPEG
}

func h264Tier(t *testing.T, w, h int) tierStream {
	aus := testenv.H264Clip(t, w, h, 30, 10) // keyframes 0, 10, 20
	sps, _, err := h264.Params(aus[0])
	if err != nil {
		t.Fatal(err)
	}
	avc, err := h264.CodecString(sps)
	if err != nil {
		t.Fatal(err)
	}
	return tierStream{codec: wire.CodecH264, w: w, h: h, aus: aus, avc: avc}
}

func jpegTier(t *testing.T, c gocv.Scalar, w, h int) tierStream {
	return tierStream{codec: wire.CodecJPEG, w: w, h: h, jpeg: cvtest.JPEG(t, c, w, h)}
}

// msg is the n-th message (from 1) of the tier of camera id, captured at.
func (s tierStream) msg(id string, lo bool, n uint64, at time.Time) *nats.Msg {
	if s.codec == wire.CodecJPEG {
		m := testenv.FrameMsg(id, n, at, s.jpeg, s.w, s.h)
		if lo {
			m.Subject = wire.LoFramesSubject(id)
		}
		return m
	}
	au := s.aus[(n-1)%uint64(len(s.aus))]
	key := h264.IsKeyframe(au)
	pts := at.UnixNano() * wire.VideoClockRate / int64(time.Second)
	v := wire.Video{Frame: wire.Frame{Seq: n, Time: at, Width: s.w, Height: s.h}, Codec: s.avc, Key: key, PTS: pts, DTS: pts}
	subject := wire.VideoSubject(id, key)
	if lo {
		subject = wire.LoVideoSubject(id, key)
	}
	return &nats.Msg{Subject: subject, Data: au, Header: v.Header()}
}

// tierCam is a test camera with two tiers.
type tierCam struct {
	id       string
	main, lo tierStream
}

// publishTiers publishes both tiers of every camera and its status report
// every 50 ms until the test ends.
func publishTiers(t *testing.T, url string, cams []tierCam) {
	t.Helper()
	pub := testenv.Conn(t, url)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(func() { close(stop); wg.Wait() })
	wg.Go(func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for n := uint64(1); ; n++ {
			now := time.Now()
			for _, c := range cams {
				st, _ := json.Marshal(wire.Status{ID: c.id, Host: "h", Source: "testpattern", State: wire.StateStreaming,
					Codec: c.main.codec, Width: c.main.w, Height: c.main.h, Started: now, Time: now, IntervalMS: 2000,
					Lo: &wire.Tier{Codec: c.lo.codec, Width: c.lo.w, Height: c.lo.h}})
				if pub.PublishMsg(c.main.msg(c.id, false, n, now)) != nil || pub.PublishMsg(c.lo.msg(c.id, true, n, now)) != nil ||
					pub.Publish(wire.StatusSubject(c.id), st) != nil {
					return
				}
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	})
}

// mediaSubs asks the NATS server's monitoring endpoint which frame and
// video subjects (of either tier) the connection named name subscribes to.
func mediaSubs(t *testing.T, monitor, name string) []string {
	t.Helper()
	resp, err := http.Get("http://" + monitor + "/connz?subs=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var c struct {
		Connections []struct {
			Name string   `json:"name"`
			Subs []string `json:"subscriptions_list"`
		} `json:"connections"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		t.Fatal(err)
	}
	var subs []string
	for _, conn := range c.Connections {
		if conn.Name != name {
			continue
		}
		for _, s := range conn.Subs {
			if !strings.HasSuffix(s, "."+wire.KindStatus) {
				subs = append(subs, s)
			}
		}
	}
	slices.Sort(subs)
	return subs
}

// tierSubjects are the subjects a feed subscribes to for camera id's small
// tier (lo) or main one.
func tierSubjects(id string, lo bool) []string {
	if lo {
		return []string{wire.LoFramesSubject(id), wire.LoVideoFilter(id)}
	}
	return []string{wire.FramesSubject(id), wire.VideoFilter(id)}
}

// A grid of 8 cameras with an H.264 tier, main or small or both, reads
// only their small tiers; shown alone, each kind of camera switches to its
// main tier without its tile going blank, its small tier is then
// unsubscribed and its small tier's decoder freed, and back. Deltas before
// a tier's first keyframe are skipped, never counted bad.
func TestGridSwitchesH264Tiers(t *testing.T) {
	noDecoderLeaks(t)
	cfg := hubtest.Config()
	cfg.Monitor = "127.0.0.1:0"
	h := hubtest.Start(t, &cfg)
	main264, lo264 := h264Tier(t, 640, 480), h264Tier(t, 160, 120)
	var cams []tierCam
	for i := range 6 {
		cams = append(cams, tierCam{fmt.Sprintf("cam%d", i), main264, lo264})
	}
	cams = append(cams, tierCam{"jpegmain", jpegTier(t, cvtest.Red, 640, 480), lo264},
		tierCam{"jpeglo", main264, jpegTier(t, cvtest.Blue, 160, 120)})
	var ids, want []string
	for _, c := range cams {
		ids = append(ids, c.id)
		want = append(want, tierSubjects(c.id, true)...)
	}
	slices.Sort(want)
	publishTiers(t, h.ClientURL(), cams)

	feed, err := NewFeed(ids)
	if err != nil {
		t.Fatal(err)
	}
	nc := testenv.Conn(t, h.ClientURL(), nats.Name("h264-tier-viewer"))
	if err := feed.Subscribe(nc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(feed.Close)
	g := NewGrid(feed, image.Pt(640, 480), testenv.Quiet()) // 8 tiles of at most 320x240: the small tier
	t.Cleanup(g.Close)

	monitor := h.MonitorAddr().String()
	testenv.Eventually(t, 30*time.Second, "every tile showing its small tier and only small tiers subscribed", func() bool {
		g.Update(time.Now())
		for _, tl := range g.Tiles(time.Now()) {
			if tl.Tier != TierLo || tl.Reads != TierLo || tl.Frame.Width != 160 {
				return false
			}
		}
		return slices.Equal(mediaSubs(t, monitor, "h264-tier-viewer"), want)
	})
	for _, id := range ids {
		if tl := g.byID[id]; tl.vdec != nil || (id != "jpeglo") != (tl.loDec != nil) {
			t.Errorf("%s: main decoder %v, small tier's %v", id, tl.vdec != nil, tl.loDec != nil)
		}
	}

	for _, id := range []string{"cam3", "jpegmain", "jpeglo"} {
		if !g.SetSolo(id) {
			t.Fatalf("SetSolo(%s)", id)
		}
		switched := func(tier string, width int) {
			t.Helper()
			testenv.Eventually(t, 30*time.Second, id+" showing its "+tier+" tier", func() bool {
				now := time.Now()
				g.Update(now)
				tl := tileOf(t, g, id, now)
				if tl.Picture.Empty() || !tl.Live {
					t.Fatalf("%s's tile went blank while switching to %s: %+v", id, tier, tl)
				}
				return tl.Tier == tier && tl.Frame.Width == width
			})
		}
		switched(TierMain, 640)
		testenv.Eventually(t, 10*time.Second, id+"'s small tier unsubscribed", func() bool {
			g.Update(time.Now())
			subs := mediaSubs(t, monitor, "h264-tier-viewer")
			return slices.Contains(subs, wire.FramesSubject(id)) && !slices.Contains(subs, wire.LoFramesSubject(id)) &&
				!slices.Contains(subs, wire.LoVideoFilter(id))
		})
		if tl := g.byID[id]; tl.loDec != nil || (id != "jpegmain") != (tl.vdec != nil) {
			t.Errorf("%s alone: main decoder %v, small tier's %v", id, tl.vdec != nil, tl.loDec != nil)
		}
		g.SetSolo("")
		switched(TierLo, 160)
	}
	testenv.Eventually(t, 10*time.Second, "only small tiers subscribed again", func() bool {
		g.Update(time.Now())
		return slices.Equal(mediaSubs(t, monitor, "h264-tier-viewer"), want)
	})
	for _, s := range g.Stats() {
		if s.Bad != 0 || s.Decoded == 0 {
			t.Errorf("%s: %+v", s.ID, s)
		}
	}
}
