package viewer

import (
	"fmt"
	"image"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"camhub/hub/hubtest"
	"camhub/internal/testenv"
	"camhub/internal/testenv/cvtest"
	"camhub/internal/wire"
)

// tieredCams publishes, for each camera, a 1280x720 red main frame, a
// 320x180 blue small-tier frame and a status report saying so, every 50
// ms, until the test ends.
func tieredCams(t *testing.T, url string, ids []string) {
	t.Helper()
	main, lo := jpegTier(t, cvtest.Red, 1280, 720), jpegTier(t, cvtest.Blue, 320, 180)
	cams := make([]tierCam, len(ids))
	for i, id := range ids {
		cams[i] = tierCam{id, main, lo}
	}
	publishTiers(t, url, cams)
}

// frameSubs asks the NATS server's monitoring endpoint which frame
// subjects (main or small tier) the connection named name subscribes to.
func frameSubs(t *testing.T, monitor, name string) []string {
	t.Helper()
	return slices.DeleteFunc(mediaSubs(t, monitor, name), func(s string) bool { return !strings.HasSuffix(s, "."+wire.KindFrames) })
}

// A grid of 8 cameras reads only their small tiers (the NATS server says
// which subjects the viewer subscribes to); shown alone, a camera switches
// to its main tier without its tile ever going blank, and back.
func TestGridReadsSmallTier(t *testing.T) {
	cfg := hubtest.Config()
	cfg.Monitor = "127.0.0.1:0"
	h := hubtest.Start(t, &cfg)
	var ids []string
	for i := range 8 {
		ids = append(ids, fmt.Sprintf("cam%d", i))
	}
	tieredCams(t, h.ClientURL(), ids)

	feed, err := NewFeed(ids)
	if err != nil {
		t.Fatal(err)
	}
	nc := testenv.Conn(t, h.ClientURL(), nats.Name("tier-viewer"))
	if err := feed.Subscribe(nc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(feed.Close)
	g := NewGrid(feed, image.Pt(1280, 720), testenv.Quiet())
	t.Cleanup(g.Close)

	var want []string
	for _, id := range ids {
		want = append(want, wire.LoFramesSubject(id))
	}
	slices.Sort(want)
	monitor := h.MonitorAddr().String()
	testenv.Eventually(t, 20*time.Second, "every tile showing its small tier and only small tiers subscribed", func() bool {
		g.Update(time.Now())
		for _, tl := range g.Tiles(time.Now()) {
			if tl.Tier != TierLo || tl.Reads != TierLo || tl.Frame.Width != 320 {
				return false
			}
		}
		return slices.Equal(frameSubs(t, monitor, "tier-viewer"), want)
	})

	// cam3 alone: 1280x720 is more than half its main tier's size.
	if !g.SetSolo("cam3") {
		t.Fatal("SetSolo(cam3)")
	}
	switched := func(tier string) {
		t.Helper()
		testenv.Eventually(t, 20*time.Second, "cam3 showing its "+tier+" tier", func() bool {
			now := time.Now()
			g.Update(now)
			tl := tileOf(t, g, "cam3", now)
			if tl.Picture.Empty() || !tl.Live {
				t.Fatalf("cam3's tile went blank while switching to %s: %+v", tier, tl)
			}
			return tl.Tier == tier
		})
	}
	switched(TierMain)
	if n := len(g.Tiles(time.Now())); n != 1 {
		t.Fatalf("%d tiles shown solo", n)
	}
	if tl := tileOf(t, g, "cam3", time.Now()); tl.Frame.Width != 1280 || tl.Reads != TierMain {
		t.Fatalf("solo tile %+v", tl)
	}
	testenv.Eventually(t, 10*time.Second, "cam3's small tier unsubscribed", func() bool {
		g.Update(time.Now())
		subs := frameSubs(t, monitor, "tier-viewer")
		return slices.Contains(subs, wire.FramesSubject("cam3")) && !slices.Contains(subs, wire.LoFramesSubject("cam3"))
	})

	// back to the grid, and a pin
	g.SetSolo("")
	switched(TierLo)
	if err := g.SetTier(TierMain); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, "every tile on the main tier when pinned", func() bool {
		now := time.Now()
		g.Update(now)
		for _, tl := range g.Tiles(now) {
			if tl.Picture.Empty() {
				t.Fatalf("%s went blank", tl.ID)
			}
			if tl.Tier != TierMain {
				return false
			}
		}
		return true
	})
	if err := g.SetTier("high"); err == nil {
		t.Error("SetTier(high) accepted")
	}
}

// Without a camera list, cameras are subscribed one by one as they report,
// and small tiles read only the small tiers: a camera shown small receives
// nothing of its main tier. A camera that joins later appears, small too.
func TestGridReadsSmallTierEveryCamera(t *testing.T) {
	cfg := hubtest.Config()
	cfg.Monitor = "127.0.0.1:0"
	h := hubtest.Start(t, &cfg)
	ids := []string{"a", "b", "c", "d", "e"}
	tieredCams(t, h.ClientURL(), ids)
	feed, err := NewFeed(nil)
	if err != nil {
		t.Fatal(err)
	}
	nc := testenv.Conn(t, h.ClientURL(), nats.Name("tier-viewer-all"))
	if err := feed.Subscribe(nc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(feed.Close)
	g := NewGrid(feed, image.Pt(1280, 720), testenv.Quiet())
	t.Cleanup(g.Close)
	small := func(ids []string) {
		t.Helper()
		var want []string
		for _, id := range ids {
			want = append(want, tierSubjects(id, true)...)
		}
		slices.Sort(want)
		testenv.Eventually(t, 20*time.Second, "every tile showing its small tier, only small tiers subscribed", func() bool {
			now := time.Now()
			g.Update(now)
			tiles := g.Tiles(now)
			if len(tiles) != len(ids) {
				return false
			}
			for _, tl := range tiles {
				if tl.Tier != TierLo || tl.Frame.Width != 320 {
					return false
				}
			}
			return slices.Equal(mediaSubs(t, h.MonitorAddr().String(), "tier-viewer-all"), want)
		})
	}
	small(ids)
	// a camera joining
	tieredCams(t, h.ClientURL(), []string{"f"})
	ids = append(ids, "f")
	small(ids)
	g.SetSolo("c")
	testenv.Eventually(t, 20*time.Second, "c alone on its main tier", func() bool {
		now := time.Now()
		g.Update(now)
		tl := tileOf(t, g, "c", now)
		if tl.Picture.Empty() {
			t.Fatal("c went blank")
		}
		return tl.Tier == TierMain && tl.Frame.Width == 1280 &&
			!slices.Contains(frameSubs(t, h.MonitorAddr().String(), "tier-viewer-all"), wire.LoFramesSubject("c"))
	})
}
