package hub_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"camhub/hub"
	"camhub/internal/camlist"
	"camhub/internal/natsconn"
	"camhub/internal/replay"
	"camhub/internal/wire"
)

// secureHub starts a hub requiring the users below; every password is
// "pw-<user>", in a file.
func secureHub(t *testing.T, cfg hub.Config) (*hub.Server, map[string]string) {
	t.Helper()
	dir := t.TempDir()
	pw := map[string]string{}
	for _, u := range []string{"admin", "front", "all", "frontonly"} {
		pw[u] = filepath.Join(dir, u+".pass")
		if err := os.WriteFile(pw[u], []byte("pw-"+u+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	users := `users:
  - {user: admin, role: admin, password_file: admin.pass}
  - {user: front, role: agent, cams: [front], password_file: front.pass}
  - {user: all, role: viewer, password_file: all.pass}
  - {user: frontonly, role: viewer, cams: [front], password_file: frontonly.pass}
`
	cfg.Auth = filepath.Join(dir, "users.yaml")
	if err := os.WriteFile(cfg.Auth, []byte(users), 0o600); err != nil {
		t.Fatal(err)
	}
	return start(t, cfg, quiet()), pw
}

// logLines is a logger whose output can be waited for.
type logLines struct {
	mu    sync.Mutex
	lines []string
	added chan struct{}
}

func newLogLines() *logLines { return &logLines{added: make(chan struct{}, 100)} }

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.lines = append(l.lines, string(p))
	l.mu.Unlock()
	select {
	case l.added <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (l *logLines) logger() *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }

// wait returns the first line containing every one of want, failing the
// test after 10 s.
func (l *logLines) wait(t *testing.T, want ...string) string {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		l.mu.Lock()
		for _, line := range l.lines {
			ok := true
			for _, w := range want {
				ok = ok && strings.Contains(line, w)
			}
			if ok {
				l.mu.Unlock()
				return line
			}
		}
		all := strings.Join(l.lines, "")
		l.mu.Unlock()
		select {
		case <-l.added:
		case <-deadline:
			t.Fatalf("no log line with %q in:\n%s", want, all)
		}
	}
}

func dial(t *testing.T, url string, a natsconn.Auth, log *slog.Logger) *nats.Conn {
	t.Helper()
	nc, err := natsconn.Dial(url, natsconn.DialOptions{Name: "test " + a.User, Auth: a}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func publishFrame(t *testing.T, nc *nats.Conn, id string, seq uint64) {
	t.Helper()
	m := nats.NewMsg(wire.FramesSubject(id))
	m.Header = wire.Frame{Seq: seq, Time: time.Now(), Width: 8, Height: 8}.Header()
	m.Data = []byte("jpeg")
	if err := nc.PublishMsg(m); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

func TestAgentMayPublishOnlyItsCamera(t *testing.T) {
	h, pw := secureHub(t, config())
	admin := dial(t, h.ClientURL(), natsconn.Auth{User: "admin", PasswordFile: pw["admin"]}, quiet())
	front, err := admin.SubscribeSync(wire.FramesSubject("front"))
	if err != nil {
		t.Fatal(err)
	}
	back, err := admin.SubscribeSync(wire.FramesSubject("back"))
	if err != nil {
		t.Fatal(err)
	}
	admin.Flush()

	logs := newLogLines()
	agent := dial(t, h.ClientURL(), natsconn.Auth{User: "front", PasswordFile: pw["front"]}, logs.logger())
	publishFrame(t, agent, "back", 1)
	line := logs.wait(t, "level=ERROR", "permission denied", "Permissions Violation for Publish", wire.FramesSubject("back"))
	if strings.Contains(line, "pw-front") {
		t.Fatalf("the log shows the password: %s", line)
	}
	publishFrame(t, agent, "front", 2)
	if _, err := front.NextMsg(10 * time.Second); err != nil {
		t.Fatalf("front's own frame: %v", err)
	}
	// The refused frame never arrived: the admin's connection has seen
	// front's frame, published after it, so back's would be there by now.
	if n, _, _ := back.Pending(); n != 0 {
		t.Fatalf("%d frames of back reached the hub from front's agent", n)
	}
	// Flush (a ping) works for an agent that may subscribe to nothing.
	if !agent.IsConnected() {
		t.Fatal("agent disconnected")
	}
}

func TestClientWithoutCredentialsIsRefused(t *testing.T) {
	h, pw := secureHub(t, config())
	for _, a := range []natsconn.Auth{{}, {User: "front", PasswordFile: pw["admin"]}} {
		nc, err := natsconn.Dial(h.ClientURL(), natsconn.DialOptions{Auth: a}, quiet())
		if err == nil {
			nc.Close()
			t.Fatalf("user %q connected", a.User)
		}
		if !errors.Is(err, nats.ErrAuthorization) {
			t.Fatalf("user %q: error %v, want an authorization violation", a.User, err)
		}
	}
}

func TestViewerLimitedToItsCameras(t *testing.T) {
	h, pw := secureHub(t, config())
	agent := dial(t, h.ClientURL(), natsconn.Auth{User: "front", PasswordFile: pw["front"]}, quiet())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	logs := newLogLines()
	viewer := dial(t, h.ClientURL(), natsconn.Auth{User: "frontonly", PasswordFile: pw["frontonly"]}, logs.logger())
	live, err := viewer.SubscribeSync(wire.FramesSubject("front"))
	if err != nil {
		t.Fatal(err)
	}
	if err := viewer.Flush(); err != nil {
		t.Fatal(err)
	}
	publishFrame(t, agent, "front", 1)
	if _, err := live.NextMsg(10 * time.Second); err != nil {
		t.Fatalf("front's live frame: %v", err)
	}
	st := nats.NewMsg(wire.StatusSubject("front"))
	st.Data = []byte(`{"id":"front","state":"streaming","interval_ms":2000}`)
	if err := agent.PublishMsg(st); err != nil {
		t.Fatal(err)
	}
	agent.Flush()

	js, err := jetstream.New(viewer)
	if err != nil {
		t.Fatal(err)
	}
	// the list (viewer list)
	for {
		cams, err := camlist.List(ctx, js, time.Now())
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		if len(cams) == 1 && cams[0].ID == "front" {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("list: %+v", cams)
		}
	}
	// replay through an ordered consumer filtered to front
	cons, err := js.OrderedConsumer(ctx, wire.FramesStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{wire.FramesSubject("front")},
	})
	if err != nil {
		t.Fatalf("ordered consumer on front: %v", err)
	}
	if _, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second)); err != nil {
		t.Fatalf("replaying front: %v", err)
	}

	// back's frames: refused, live and through the buffer
	if _, err := viewer.SubscribeSync(wire.FramesSubject("back")); err != nil {
		t.Fatal(err)
	}
	logs.wait(t, "level=ERROR", "Permissions Violation for Subscription", wire.FramesSubject("back"))
	bctx, bcancel := context.WithTimeout(ctx, 3*time.Second)
	defer bcancel()
	if _, err := js.OrderedConsumer(bctx, wire.FramesStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{wire.FramesSubject("back")},
	}); err == nil {
		t.Fatal("an ordered consumer on back was created for a viewer limited to front")
	}

	// A viewer of every camera may take snapshots.
	all := dial(t, h.ClientURL(), natsconn.Auth{User: "all", PasswordFile: pw["all"]}, quiet())
	ajs, err := jetstream.New(all)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := replay.Snapshot(ctx, ajs, "front"); err != nil {
		t.Fatalf("snapshot by a viewer of every camera: %v", err)
	}
	// ... but not publish.
	alogs := newLogLines()
	all2 := dial(t, h.ClientURL(), natsconn.Auth{User: "all", PasswordFile: pw["all"]}, alogs.logger())
	publishFrame(t, all2, "front", 9)
	alogs.wait(t, "level=ERROR", "Permissions Violation for Publish")
}

// testCA makes a CA and a certificate for 127.0.0.1 signed by it, in dir;
// it returns the CA's, the certificate's and the key's files.
func testCA(t *testing.T, dir, name string) (ca, cert, key string) {
	t.Helper()
	write := func(file, typ string, der []byte) string {
		p := filepath.Join(dir, file)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name + " CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "hub"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caTmpl, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	return write(name+"-ca.pem", "CERTIFICATE", caDER), write(name+"-cert.pem", "CERTIFICATE", srvDER),
		write(name+"-key.pem", "EC PRIVATE KEY", keyDER)
}

func TestTLS(t *testing.T) {
	dir := t.TempDir()
	ca, cert, key := testCA(t, dir, "hub")
	otherCA, _, _ := testCA(t, dir, "other")
	cfg := config()
	cfg.TLSCert, cfg.TLSKey = cert, key
	h, pw := secureHub(t, cfg)

	for name, a := range map[string]natsconn.Auth{
		"no CA":    {User: "admin", PasswordFile: pw["admin"]},
		"other CA": {User: "admin", PasswordFile: pw["admin"], TLSCA: otherCA},
	} {
		nc, err := natsconn.Dial(h.ClientURL(), natsconn.DialOptions{Auth: a}, quiet())
		if err == nil {
			nc.Close()
			t.Fatalf("%s: connected", name)
		}
		if !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("%s: error %v, want a certificate error", name, err)
		}
	}
	nc := dial(t, h.ClientURL(), natsconn.Auth{User: "admin", PasswordFile: pw["admin"], TLSCA: ca}, quiet())
	if cs, err := nc.TLSConnectionState(); err != nil || !cs.HandshakeComplete {
		t.Fatalf("not over TLS: %v", err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	// The hub's own connection works too: it provisioned the streams.
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Stream(context.Background(), wire.FramesStream); err != nil {
		t.Fatal(err)
	}
}
