package test

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"camhub/internal/join"
	"camhub/internal/natsconn"
	"camhub/internal/wire"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// hubCommand runs `hub ARGS...` to the end and returns its stdout.
func hubCommand(t *testing.T, args ...string) string {
	t.Helper()
	out, _ := hubCommandErr(t, args...)
	return out
}

// hubCommandErr is hubCommand, with what it said on stderr.
func hubCommandErr(t *testing.T, args ...string) (string, string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, "hub"), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("hub %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), stderr.String()
}

func writeToken(t *testing.T, dir, name, token string) string {
	t.Helper()
	if _, err := join.Parse(token); err != nil {
		t.Fatalf("hub printed more than a token on stdout: %v", err)
	}
	file := filepath.Join(dir, name+".join")
	if err := os.WriteFile(file, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

func checkMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != want {
		t.Errorf("%s: mode %v, want %v", path, fi.Mode().Perm(), want)
	}
}

// A fresh hub with no security flags: anonymous and plain-text clients are
// refused; `hub camera add front` → `agent --join-file` streams, which a
// viewer joined with `hub user add` receives; front's credential cannot
// publish back; `hub camera remove front` drops the agent's connection at
// once, without restarting the hub.
func TestTrustByDefault(t *testing.T) {
	tmp := t.TempDir()
	data := filepath.Join(tmp, "data")
	hub := start(t, []string{"CAMHUB_INSECURE=false"}, "hub", "--listen", "127.0.0.1:0", "--monitor", "", "--data", data)
	url := hub.waitLog(`msg="NATS server ready" url=(tls://[0-9.:]+)`)
	hub.waitLog(`to add a camera: hub camera add CAMERA --data`)

	// Plain text: the hub answers with nothing but its INFO (TLS required)
	// and closes the connection.
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(url, "tls://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	conn.Write([]byte("CONNECT {\"verbose\":false}\r\nPING\r\nSUB cams.> 1\r\n"))
	reply, _ := io.ReadAll(conn)
	conn.Close()
	if !strings.Contains(string(reply), `"tls_required":true`) || strings.Contains(string(reply), "PONG") || strings.Contains(string(reply), "+OK") {
		t.Fatalf("a plain-text client got %q", reply)
	}
	// Joined files live in per-client state directories.
	frontFile := writeToken(t, tmp, "front", strings.TrimSpace(hubCommand(t, "camera", "add", "front", "--data", data)))
	familyTok, familySaid := hubCommandErr(t, "user", "add", "family", "--role", "viewer", "--cams", "front", "--data", data)
	familyTok = strings.TrimSpace(familyTok)
	writeToken(t, tmp, "family", familyTok)
	pwMatch := regexp.MustCompile(`Web login password for "family" \(shown once, only its hash is kept\): (\S+)`).FindStringSubmatch(familySaid)
	if pwMatch == nil {
		t.Fatalf("hub user add did not give family a web password:\n%s", familySaid)
	}
	webFile := writeToken(t, tmp, "web", strings.TrimSpace(hubCommand(t, "user", "add", "web", "--role", "viewer", "--web-host", "127.0.0.1", "--data", data)))
	hub.waitLog(`msg="users changed: applied without a restart".* users=3`)
	if out := hubCommand(t, "camera", "list", "--data", data); !strings.Contains(out, "front") || strings.Contains(out, "family") {
		t.Fatalf("camera list:\n%s", out)
	}

	// The viewer: a client joined with family's token receives front.
	va := natsconn.Auth{Join: familyTok, StateDir: filepath.Join(tmp, "viewer-state")}
	if _, err := va.Resolve(natsconn.KindViewer, ""); err != nil {
		t.Fatal(err)
	}
	vc, err := natsconn.Dial(va.URLs("", false), natsconn.DialOptions{Name: "test viewer", Auth: va}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	defer vc.Close()
	frames, err := vc.SubscribeSync(wire.FramesSubject("front"))
	if err != nil {
		t.Fatal(err)
	}
	vc.Flush()

	// Anonymous over TLS, trusting the CA: refused.
	tc, _ := va.Token().TLSConfig()
	if nc, err := nats.Connect(url, nats.Secure(tc), nats.Timeout(5*time.Second)); err == nil {
		nc.Close()
		t.Fatal("an anonymous client connected")
	} else if !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("anonymous client: %v, want an authorization violation", err)
	}

	agentState := filepath.Join(tmp, "agent-state")
	agent := start(t, nil, "agent", "--join-file", frontFile, "--state-dir", agentState, "--source", "testpattern", "--fps", "10", "--size", "160x120")
	agent.waitLog(`msg="connected to NATS".* url=tls://`)
	if _, err := frames.NextMsg(30 * time.Second); err != nil {
		t.Fatalf("the joined viewer got no frame of front: %v", err)
	}
	checkMode(t, agentState, 0o700)
	checkMode(t, filepath.Join(agentState, "agent-front.join"), 0o600)
	checkMode(t, data, 0o700)
	for _, f := range []string{"ca.pem", "ca-key.pem", "server-cert.pem", "server-key.pem", "users.yaml"} {
		checkMode(t, filepath.Join(data, f), 0o600)
	}

	// The web viewer, joined as web: HTTPS with the certificate the hub's
	// CA issued it, and a login as family, checked by the hub, shows
	// family's cameras.
	webView := start(t, nil, "viewer", "--http", "127.0.0.1:0", "--join-file", webFile, "--state-dir", filepath.Join(tmp, "web-state"))
	webURL := webView.waitLog(`msg="web viewer listening" url=(https://[0-9.:]+)`)
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
	client.Jar, _ = cookiejar.New(nil)
	if resp, err := client.Get(webURL + "/api/cams"); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("/api/cams without a login: %v %v, want 401", resp, err)
	} else {
		resp.Body.Close()
	}
	resp, err := client.PostForm(webURL+"/login", neturl.Values{"user": {"family"}, "password": {pwMatch[1]}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	resp, err = client.Get(webURL + "/api/cams")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !regexp.MustCompile(`"id": *"front"`).Match(body) {
		t.Fatalf("/api/cams after family's login: %d %s", resp.StatusCode, body)
	}

	// front's credential, used for camera back: the hub refuses.
	thief := start(t, nil, "agent", "--join-file", frontFile, "--state-dir", filepath.Join(tmp, "thief-state"), "--id", "back",
		"--source", "testpattern", "--fps", "10", "--size", "160x120")
	thief.waitLog(`level=ERROR msg="NATS refused: permission denied for this user".* user=front .*cams\.back\.`)
	b, _ := os.ReadFile(frontFile)
	frontTok, err := join.Parse(string(b))
	if err != nil {
		t.Fatal(err)
	}
	if text, _ := thief.logText(); strings.Contains(text, frontTok.Seed) {
		t.Fatalf("the agent's log shows its seed:\n%s", text)
	}

	// Revoke front: its connection is dropped at once, no restart.
	hubCommand(t, "camera", "remove", "front", "--data", data)
	hub.waitLog(`msg="users changed: applied without a restart".* users=2 before=3`)
	agent.waitLog(`(?i)disconnected from NATS.*authorization|Authorization Violation`)
	// The viewer stays.
	if !vc.IsConnected() {
		t.Fatal("removing front closed the viewer's connection")
	}
	for _, p := range []*proc{hub, agent} {
		if text, _ := p.logText(); strings.Contains(text, frontTok.Seed) || strings.Contains(text, va.Token().Seed) {
			t.Fatalf("the %s's log shows a seed:\n%s", p.name, text)
		}
	}
}
