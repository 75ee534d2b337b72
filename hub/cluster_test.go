package hub_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"camhub/hub"
	"camhub/internal/natsconn"
	"camhub/internal/replay"
	"camhub/internal/testenv"
	"camhub/internal/wire"
)

// startCluster starts n hubs in this process forming one NATS cluster with
// the streams at replicas copies.
func startCluster(t *testing.T, n, replicas int, mods ...func(*hub.Config)) []*hub.Server {
	t.Helper()
	ports := testenv.FreePorts(t, n)
	var routes []string
	for _, p := range ports {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", p))
	}
	hubs := make([]*hub.Server, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		cfg := config()
		cfg.ServerName = fmt.Sprintf("hub%d", i+1)
		cfg.Cluster = fmt.Sprintf("127.0.0.1:%d", ports[i])
		cfg.ClusterName = "camhub-test"
		cfg.Routes = strings.Join(routes, ",")
		cfg.Replicas = replicas
		cfg.StoreDir = t.TempDir()
		cfg.ReplayBytes = 64 << 20
		for _, mod := range mods {
			mod(&cfg)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			hubs[i], errs[i] = hub.Start(context.Background(), cfg, quiet())
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("hub%d: %v", i+1, err)
		}
		t.Cleanup(hubs[i].Close)
	}
	return hubs
}

func framesInfo(t *testing.T, js jetstream.JetStream) *jetstream.StreamInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, wire.FramesStream)
	if err != nil {
		t.Fatalf("stream %s: %v", wire.FramesStream, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatalf("stream %s info: %v", wire.FramesStream, err)
	}
	return info
}

func publishFrames(t *testing.T, js jetstream.JetStream, id string, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		m := &nats.Msg{Subject: wire.FramesSubject(id), Data: []byte{0xff, 0xd8, byte(i), 0xff, 0xd9},
			Header: wire.Frame{Seq: uint64(i), Time: time.Now(), Width: 8, Height: 8}.Header()}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := js.PublishMsg(ctx, m)
		cancel()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
	}
}

// Three hubs form a cluster keeping CAMS on all three; when the stream's
// leader goes, another takes over and no frame is lost.
func TestClusterReplicatedBuffer(t *testing.T) {
	hubs := startCluster(t, 3, 3)
	var urls []string
	for _, h := range hubs {
		urls = append(urls, h.ClientURL())
	}
	nc := testenv.Conn(t, strings.Join(urls, ","), nats.MaxReconnects(-1))
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	info := framesInfo(t, js)
	if info.Config.Replicas != 3 || info.Cluster == nil || info.Cluster.Leader == "" || len(info.Cluster.Replicas) != 2 {
		t.Fatalf("CAMS: replicas %d, cluster %+v", info.Config.Replicas, info.Cluster)
	}
	publishFrames(t, js, "front", 1, 20)

	leader := info.Cluster.Leader
	var gone *hub.Server
	for i, h := range hubs {
		if fmt.Sprintf("hub%d", i+1) == leader {
			gone = h
		}
	}
	if gone == nil {
		t.Fatalf("leader %q is none of the hubs", leader)
	}
	began := time.Now()
	gone.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		st, err := js.Stream(ctx, wire.FramesStream)
		var i *jetstream.StreamInfo
		if err == nil {
			i, err = st.Info(ctx)
		}
		cancel()
		if err == nil && i.Cluster != nil && i.Cluster.Leader != "" && i.Cluster.Leader != leader {
			t.Logf("stream leader %s took over from %s after %v", i.Cluster.Leader, leader, time.Since(began))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new stream leader after %s left: %v %+v", leader, err, i)
		}
		time.Sleep(100 * time.Millisecond) // polling interval, not synchronisation
	}
	publishFrames(t, js, "front", 21, 10)
	if info := framesInfo(t, js); info.State.Msgs != 30 || info.State.LastSeq != 30 {
		t.Fatalf("after the leader left: %d frames, last %d; want 30", info.State.Msgs, info.State.LastSeq)
	}
}

// Users and permissions (--auth) work on a cluster: an agent publishes to
// one node, a viewer on another reads the frame from the replicated buffer
// through its own inbox prefix, and a client without a user is refused.
func TestClusterWithAuth(t *testing.T) {
	dir := t.TempDir()
	for _, u := range []string{"front", "all"} {
		if err := os.WriteFile(filepath.Join(dir, u+".pass"), []byte("pw-"+u+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	users := filepath.Join(dir, "users.yaml")
	if err := os.WriteFile(users, []byte(`users:
  - {user: front, role: agent, cams: [front], password_file: front.pass}
  - {user: all, role: viewer, password_file: all.pass}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	hubs := startCluster(t, 3, 3, func(c *hub.Config) { c.Auth = users })
	agent := dial(t, hubs[0].ClientURL(), natsconn.Auth{User: "front", PasswordFile: filepath.Join(dir, "front.pass")}, quiet())
	viewer := dial(t, hubs[1].ClientURL(), natsconn.Auth{User: "all", PasswordFile: filepath.Join(dir, "all.pass")}, quiet())
	publishFrame(t, agent, "front", 1)
	js, err := jetstream.New(viewer)
	if err != nil {
		t.Fatal(err)
	}
	var got replay.Frame
	testenv.Eventually(t, 10*time.Second, "the frame in the replicated buffer", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		got, err = replay.Snapshot(ctx, js, "front")
		return err == nil
	})

	if got.Seq != 1 {
		t.Fatalf("snapshot on another node: %+v", got.Frame)
	}
	if info := framesInfo(t, js); info.Config.Replicas != 3 {
		t.Fatalf("CAMS replicas %d", info.Config.Replicas)
	}
	if _, err := testenvConnErr(hubs[2].ClientURL()); err == nil {
		t.Fatal("a client without credentials connected to a node")
	}
}

func testenvConnErr(url string) (*nats.Conn, error) {
	nc, err := nats.Connect(url)
	if err == nil {
		nc.Close()
	}
	return nc, err
}

// More replicas than the cluster has servers is a clear error, not a hang.
func TestClusterTooFewServers(t *testing.T) {
	ports := testenv.FreePorts(t, 2)
	other := config()
	other.ServerName = "other"
	other.Cluster = fmt.Sprintf("127.0.0.1:%d", ports[1])
	other.Routes = fmt.Sprintf("nats://127.0.0.1:%d", ports[0])
	other.StoreDir = t.TempDir()
	other.Replicas = 3
	// the other hub waits for the cluster; it fails as this one does
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		if h, err := hub.Start(ctx, other, quiet()); err == nil {
			h.Close()
		}
	}()
	defer func() { <-done }()
	cfg := config()
	cfg.ServerName = "this"
	cfg.Cluster = fmt.Sprintf("127.0.0.1:%d", ports[0])
	cfg.Routes = fmt.Sprintf("nats://127.0.0.1:%d", ports[1])
	cfg.Replicas = 3
	cfg.StoreDir = t.TempDir()
	h, err := hub.Start(ctx, cfg, quiet())
	if err == nil {
		h.Close()
		t.Fatal("a one-server cluster provisioned 3 replicas")
	}
	if !strings.Contains(err.Error(), "replicas 3") || !strings.Contains(err.Error(), "fewer than 3") {
		t.Fatalf("error %q, want one that explains the replicas", err)
	}
	t.Logf("error: %v", err)
}

func TestClusterConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*hub.Config)
		want string
	}{
		{"cluster without routes", func(c *hub.Config) { c.Cluster = "127.0.0.1:6222" }, "cluster needs --routes"},
		{"routes without cluster", func(c *hub.Config) { c.Routes = "nats://a:6222" }, "routes needs --cluster"},
		{"replicas without cluster", func(c *hub.Config) { c.Replicas = 3 }, "needs a cluster"},
		{"replicas too many", func(c *hub.Config) { c.Replicas = 7 }, "replicas 7"},
		{"bad route", func(c *hub.Config) { c.Cluster = "127.0.0.1:6222"; c.Routes = "a:6222" }, "routes"},
		{"bad cluster", func(c *hub.Config) { c.Cluster = "6222" }, "cluster"},
		{"leaf without domain", func(c *hub.Config) { c.Leaf = "nats://central:7422" }, "domain"},
		{"bad leaf", func(c *hub.Config) { c.Leaf = "http://central:7422"; c.Domain = "s" }, "leaf"},
		{"bad leaf listen", func(c *hub.Config) { c.LeafListen = "7422" }, "leaf-listen"},
		{"bad domain", func(c *hub.Config) { c.Domain = "a.b" }, "domain"},
		{"auth with leaf", func(c *hub.Config) { c.Auth = "users.yaml"; c.LeafListen = ":7422" }, "not supported"},
		{"cluster with nats", func(c *hub.Config) { c.NATS = "nats://x:4222"; c.Cluster = ":6222" }, "existing NATS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := config()
			tc.mod(&c)
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
	c := config()
	c.NATS, c.Replicas = "nats://x:4222", 3
	if err := c.Validate(); err != nil {
		t.Fatalf("--nats with --replicas 3: %v", err)
	}
}

// A site hub is a leaf node of the central hub with its own JetStream
// domain: the site's frames are kept in both buffers while the link is up,
// and in the site's alone while it is down; each side's JetStream API
// answers for its own buffer, and the central side reaches the site's
// through the domain.
func TestLeafSite(t *testing.T) {
	ccfg := config()
	ccfg.LeafListen = "127.0.0.1:0"
	central := start(t, ccfg, quiet())
	if central.LeafAddr() == "" {
		t.Fatal("no leaf listener")
	}
	scfg := config()
	scfg.Leaf = "nats://" + central.LeafAddr()
	scfg.Domain = "garden"
	site := start(t, scfg, quiet())
	testenv.Eventually(t, 10*time.Second, "the leaf link", func() bool { return central.NumLeafNodes() == 1 && site.NumLeafNodes() == 1 })

	cjs, _ := jetstream.New(testenv.Conn(t, central.ClientURL()))
	sjs, _ := jetstream.New(testenv.Conn(t, site.ClientURL()))
	// the central buffer's interest must have crossed the link before the
	// site's frames are sent: wait for a probe frame to arrive
	testenv.Eventually(t, 10*time.Second, "site frames at the central hub", func() bool {
		publishFrames(t, sjs, "probe", 1, 1)
		return framesInfo(t, cjs).State.Msgs > 0
	})

	publishFrames(t, sjs, "shed", 1, 10)
	// a central camera's frames go down the link to the site's buffer too
	// (the site buffer's interest in cams.*.frames crosses the link):
	// documented in docs/SCALING.md
	publishFrames(t, cjs, "front", 1, 5)
	testenv.Eventually(t, 10*time.Second, "the site's frames in the central buffer", func() bool {
		st, err := cjs.Stream(context.Background(), wire.FramesStream)
		if err != nil {
			return false
		}
		info, err := st.Info(context.Background(), jetstream.WithSubjectFilter(wire.FramesSubject("shed")))
		return err == nil && info.State.Subjects[wire.FramesSubject("shed")] == 10
	})

	// the central hub's domain-less JetStream can read the site's buffer
	// through the domain
	remote, err := jetstream.NewWithDomain(testenv.Conn(t, central.ClientURL()), "garden")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := remote.Stream(ctx, wire.FramesStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(wire.FramesSubject("shed")))
	if err != nil || info.State.Subjects[wire.FramesSubject("shed")] != 10 {
		t.Fatalf("the site buffer through domain garden: %v %v, want 10 frames of shed", err, info)
	}

	before := framesInfo(t, sjs).State.Msgs
	central.Close()
	testenv.Eventually(t, 10*time.Second, "the link to drop", func() bool { return site.NumLeafNodes() == 0 })
	publishFrames(t, sjs, "shed", 11, 10)
	if got := framesInfo(t, sjs).State.Msgs; got != before+10 {
		t.Fatalf("offline, the site buffer holds %d frames, want %d", got, before+10)
	}
}
