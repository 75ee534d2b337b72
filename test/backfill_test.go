package test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"camhub/internal/testenv"
	"camhub/internal/wire"
)

// siteCam is one of the site's cameras: its id and the subject filter of
// its frames in a buffer.
type siteCam struct {
	id, filter string
}

var siteCams = []siteCam{
	{"garden-gate", wire.FramesSubject("garden-gate")},                            // JPEG
	{"garden-shed", wire.SubjectPrefix + ".garden-shed." + wire.KindVideo + ".*"}, // H.264
}

// siteRig is a central hub on the host and, in a network namespace behind
// a veth pair (the site's WAN link), a site hub with its cameras: the
// central hub sources the site's buffer (--sites garden).
type siteRig struct {
	ns             *netns
	central, site  *proc
	centralURL     string
	centralJS      jetstream.JetStream
	live           map[string]*frameLog // at the central hub, per camera
	centralArgs    []string
	siteLeafListen string
}

// startSiteRig starts the rig; siteReplay is the site's --replay, siteArgs
// more of its flags, and shape, if set, the site's uplink's rate (a tc
// token bucket queueing up to 400 ms, as on a thin WAN link).
func startSiteRig(t *testing.T, siteReplay, shape string, siteArgs ...string) *siteRig {
	t.Helper()
	r := &siteRig{ns: newNetns(t), live: map[string]*frameLog{}}
	if shape != "" {
		ip(t, "netns", "exec", r.ns.name, "tc", "qdisc", "add", "dev", r.ns.nsIf, "root", "tbf", "rate", shape,
			"burst", "32kbit", "latency", "400ms")
	}
	ports := testenv.FreePorts(t, 2)
	r.siteLeafListen = fmt.Sprintf("%s:%d", r.ns.hostIP, ports[1])
	// explicit and open: no users, no TLS, on the test's own addresses
	r.centralArgs = []string{"--name", "central", "--listen", fmt.Sprintf("%s:%d", r.ns.hostIP, ports[0]), "--monitor", "",
		"--leaf-listen", r.siteLeafListen, "--sites", "garden", "--storage", "file", "--store-dir", t.TempDir(), "--replay", "10m"}
	r.central = start(t, nil, "hub", r.centralArgs...)
	r.centralURL = r.central.waitLog(`msg="NATS server ready" url=(nats://[0-9.:]+)`)
	r.central.waitLog(`msg="sourcing the sites' buffers`)
	r.site = r.ns.start(t, "hub", append([]string{"--name", "site", "--listen", "0.0.0.0:4222", "--monitor", "",
		"--leaf", "nats://" + r.siteLeafListen, "--domain", "garden", "--replay", siteReplay}, siteArgs...)...)
	r.site.waitLog(`msg="uplink ready`)
	r.site.waitLog(`msg="leaf link up"`)
	for _, c := range siteCams {
		args := []string{"--id", c.id, "--site", "garden", "--source", "testpattern", "--fps", "10", "--size", "320x240",
			"--nats", "nats://127.0.0.1:4222"}
		if strings.Contains(c.filter, wire.KindVideo) {
			args = append(args, "--codec", "h264")
		}
		r.ns.start(t, "agent", args...)
		r.live[c.id] = subscribeLive(t, r.centralURL, c)
	}
	js, err := jetstream.New(testenv.Conn(t, r.centralURL))
	if err != nil {
		t.Fatal(err)
	}
	r.centralJS = js
	testenv.Eventually(t, 60*time.Second, "frames of every site camera in the central buffer", func() bool {
		for _, c := range siteCams {
			if len(bufferSeqs(t, js, c.filter)) < 20 {
				return false
			}
		}
		return true
	})
	return r
}

// subscribeLive records the frames (JPEG or H.264) and status reports of
// camera c that a plain NATS subscriber at url receives.
func subscribeLive(t *testing.T, url string, c siteCam) *frameLog {
	t.Helper()
	l := &frameLog{}
	nc := testenv.Conn(t, url, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	for _, subj := range []string{c.filter, wire.StatusSubject(c.id)} {
		sub, err := nc.Subscribe(subj, func(m *nats.Msg) {
			now := time.Now()
			l.mu.Lock()
			defer l.mu.Unlock()
			if m.Subject == wire.StatusSubject(c.id) {
				if st, err := wire.ParseStatus(m.Subject, m.Data); err == nil {
					l.status = st
				}
				return
			}
			seq, err1 := strconv.ParseUint(m.Header.Get(wire.HeaderSeq), 10, 64)
			at, err2 := time.Parse(time.RFC3339Nano, m.Header.Get(wire.HeaderTime))
			if err1 != nil || err2 != nil {
				l.bad++
				return
			}
			l.frames = append(l.frames, arrival{seq: seq, captured: at, at: now})
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := sub.SetPendingLimits(-1, -1); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return l
}

// bufferSeqs reads the Frame-Seq of every message matching filter in the
// CAMS stream of js, in stream order.
func bufferSeqs(t *testing.T, js jetstream.JetStream, filter string) []uint64 {
	t.Helper()
	ctx := testenv.Context(t, 60*time.Second)
	c, err := js.OrderedConsumer(ctx, wire.FramesStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{filter}, HeadersOnly: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for {
		batch, err := c.FetchNoWait(1024)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			seq, err := strconv.ParseUint(m.Headers().Get(wire.HeaderSeq), 10, 64)
			if err != nil {
				t.Fatalf("a frame in the buffer with Frame-Seq %q", m.Headers().Get(wire.HeaderSeq))
			}
			seqs = append(seqs, seq)
		}
		if n == 0 {
			if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
				t.Fatal(err)
			}
			return seqs
		}
	}
}

// seqHoles returns the duplicates (or steps back) and the holes (first
// missing, count) in seqs.
func seqHoles(seqs []uint64) (dups int, holes [][2]uint64) {
	for i := 1; i < len(seqs); i++ {
		switch d := seqs[i]; {
		case d <= seqs[i-1]:
			dups++
		case d > seqs[i-1]+1:
			holes = append(holes, [2]uint64{seqs[i-1] + 1, d - seqs[i-1] - 1})
		}
	}
	return dups, holes
}

// checkWhole checks that the central buffer holds every frame camera c
// published, once and in order: its Frame-Seq has no repeat, and no hole
// but for frames the agent itself dropped (newest wins when a loaded
// machine keeps its publisher waiting), which it counts in its status
// reports. It returns the buffer's Frame-Seqs of c.
func (r *siteRig) checkWhole(t *testing.T, c siteCam) []uint64 {
	t.Helper()
	read := time.Now()
	seqs := bufferSeqs(t, r.centralJS, c.filter)
	dups, holes := seqHoles(seqs)
	var missing uint64
	for _, h := range holes {
		missing += h[1]
	}
	// a report made after the buffer was read counts every drop in it
	var st *wire.Status
	testenv.Eventually(t, 30*time.Second, c.id+"'s status report after reading the buffer", func() bool {
		st = r.live[c.id].lastStatus()
		return st != nil && st.Time.After(read)
	})
	t.Logf("%s in the central buffer: Frame-Seq %d to %d, %d frames, %d repeated, holes %v (%d frames); the agent dropped %d",
		c.id, seqs[0], seqs[len(seqs)-1], len(seqs), dups, holes, missing, st.FramesDropped)
	if dups != 0 || missing > st.FramesDropped {
		t.Errorf("%s: the central buffer has %d repeated frames and misses %d frames, of which the agent dropped at most %d",
			c.id, dups, missing, st.FramesDropped)
	}
	return seqs
}

// latencies returns the p50 and p99 capture-to-arrival latency of the
// frames captured in [from, to) at the central hub's live subscriber.
func latencies(l *frameLog, from, to time.Time) (p50, p99 time.Duration, n int) {
	frames, _ := l.snapshot()
	var ds []time.Duration
	for _, f := range frames {
		if !f.captured.Before(from) && f.captured.Before(to) {
			ds = append(ds, f.at.Sub(f.captured))
		}
	}
	if len(ds) == 0 {
		return 0, 0, 0
	}
	slices.Sort(ds)
	return ds[len(ds)/2], ds[min(len(ds)-1, len(ds)*99/100)], len(ds)
}

// cut takes the site's link down for d (the fault is a duration) and
// brings it back; it returns when the cut began and ended.
func (r *siteRig) cut(t *testing.T, d time.Duration) (cut, restored time.Time) {
	t.Helper()
	ip(t, "link", "set", r.ns.hostIf, "down")
	cut = time.Now()
	time.Sleep(d)
	ip(t, "link", "set", r.ns.hostIf, "up")
	return cut, time.Now()
}

// catchUp waits until the central buffer holds, for every camera, a frame
// captured after at, and logs how long that took and the live latency
// meanwhile.
func (r *siteRig) catchUp(t *testing.T, restored time.Time) {
	t.Helper()
	took := testenv.Eventually(t, 120*time.Second, "the central buffer to catch up with the site", func() bool {
		for _, c := range siteCams {
			st, err := r.centralJS.Stream(testenv.Context(t, 5*time.Second), wire.FramesStream)
			if err != nil {
				return false
			}
			m, err := st.GetLastMsgForSubject(testenv.Context(t, 5*time.Second), c.filter)
			if err != nil {
				return false
			}
			at, err := time.Parse(time.RFC3339Nano, m.Header.Get(wire.HeaderTime))
			if err != nil || !at.After(restored) {
				return false
			}
		}
		return true
	})
	caught := time.Now()
	t.Logf("the central buffer caught up with the site %v after the link came back", took.Round(100*time.Millisecond))
	// a few seconds of live frames after the catch-up, as a baseline
	testenv.Eventually(t, 30*time.Second, "5 s after the catch-up", func() bool { return time.Since(caught) > 5*time.Second })
	for _, c := range siteCams {
		first := time.Time{}
		frames, _ := r.live[c.id].snapshot()
		for _, f := range frames {
			if f.at.After(restored) {
				first = f.at
				break
			}
		}
		p50, p99, n := latencies(r.live[c.id], restored, caught)
		b50, b99, bn := latencies(r.live[c.id], caught, time.Now())
		t.Logf("%s live at the central hub: first frame %v after the link came back; during the catch-up p50 %v p99 %v (%d frames); after it p50 %v p99 %v (%d frames)",
			c.id, first.Sub(restored).Round(time.Millisecond), p50.Round(time.Millisecond), p99.Round(time.Millisecond), n,
			b50.Round(time.Millisecond), b99.Round(time.Millisecond), bn)
	}
}

// A site's WAN link is cut for 30 s, less than the site's buffer (2 min):
// once it is back, the central buffer holds every frame of each site
// camera, outage included, once and in order (Frame-Seq without a repeat,
// and without a hole but for frames the agents dropped and counted), and
// live frames reach the central hub at once.
func TestSiteBackfillLinkCut(t *testing.T) {
	r := startSiteRig(t, "2m", "")
	before := map[string]int{}
	for _, c := range siteCams {
		before[c.id] = len(bufferSeqs(t, r.centralJS, c.filter))
	}
	cut, restored := r.cut(t, 30*time.Second)
	t.Logf("link down for %v", restored.Sub(cut).Round(time.Millisecond))
	r.catchUp(t, restored)
	for _, c := range siteCams {
		t.Logf("%s: %d frames in the central buffer before the cut, %d after the catch-up", c.id, before[c.id], len(r.checkWhole(t, c)))
	}
	centralLog, _ := r.central.logText()
	for _, l := range strings.Split(centralLog, "\n") {
		if strings.Contains(l, "site backfill") {
			t.Log(l)
		}
	}
}

// The same on a thin uplink (8 Mbit/s from the site, tc tbf) carrying
// about 1.6 Mbit/s of live frames twice (to central viewers, and to the
// central buffer): the backfill of a 30 s outage, without and with
// --uplink-rate, and the live latency meanwhile (logged: the figures are in
// docs/SCALING.md).
func TestSiteBackfillThinUplink(t *testing.T) {
	// the consumer's rate limit lets a burst of the stream's largest
	// message through first: the site's --max-payload (8 MiB by default)
	for _, args := range [][]string{{"--uplink-rate", "0"}, {"--uplink-rate", "3Mbit"}, {"--uplink-rate", "3Mbit", "--max-payload", "512KiB"}} {
		t.Run(strings.Join(args, "="), func(t *testing.T) {
			r := startSiteRig(t, "2m", "8mbit", args...)
			_, restored := r.cut(t, 30*time.Second)
			r.catchUp(t, restored)
			for _, c := range siteCams {
				r.checkWhole(t, c)
			}
		})
	}
}

// The link is cut for longer than the site's buffer (--replay 10s): the
// central buffer gets what the site still held, and the site hub says how
// many frames were lost; the holes in the central buffer's Frame-Seq are
// exactly those frames (plus any the agents dropped, which they count).
func TestSiteBackfillLongOutage(t *testing.T) {
	r := startSiteRig(t, "10s", "")
	_, restored := r.cut(t, 25*time.Second)
	// the central hub names the site sequences it will never have
	centralLost := 0
	for _, m := range regexp.MustCompile(`msg="site frames lost.* site=garden lost=([0-9]+) `).FindAllStringSubmatch(
		r.central.waitLog(`(?s)msg="site frames lost.*`), -1) {
		n, _ := strconv.Atoi(m[1])
		centralLost += n
	}
	// the site's view: what its buffer had dropped when the central hub
	// asked to resume (frames can still expire until the first delivery)
	siteLost, _ := strconv.Atoi(r.site.waitLog(`msg="uplink resumed.* lost_at_least=([0-9]+) `))
	r.catchUp(t, restored)
	holesTotal := uint64(0)
	for _, c := range siteCams {
		seqs := bufferSeqs(t, r.centralJS, c.filter)
		dups, holes := seqHoles(seqs)
		t.Logf("%s in the central buffer: Frame-Seq %d to %d, %d frames, %d repeated, holes %v", c.id, seqs[0], seqs[len(seqs)-1], len(seqs), dups, holes)
		if dups != 0 {
			t.Errorf("%s: %d repeated frames in the central buffer", c.id, dups)
		}
		for _, h := range holes {
			holesTotal += h[1]
		}
	}
	var dropped uint64
	for _, c := range siteCams {
		if st := r.live[c.id].lastStatus(); st != nil {
			dropped += st.FramesDropped
		}
	}
	t.Logf("the central hub said %d frames of the site were lost (the site hub, at the resumption: %d); the central buffer's Frame-Seq holes total %d; the agents dropped %d",
		centralLost, siteLost, holesTotal, dropped)
	if holesTotal != uint64(centralLost)+dropped {
		t.Errorf("the central buffer misses %d frames: the central hub said %d lost and the agents dropped %d", holesTotal, centralLost, dropped)
	}
}

// BenchmarkSiteUplink measures what one camera costs a site's uplink and
// buffer: the real agent (test pattern) publishing to a real hub, for
// JPEG and H.264 at a few sizes and rates; the stored bytes over 12 s of
// the buffer give the bitrate, and from it the minutes of buffer a GiB
// holds. docs/SCALING.md has the figures.
//
//	go test -run '^$' -bench SiteUplink -benchtime 1x -v ./test/
func BenchmarkSiteUplink(b *testing.B) {
	url := fmt.Sprintf("nats://127.0.0.1:%d", testenv.FreePorts(b, 1)[0])
	hub := exec.Command(filepath.Join(bin, "hub"), "--insecure", "--listen", strings.TrimPrefix(url, "nats://"), "--monitor", "", "--replay", "12s")
	if err := hub.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { hub.Process.Kill(); hub.Wait() }()
	var js jetstream.JetStream
	testenv.Eventually(b, 30*time.Second, "the hub", func() bool {
		nc, err := nats.Connect(url)
		if err != nil {
			return false
		}
		b.Cleanup(nc.Close)
		js, err = jetstream.New(nc)
		return err == nil
	})
	for _, tc := range []struct {
		codec, size string
		fps         int
	}{
		{"jpeg", "640x480", 10}, {"h264", "640x480", 10}, {"h264", "640x480", 15},
		{"jpeg", "1280x720", 10}, {"h264", "1280x720", 10}, {"h264", "1280x720", 15},
	} {
		id := fmt.Sprintf("up-%s-%s-%d", tc.codec, strings.Replace(tc.size, "x", "-", 1), tc.fps)
		agent := exec.Command(filepath.Join(bin, "agent"), "--id", id, "--source", "testpattern", "--codec", tc.codec, "--size", tc.size,
			"--fps", strconv.Itoa(tc.fps), "--nats", url)
		if err := agent.Start(); err != nil {
			b.Fatal(err)
		}
		// the measurement window: the buffer's 12 s filled twice over
		time.Sleep(26 * time.Second)
		filter := wire.FramesSubject(id)
		if tc.codec == "h264" {
			filter = wire.SubjectPrefix + "." + id + "." + wire.KindVideo + ".*"
		}
		ctx := testenv.Context(b, 30*time.Second)
		c, err := js.OrderedConsumer(ctx, wire.FramesStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
		if err != nil {
			b.Fatal(err)
		}
		var bytes, n int
		var first, last time.Time
		for {
			batch, err := c.FetchNoWait(256)
			if err != nil {
				b.Fatal(err)
			}
			k := 0
			for m := range batch.Messages() {
				k++
				md, err := m.Metadata()
				if err != nil {
					b.Fatal(err)
				}
				if first.IsZero() {
					first = md.Timestamp
				}
				last = md.Timestamp
				bytes += len(m.Data())
				n++
			}
			if k == 0 {
				break
			}
		}
		agent.Process.Kill()
		agent.Wait()
		if n < 2 {
			b.Fatalf("%s: %d frames in the buffer", id, n)
		}
		secs := last.Sub(first).Seconds()
		bps := float64(bytes) / secs
		b.Logf("%s %s %d fps: %d frames over %.1f s, %.1f KiB a frame, %.2f Mbit/s, %.0f camera-minutes of buffer per GiB",
			tc.codec, tc.size, tc.fps, n, secs, float64(bytes)/float64(n)/1024, bps*8/1e6, float64(1<<30)/bps/60)
	}
	load, _ := os.ReadFile("/proc/loadavg")
	b.Logf("load average at the end: %s", strings.TrimSpace(string(load)))
}
