package test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"camhub/internal/testenv"
	"camhub/internal/wire"
)

// watcher is a live viewer's view of the frames: a NATS client on
// cams.*.frames (with every URL, failing over as the viewer does) that
// counts each camera's frames and notes the longest silence.
type watcher struct {
	nc *nats.Conn

	mu      sync.Mutex
	last    map[string]time.Time // when each camera's newest frame came
	count   map[string]int
	longest map[string]time.Duration // the longest gap between two frames
}

func watch(t *testing.T, urls string) *watcher {
	t.Helper()
	w := &watcher{last: map[string]time.Time{}, count: map[string]int{}, longest: map[string]time.Duration{}}
	nc, err := nats.Connect(urls, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond), nats.Name("test watcher"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	w.nc = nc
	if _, err := nc.Subscribe(wire.AllFrames, func(m *nats.Msg) {
		id, _, err := wire.ParseSubject(m.Subject)
		if err != nil {
			return
		}
		now := time.Now()
		w.mu.Lock()
		defer w.mu.Unlock()
		if prev, ok := w.last[id]; ok && now.Sub(prev) > w.longest[id] {
			w.longest[id] = now.Sub(prev)
		}
		w.last[id] = now
		w.count[id]++
	}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return w
}

// framesSince reports whether every camera in ids sent a frame after at.
func (w *watcher) framesSince(at time.Time, ids ...string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, id := range ids {
		if !w.last[id].After(at) {
			return false
		}
	}
	return true
}

func (w *watcher) gaps() map[string]time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]time.Duration{}
	for id, d := range w.longest {
		out[id] = d
	}
	return out
}

// webCams reads a web viewer's /api/cams: which cameras have a signal.
func webCams(t *testing.T, base string) map[string]bool {
	t.Helper()
	res, err := http.Get(base + "/api/cams")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	var cams []struct {
		ID     string `json:"id"`
		Signal bool   `json:"signal"`
	}
	if err := json.Unmarshal(body, &cams); err != nil {
		t.Fatalf("/api/cams: %v: %s", err, body)
	}
	out := map[string]bool{}
	for _, c := range cams {
		out[c.ID] = c.Signal
	}
	return out
}

// Three hub processes as one cluster keeping CAMS on all three, four agents
// and two viewers given every node: the node the viewers are connected to is
// killed; the viewers keep getting live frames, an export across the kill
// works, and the node comes back and catches up.
func TestClusterFailover(t *testing.T) {
	ports := testenv.FreePorts(t, 6)
	var routes, clients []string
	for i := range 3 {
		clients = append(clients, fmt.Sprintf("nats://127.0.0.1:%d", ports[i]))
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", ports[3+i]))
	}
	urls := strings.Join(clients, ",")
	storeDirs := t.TempDir()
	hubArgs := func(i int) []string {
		return []string{"--name", fmt.Sprintf("node%d", i+1), "--listen", fmt.Sprintf("127.0.0.1:%d", ports[i]), "--monitor", "",
			"--cluster", fmt.Sprintf("127.0.0.1:%d", ports[3+i]), "--cluster-name", "camhub-e2e", "--routes", strings.Join(routes, ","),
			"--replicas", "3", "--storage", "file", "--store-dir", filepath.Join(storeDirs, fmt.Sprint(i)), "--replay", "5m"}
	}
	hubs := make([]*proc, 3)
	for i := range 3 {
		hubs[i] = start(t, nil, "hub", hubArgs(i)...)
	}
	began := time.Now()
	for _, h := range hubs {
		h.waitLog(`msg="replay buffer ready".* replicas=3`)
	}
	t.Logf("3-node cluster ready in %v", time.Since(began))

	cams := []string{"cam1", "cam2", "cam3", "cam4"}
	for _, id := range cams {
		start(t, nil, "agent", "--id", id, "--source", "testpattern", "--fps", "10", "--size", "320x240", "--nats", urls)
	}
	w := watch(t, urls)
	web := start(t, nil, "viewer", "--http", "127.0.0.1:0", "--nats", urls)
	base := web.waitLog(`msg="web viewer listening" url=(http://[0-9.:]+)`)
	testenv.Eventually(t, 60*time.Second, "frames of every camera", func() bool { return w.framesSince(began, cams...) })
	testenv.Eventually(t, 30*time.Second, "every camera in the web viewer", func() bool {
		got := webCams(t, base)
		return got["cam1"] && got["cam2"] && got["cam3"] && got["cam4"]
	})

	// a few seconds of frames before the kill
	streaming := time.Now()
	testenv.Eventually(t, 30*time.Second, "3 s of frames", func() bool { return time.Since(streaming) > 3*time.Second })

	// kill the node the watcher is connected to, without warning
	victim := -1
	for i, u := range clients {
		if w.nc.ConnectedUrl() == u {
			victim = i
		}
	}
	if victim < 0 {
		t.Fatalf("the watcher is connected to %q, none of %v", w.nc.ConnectedUrl(), clients)
	}
	leader := "?"
	if jsb, err := jetstream.New(w.nc); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if st, err := jsb.Stream(ctx, wire.FramesStream); err == nil && st.CachedInfo().Cluster != nil {
			leader = st.CachedInfo().Cluster.Leader
		}
		cancel()
	}
	t.Logf("CAMS is led by %s", leader)
	killed := time.Now()
	hubs[victim].cmd.Process.Kill()
	<-hubs[victim].done
	t.Logf("killed node%d (SIGKILL), the watcher's node", victim+1)

	testenv.Eventually(t, 60*time.Second, "live frames of every camera after the kill", func() bool {
		return w.framesSince(time.Now().Add(-500*time.Millisecond), cams...) && w.framesSince(killed, cams...)
	})

	resumed := time.Since(killed)
	t.Logf("failover: every camera's frames reached the watcher again %v after the kill (now on %s); longest gap per camera: %v",
		resumed, w.nc.ConnectedUrl(), w.gaps())
	testenv.Eventually(t, 60*time.Second, "every camera live in the web viewer after the kill", func() bool {
		got := webCams(t, base)
		return got["cam1"] && got["cam2"] && got["cam3"] && got["cam4"]
	})

	t.Logf("the web viewer shows all four cameras live %v after the kill", time.Since(killed))

	// the buffer answers again once the surviving nodes have elected
	// leaders for the streams the dead node led
	js, err := jetstream.New(w.nc)
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("node%d", victim+1)
	testenv.Eventually(t, 60*time.Second, "a CAMS leader other than "+name, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		st, err := js.Stream(ctx, wire.FramesStream)
		return err == nil && st.CachedInfo().Cluster != nil && st.CachedInfo().Cluster.Leader != "" && st.CachedInfo().Cluster.Leader != name
	})

	t.Logf("CAMS answers again, led by another node, %v after the kill", time.Since(killed))

	// frames after the kill too, then export a range spanning it
	testenv.Eventually(t, 30*time.Second, "10 s of frames after the kill", func() bool { return time.Since(killed) > 10*time.Second })
	dir := t.TempDir()
	// from 5 s before: a SIGKILLed leader takes with it the frames it had
	// not replicated yet, a second or two on a loaded machine
	from, to := killed.Add(-5*time.Second), killed.Add(10*time.Second)
	n := export(t, "--cam", "cam1", "--from", from.UTC().Format(time.RFC3339Nano), "--to", to.UTC().Format(time.RFC3339Nano),
		"--out", filepath.Join(dir, "across.avi"), "--nats", urls)
	hole, before, after := bufferHole(t, js, "cam1", from, to, killed)
	t.Logf("viewer export of cam1 from 5 s before to 10 s after the kill: %d frames at 10 fps; %d captured before the kill, %d after; the buffer's longest gap: %v",
		n, before, after, hole)
	if before == 0 || after == 0 || n != before+after {
		t.Fatalf("the export across the kill has %d frames, the buffer %d before and %d after it", n, before, after)
	}
	if out, err := run(t, "viewer", "list", "--nats", urls); err != nil {
		t.Fatal(err)
	} else {
		t.Logf("viewer list after the kill:\n%s", out)
	}

	// the node comes back and catches up
	back := time.Now()
	hubs[victim] = start(t, nil, "hub", hubArgs(victim)...)
	hubs[victim].waitLog(`msg="replay buffer ready"`)
	var last string
	testenv.Eventually(t, 120*time.Second, name+" current in CAMS", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		st, err := js.Stream(ctx, wire.FramesStream)
		if err != nil {
			last = err.Error()
			return false
		}
		info := st.CachedInfo()
		if info.Cluster == nil {
			return false
		}
		last = fmt.Sprintf("leader %s", info.Cluster.Leader)
		current := info.Cluster.Leader == name
		for _, r := range info.Cluster.Replicas {
			last += fmt.Sprintf(", %s current=%v offline=%v lag=%d", r.Name, r.Current, r.Offline, r.Lag)
			if r.Name == name && r.Current && !r.Offline {
				current = true
			}
		}
		return current
	})

	t.Logf("%s rejoined and is current %v after its restart: %s", name, time.Since(back), last)
}

// bufferHole reads camera id's frames captured in [from, to] from the
// buffer and returns the longest gap between capture times and how many
// were captured before and after at.
func bufferHole(t *testing.T, js jetstream.JetStream, id string, from, to, at time.Time) (hole time.Duration, before, after int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := js.OrderedConsumer(ctx, wire.FramesStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{wire.FramesSubject(id)}, DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &from,
	})
	if err != nil {
		t.Fatal(err)
	}
	it, err := c.Messages(jetstream.PullMaxMessages(64))
	if err != nil {
		t.Fatal(err)
	}
	defer it.Stop()
	guard := time.AfterFunc(30*time.Second, it.Stop) // a failure guard
	defer guard.Stop()
	var prev time.Time
	for {
		m, err := it.Next()
		if err != nil {
			t.Fatalf("reading the buffer: %v", err)
		}
		f, err := wire.ParseFrame(m.Headers())
		if err != nil {
			t.Fatal(err)
		}
		if f.Time.After(to) {
			return hole, before, after
		}
		if f.Time.Before(from) {
			continue // stored after from, captured before it
		}
		if !prev.IsZero() && f.Time.Sub(prev) > hole {
			hole = f.Time.Sub(prev)
		}
		prev = f.Time
		if f.Time.Before(at) {
			before++
		} else {
			after++
		}
	}
}
