package hub_test

import (
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"camhub/hub"
	"camhub/internal/testenv"
	"camhub/internal/wire"
)

// centralFrames reads every frame of camera id in the central buffer, in
// stream order, and returns their Frame-Seq.
func centralFrames(t *testing.T, js jetstream.JetStream, id string) []uint64 {
	t.Helper()
	seqs, err := readFrames(t, js, id)
	if err != nil {
		t.Fatal(err)
	}
	return seqs
}

// readFrames is centralFrames, returning its error.
func readFrames(t *testing.T, js jetstream.JetStream, id string) ([]uint64, error) {
	ctx := testenv.Context(t, 30*time.Second)
	c, err := js.OrderedConsumer(ctx, wire.FramesStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{wire.FramesSubject(id)}, HeadersOnly: true,
	})
	if err != nil {
		return nil, err
	}
	var seqs []uint64
	for {
		batch, err := c.FetchNoWait(256)
		if err != nil {
			return nil, err
		}
		n := 0
		for m := range batch.Messages() {
			n++
			f, err := wire.ParseFrame(m.Headers())
			if err != nil {
				return nil, err
			}
			seqs = append(seqs, f.Seq)
		}
		if n == 0 {
			if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
				return nil, err
			}
			return seqs, nil
		}
	}
}

// checkSeqs fails unless seqs is want's Frame-Seqs, in order.
func checkSeqs(t *testing.T, seqs []uint64, want []uint64) {
	t.Helper()
	if fmt.Sprint(seqs) != fmt.Sprint(want) {
		t.Fatalf("central buffer Frame-Seq:\n got %v\nwant %v", seqs, want)
	}
}

func seqRange(from, to uint64) []uint64 {
	var out []uint64
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

// logTo is a text logger into b, which tests read while the hub writes.
func logTo(b *testenv.Buffer) *slog.Logger { return slog.New(slog.NewTextHandler(b, nil)) }

// A central hub that knows its site sources the site's buffer: every frame
// of the site's camera enters the central buffer once, in order, while the
// link is up, and, after an outage, the outage's frames come first; a live
// subscriber at the central hub gets the site's frames at once, as before.
// When the outage outlasts the site's buffer, the central buffer gets what
// the site still held and the site hub says how many frames were lost.
func TestSiteBackfill(t *testing.T) {
	ports := testenv.FreePorts(t, 1)
	ccfg := config()
	ccfg.Storage, ccfg.StoreDir = hub.StorageFile, t.TempDir()
	ccfg.LeafListen = fmt.Sprintf("127.0.0.1:%d", ports[0])
	ccfg.Sites = "garden"
	var clog, slog_ testenv.Buffer
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("central hub's log:\n%s\nsite hub's log:\n%s", clog.String(), slog_.String())
		}
	})
	central := start(t, ccfg, logTo(&clog))

	scfg := config()
	scfg.ReplayBytes = 1 << 20 // small, for the outage that outlasts it
	scfg.Leaf = "nats://" + ccfg.LeafListen
	scfg.Domain = "garden"
	site := start(t, scfg, logTo(&slog_))
	testenv.Eventually(t, 10*time.Second, "the leaf link", func() bool { return central.NumLeafNodes() == 1 })

	cjs, _ := jetstream.New(testenv.Conn(t, central.ClientURL()))
	sjs, _ := jetstream.New(testenv.Conn(t, site.ClientURL()))
	live := testenv.Conn(t, central.ClientURL())
	got := make(chan uint64, 1024)
	if _, err := live.Subscribe(wire.FramesSubject("gate"), func(m *nats.Msg) {
		if f, err := wire.ParseFrame(m.Header); err == nil {
			got <- f.Seq
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := live.Flush(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "the live interest at the site", func() bool {
		publishFrames(t, sjs, "probe", 1, 1)
		return len(centralFrames(t, cjs, "probe")) > 0
	})

	// link up: once each, in order
	publishFrames(t, sjs, "gate", 1, 100)
	testenv.Eventually(t, 10*time.Second, "100 frames in the central buffer", func() bool {
		return len(centralFrames(t, cjs, "gate")) >= 100
	})
	checkSeqs(t, centralFrames(t, cjs, "gate"), seqRange(1, 100))
	testenv.Eventually(t, 10*time.Second, "100 frames live", func() bool { return len(got) == 100 })

	// an outage: the central hub goes; the site keeps its frames
	central.Close()
	testenv.Eventually(t, 10*time.Second, "the link to drop", func() bool { return site.NumLeafNodes() == 0 })
	publishFrames(t, sjs, "gate", 101, 50)
	central = start(t, ccfg, logTo(&clog))
	cjs, _ = jetstream.New(testenv.Conn(t, central.ClientURL()))
	testenv.Eventually(t, 20*time.Second, "the outage's frames in the central buffer", func() bool {
		return len(centralFrames(t, cjs, "gate")) >= 150
	})
	publishFrames(t, sjs, "gate", 151, 10)
	testenv.Eventually(t, 10*time.Second, "live frames after the outage", func() bool {
		return len(centralFrames(t, cjs, "gate")) >= 160
	})
	checkSeqs(t, centralFrames(t, cjs, "gate"), seqRange(1, 160))

	// an outage longer than the site's buffer (1 MiB): the site discards
	// frames the central hub never had
	central.Close()
	testenv.Eventually(t, 10*time.Second, "the link to drop", func() bool { return site.NumLeafNodes() == 0 })
	big := make([]byte, 100<<10)
	for i := 161; i <= 180; i++ {
		m := &nats.Msg{Subject: wire.FramesSubject("gate"), Data: big,
			Header: wire.Frame{Seq: uint64(i), Time: time.Now(), Width: 8, Height: 8}.Header()}
		if _, err := sjs.PublishMsg(testenv.Context(t, 5*time.Second), m); err != nil {
			t.Fatal(err)
		}
	}
	held := centralFrames(t, sjs, "gate") // the site's buffer
	if len(held) == 0 || held[0] <= 161 || held[len(held)-1] != 180 {
		t.Fatalf("the site's buffer holds Frame-Seq %v: want the newest of 161-180 only", held)
	}
	lost := 20 - len(held)
	testenv.Eventually(t, 10*time.Second, "the site to say frames are being lost", func() bool {
		return strings.Contains(slog_.String(), "frames are being lost")
	})
	central = start(t, ccfg, logTo(&clog))
	cjs, _ = jetstream.New(testenv.Conn(t, central.ClientURL()))
	resumed := regexp.MustCompile(fmt.Sprintf(`uplink resumed.* lost_at_least=%d `, lost))
	testenv.Eventually(t, 20*time.Second, "the site to say what was lost", func() bool { return resumed.MatchString(slog_.String()) })
	testenv.Eventually(t, 20*time.Second, "what the site still held", func() bool {
		return len(centralFrames(t, cjs, "gate")) >= 160+len(held)
	})
	checkSeqs(t, centralFrames(t, cjs, "gate"), append(seqRange(1, 160), held...))
	centralSays := regexp.MustCompile(fmt.Sprintf(`msg="site frames lost.* site=garden lost=%d `, lost))
	testenv.Eventually(t, 10*time.Second, "the central hub to say what was lost", func() bool { return centralSays.MatchString(clog.String()) })
	t.Logf("the site lost %d frames of the outage, the central buffer has the %d it held", lost, len(held))
}

func TestSitesConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*hub.Config)
		want string // "" : valid
	}{
		{"sites", func(c *hub.Config) { c.Sites = "garden, shed"; c.LeafListen = "127.0.0.1:0" }, ""},
		{"sites on an existing server", func(c *hub.Config) { c.Sites = "garden"; c.NATS = "nats://x:4222" }, ""},
		{"sites without leaf listen", func(c *hub.Config) { c.Sites = "garden" }, "needs --leaf-listen"},
		{"bad site", func(c *hub.Config) { c.Sites = "gar.den"; c.LeafListen = ":7422" }, "only A-Z"},
		{"bad site with nats", func(c *hub.Config) { c.Sites = "g*"; c.NATS = "nats://x:4222" }, "only A-Z"},
		{"site twice", func(c *hub.Config) { c.Sites = "a,b,a"; c.LeafListen = ":7422" }, "twice"},
		{"own domain", func(c *hub.Config) { c.Sites = "a"; c.Domain = "a"; c.LeafListen = ":7422" }, "own domain"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := config()
			tc.mod(&c)
			err := c.Validate()
			if tc.want == "" && err != nil {
				t.Fatalf("Validate() = %v", err)
			}
			if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestParseRate(t *testing.T) {
	for in, want := range map[string]uint64{
		"0": 0, "20Mbit": 20e6, "20mbit/s": 20e6, "20Mbps": 20e6, "500kbit": 500e3, "1.5M": 1.5e6, "1Gbit": 1e9, "64000": 64000, " 8 Mbit ": 8e6,
	} {
		if got, err := hub.ParseRate(in); err != nil || got != want {
			t.Errorf("ParseRate(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "fast", "-1Mbit", "NaN", "Inf", "1e400", "2000Gbit", "20MiB", "1 2"} {
		if got, err := hub.ParseRate(in); !errors.Is(err, hub.ErrRate) {
			t.Errorf("ParseRate(%q) = %d, %v; want an error", in, got, err)
		}
	}
}

func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"0", "20Mbit", "500kbit/s", "1.5M", "1e3", "-1", "NaN", "0x10", "9999999999999999999", "Mbit", "1_000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := hub.ParseRate(s)
		if err != nil {
			if !errors.Is(err, hub.ErrRate) {
				t.Fatalf("ParseRate(%q): %v does not wrap ErrRate", s, err)
			}
			return
		}
		if v > 1e12 {
			t.Fatalf("ParseRate(%q) = %d: above the limit", s, v)
		}
	})
}

// gateCount is the number of frames of camera gate in the CAMS of js, or
// -1 while it does not answer (a leader being elected).
func gateCount(t *testing.T, js jetstream.JetStream) int {
	ctx := testenv.Context(t, 5*time.Second)
	st, err := js.Stream(ctx, wire.FramesStream)
	if err != nil {
		return -1
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(wire.FramesSubject("gate")))
	if err != nil {
		return -1
	}
	return int(info.State.Subjects[wire.FramesSubject("gate")])
}

// A three-node central cluster keeps CAMS at R3 and sources a site; the
// node leading CAMS stops while the site's backlog is being backfilled: a
// new leader resumes the source from the last site sequence the cluster
// stored, and the central buffer ends with every frame once, in order.
func TestSiteBackfillClusterLeaderLost(t *testing.T) {
	hubs := startCluster(t, 3, 3, func(c *hub.Config) {
		c.LeafListen = "127.0.0.1:0"
		c.Sites = "garden"
	})
	var leafs []string
	for _, h := range hubs {
		leafs = append(leafs, "nats://"+h.LeafAddr())
	}
	scfg := config()
	scfg.Leaf = strings.Join(leafs, ",")
	scfg.Domain = "garden"
	scfg.Replay = 10 * time.Minute
	// a slow feed whose burst (the largest message) is small: the
	// backlog takes seconds to send
	scfg.UplinkRate = 8_000_000
	scfg.MaxPayload = 64 << 10
	site := start(t, scfg, quiet())
	testenv.Eventually(t, 10*time.Second, "the leaf link", func() bool { return site.NumLeafNodes() == 1 })
	sjs, _ := jetstream.New(testenv.Conn(t, site.ClientURL()))
	const n = 1000
	frame := make([]byte, 10<<10)
	for i := 1; i <= n; i++ {
		m := &nats.Msg{Subject: wire.FramesSubject("gate"), Data: frame,
			Header: wire.Frame{Seq: uint64(i), Time: time.Now(), Width: 8, Height: 8}.Header()}
		if _, err := sjs.PublishMsg(testenv.Context(t, 5*time.Second), m); err != nil {
			t.Fatal(err)
		}
	}
	js := make([]jetstream.JetStream, len(hubs))
	for i, h := range hubs {
		js[i], _ = jetstream.New(testenv.Conn(t, h.ClientURL()))
	}
	testenv.Eventually(t, 30*time.Second, "the backfill under way", func() bool { return gateCount(t, js[0]) >= 100 })
	info := framesInfo(t, js[0])
	if info.Cluster == nil || info.Cluster.Leader == "" {
		t.Fatalf("no CAMS leader: %+v", info.Cluster)
	}
	had, survivor := gateCount(t, js[0]), -1
	for i, h := range hubs {
		if fmt.Sprintf("hub%d", i+1) == info.Cluster.Leader {
			h.Close()
		} else {
			survivor = i
		}
	}
	if had >= n {
		t.Fatalf("the backlog was in before the leader stopped (%d frames): nothing tested", had)
	}
	t.Logf("stopped the CAMS leader %s with %d of %d frames backfilled", info.Cluster.Leader, had, n)
	took := testenv.Eventually(t, 90*time.Second, "the whole backlog in the central buffer", func() bool {
		return gateCount(t, js[survivor]) >= n
	})
	t.Logf("the rest came in %v", took.Round(100*time.Millisecond))
	// JetStream's API may still answer "no responders" for a moment while
	// the cluster settles on its new leaders: what counts is what it stored
	var seqs []uint64
	testenv.Eventually(t, 30*time.Second, "the central buffer read after the leader change", func() bool {
		var err error
		if seqs, err = readFrames(t, js[survivor], "gate"); err != nil {
			t.Logf("reading the central buffer: %v; again", err)
		}
		return err == nil
	})
	checkSeqs(t, seqs, seqRange(1, n))
}
