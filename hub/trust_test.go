package hub_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"camhub/hub"
	"camhub/internal/join"
	"camhub/internal/natsconn"
	"camhub/internal/testenv"
	"camhub/internal/wire"
)

// trustedHub starts a hub secured from a fresh data directory, as `hub`
// with no security flags does.
func trustedHub(t *testing.T) (*hub.Server, *hub.Store, *logLines) {
	t.Helper()
	cfg := config()
	cfg.Data = filepath.Join(t.TempDir(), "data")
	logs := newLogLines()
	h := start(t, cfg, logs.logger())
	st, err := hub.OpenStore(cfg.Data)
	if err != nil {
		t.Fatal(err)
	}
	return h, st, logs
}

// joined connects with token as a client of kind.
func joined(t *testing.T, tok *join.Token, kind string, logs *logLines) (*nats.Conn, error) {
	t.Helper()
	s, err := tok.Encode()
	if err != nil {
		t.Fatal(err)
	}
	a := natsconn.Auth{Join: s, StateDir: t.TempDir()}
	if _, err := a.Resolve(kind, ""); err != nil {
		t.Fatal(err)
	}
	log := quiet()
	if logs != nil {
		log = logs.logger()
	}
	nc, err := natsconn.Dial(a.URLs("", false), natsconn.DialOptions{Name: "test " + tok.User, Auth: a}, log)
	if err == nil {
		t.Cleanup(nc.Close)
	}
	return nc, err
}

func TestTrustedHubDataDirectory(t *testing.T) {
	h, st, logs := trustedHub(t)
	logs.wait(t, "to add a camera: hub camera add CAMERA --data")
	dir := filepath.Dir(st.File())
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Fatalf("data directory mode %v, want 0700", fi.Mode().Perm())
	}
	if _, err := st.AddCamera("front"); err != nil {
		t.Fatal(err)
	}
	files, _ := os.ReadDir(dir)
	for _, f := range files {
		fi, err := f.Info()
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().IsRegular() && fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", f.Name(), fi.Mode().Perm())
		}
	}
	for _, f := range []string{hub.CAFile, hub.CAKeyFile, hub.ServerCertFile, hub.ServerKeyFile, hub.UsersFile, hub.URLsFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	// The store keeps the public key alone, never the seed: a user's seed
	// is 58 characters of base32 starting SU, longer than any public key
	// (which may hold "SU" by chance).
	b, _ := os.ReadFile(st.File())
	if !strings.Contains(string(b), "nkey: U") || userSeed.Match(b) {
		t.Fatalf("users file:\n%s", b)
	}
	_ = h
}

// userSeed matches an nkey user seed.
var userSeed = regexp.MustCompile(`SU[A-Z2-7]{56}`)

// A fresh hub refuses anonymous and plain-text clients, TLS or not.
func TestTrustedHubRefusesAnonymousAndPlainText(t *testing.T) {
	h, st, _ := trustedHub(t)
	url := h.ClientURL()
	// Plain text: the server requires TLS.
	if nc, err := nats.Connect(url, nats.Timeout(3*time.Second)); err == nil {
		nc.Close()
		t.Fatal("a plain-text client connected")
	} else if !strings.Contains(err.Error(), "TLS") && !strings.Contains(err.Error(), "tls") {
		t.Fatalf("plain text: %v, want a TLS error", err)
	}
	// TLS, trusting the hub's CA, without credentials.
	ca, err := hub.LoadCA(filepath.Dir(st.File()))
	if err != nil {
		t.Fatal(err)
	}
	tok := &join.Token{CA: string(ca.CertPEM)}
	tc, err := tok.TLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	if nc, err := nats.Connect(url, nats.Secure(tc), nats.Timeout(3*time.Second)); err == nil {
		nc.Close()
		t.Fatal("an anonymous TLS client connected")
	} else if !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("anonymous: %v, want an authorization violation", err)
	}
	// TLS with the system's roots alone: the hub's CA is no public one.
	if nc, err := nats.Connect(url, nats.Secure(&tls.Config{MinVersion: tls.VersionTLS12}), nats.Timeout(3*time.Second)); err == nil {
		nc.Close()
		t.Fatal("a client not trusting the hub's CA connected")
	}
}

func TestTrustedHubJoinRevoke(t *testing.T) {
	_, st, hubLogs := trustedHub(t)
	hub.SetBcryptCost(4) // the minimum: the server checks it at login
	camTok, err := st.AddCamera("front")
	if err != nil {
		t.Fatal(err)
	}
	viewTok, pw, err := st.Add(hub.NewUser{Name: "family", Role: hub.RoleViewer, Cams: []string{"front"}, Password: true})
	if err != nil {
		t.Fatal(err)
	}
	if pw == "" {
		t.Fatal("no password for the web login")
	}
	hubLogs.wait(t, "users changed", "users=2")

	agentLogs := newLogLines()
	agent, err := joined(t, camTok, natsconn.KindAgent, agentLogs)
	if err != nil {
		t.Fatal(err)
	}
	viewer, err := joined(t, viewTok, natsconn.KindViewer, nil)
	if err != nil {
		t.Fatal(err)
	}
	frames, err := viewer.SubscribeSync(wire.FramesSubject("front"))
	if err != nil {
		t.Fatal(err)
	}
	viewer.Flush()
	publishFrame(t, agent, "front", 1)
	if _, err := frames.NextMsg(10 * time.Second); err != nil {
		t.Fatalf("the viewer got no frame of front: %v", err)
	}
	// front's credential may not publish back's frames.
	publishFrame(t, agent, "back", 1)
	agentLogs.wait(t, "level=ERROR", "permission denied", "user=front", wire.FramesSubject("back"))

	// Who am I: the web viewer checks a login with this.
	r, err := viewer.Request(hub.UserInfoSubject, nil, 5*time.Second)
	if err != nil {
		t.Fatalf("%s: %v", hub.UserInfoSubject, err)
	}
	var info struct {
		Data struct {
			User        string `json:"user"`
			Permissions struct {
				Subscribe struct {
					Allow []string `json:"allow"`
				} `json:"subscribe"`
			} `json:"permissions"`
		} `json:"data"`
	}
	if err := json.Unmarshal(r.Data, &info); err != nil {
		t.Fatal(err)
	}
	pub, _ := viewTok.PublicKey()
	if info.Data.User != pub || !strings.Contains(strings.Join(info.Data.Permissions.Subscribe.Allow, " "), wire.FramesSubject("front")) {
		t.Fatalf("user info %s", r.Data)
	}
	// The web login: the same user with its password.
	pwConn, err := nats.Connect(camTok.URLs[0], nats.UserInfo("family", pw), nats.Secure(mustTLS(t, viewTok)),
		nats.CustomInboxPrefix(wire.InboxPrefix("family")), nats.Timeout(30*time.Second))
	if err != nil {
		t.Fatalf("password login: %v", err)
	}
	if _, err := pwConn.Request(hub.UserInfoSubject, nil, 5*time.Second); err != nil {
		t.Fatalf("password login's user info: %v", err)
	}
	pwConn.Close()

	// Revoke: the agent's connection is closed at once, without a restart,
	// and it cannot come back.
	closed := make(chan struct{})
	agent.SetClosedHandler(func(*nats.Conn) { close(closed) })
	agent.SetReconnectHandler(func(*nats.Conn) { t.Error("the removed camera reconnected") })
	disconnected := make(chan error, 1)
	agent.SetDisconnectErrHandler(func(_ *nats.Conn, err error) {
		select {
		case disconnected <- err:
		default:
		}
	})
	if err := st.Remove("front"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-disconnected:
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the removed camera's connection is still open")
	}
	if _, err := joined(t, camTok, natsconn.KindAgent, nil); !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("the removed camera joined again: %v", err)
	}
	// The viewer stays.
	if !viewer.IsConnected() {
		t.Fatal("removing front closed the viewer's connection")
	}
	if err := st.Remove("front"); !errors.Is(err, hub.ErrNotFound) {
		t.Fatalf("removing twice: %v", err)
	}
	if _, err := st.AddCamera("family"); !errors.Is(err, hub.ErrExists) {
		t.Fatalf("adding a name twice: %v", err)
	}
}

func mustTLS(t *testing.T, tok *join.Token) *tls.Config {
	t.Helper()
	tc, err := tok.TLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	return tc
}

// Leaf links carry no credentials: a secured hub refuses them, saying how.
func TestTrustedHubRefusesLeafLinks(t *testing.T) {
	for _, mod := range []func(*hub.Config){
		func(c *hub.Config) { c.LeafListen = "127.0.0.1:0" },
		func(c *hub.Config) { c.Leaf = "nats://central:7422"; c.Domain = "garden" },
	} {
		cfg := config()
		cfg.Data = t.TempDir()
		mod(&cfg)
		if err := cfg.Validate(); !errors.Is(err, hub.ErrConfig) || !strings.Contains(err.Error(), "--insecure") {
			t.Fatalf("error %v, want one saying leaf links need --insecure", err)
		}
	}
	cfg := config()
	cfg.Data, cfg.Auth = t.TempDir(), "users.yaml"
	if err := cfg.Validate(); err == nil {
		t.Fatal("data and auth together: no error")
	}
}

// The consumer guard knows a joined viewer by its nkey: its durable is
// deleted, and a push consumer into its own inbox (named by the user, not
// the key) is allowed.
func TestTrustedHubGuardsJoinedViewers(t *testing.T) {
	h, st, hubLogs := trustedHub(t)
	tok, _, err := st.Add(hub.NewUser{Name: "family", Role: hub.RoleViewer, Cams: []string{"front"}})
	if err != nil {
		t.Fatal(err)
	}
	hubLogs.wait(t, "users changed", "users=1")
	nc, err := joined(t, tok, natsconn.KindViewer, nil)
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := js.CreateConsumer(ctx, wire.FramesStream, jetstream.ConsumerConfig{
		Durable: "squat", FilterSubject: wire.FramesSubject("front"), AckPolicy: jetstream.AckNonePolicy,
	}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "the joined viewer's durable to be deleted", func() bool {
		return guardDeleted(t, h, "durable") == 1
	})
	if _, err := js.CreateConsumer(ctx, wire.FramesStream, jetstream.ConsumerConfig{
		Name: "mine", FilterSubject: wire.FramesSubject("front"), AckPolicy: jetstream.AckNonePolicy,
		DeliverSubject: wire.InboxPrefix("family") + ".push", InactiveThreshold: time.Minute,
	}); err != nil {
		t.Fatal(err)
	}
	// A durable again: once counted, the push consumer before it was not.
	if _, err := js.CreateConsumer(ctx, wire.FramesStream, jetstream.ConsumerConfig{
		Durable: "squat2", FilterSubject: wire.FramesSubject("front"), AckPolicy: jetstream.AckNonePolicy,
	}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "the second durable to be deleted", func() bool {
		return guardDeleted(t, h, "durable") == 2
	})
	if n := guardDeleted(t, h, "deliver_subject"); n != 0 {
		t.Fatalf("a push consumer into the viewer's own inbox was deleted (%v)", n)
	}
}
