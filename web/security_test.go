package web

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"camhub/hub"
	"camhub/internal/cli"
	"camhub/internal/testenv"
)

// securedHub starts a hub with users (password "pw-<user>", in files) and
// returns it and the users' password files.
func securedHub(t *testing.T) (*hub.Server, map[string]string) {
	t.Helper()
	dir := t.TempDir()
	pw := map[string]string{}
	for _, u := range []string{"admin", "frontonly"} {
		pw[u] = filepath.Join(dir, u+".pass")
		if err := os.WriteFile(pw[u], []byte("pw-"+u+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	users := "users:\n" +
		"  - {user: admin, role: admin, password_file: admin.pass}\n" +
		"  - {user: frontonly, role: viewer, cams: [front], password_file: frontonly.pass}\n"
	auth := filepath.Join(dir, "users.yaml")
	if err := os.WriteFile(auth, []byte(users), 0o600); err != nil {
		t.Fatal(err)
	}
	h := testenv.Hub(t, &hub.Config{Listen: "127.0.0.1:0", Replay: 30 * time.Second, ReplayBytes: 64 << 20, Auth: auth})
	return h, pw
}

// A rewind the hub refuses (here: the web viewer's user may not read the
// camera's buffer) is answered 503 with a JSON error, not 200 and an
// empty stream.
func TestRewindRefusedByHubIs503(t *testing.T) {
	h, pw := securedHub(t)
	admin, err := cli.Dial(h.ClientURL(), cli.DialOptions{Auth: cli.Auth{User: "admin", PasswordFile: pw["admin"]}}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admin.Close)
	back := newCamera(t, admin, "back", 64, 48, 2, 0)
	for range 5 {
		back.frame()
	}
	if err := admin.Flush(); err != nil {
		t.Fatal(err)
	}
	nc, err := cli.Dial(h.ClientURL(), cli.DialOptions{Auth: cli.Auth{User: "frontonly", PasswordFile: pw["frontonly"]}}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	back.report("streaming") // into CAMS_STATUS, which this user may read
	_, ts := startWeb(t, Config{}, nc)
	eventually(t, 10*time.Second, "the web viewer to know camera back", func() bool {
		var cams []struct{ ID string }
		return getJSON(t, ts.URL+"/api/cams", &cams) == http.StatusOK && len(cams) == 1 && cams[0].ID == "back"
	})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, path := range []string{"/api/stream?cams=back&since=10s", "/cams/back/stream.mjpg?since=10s"} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body apiError
		derr := json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || derr != nil || body.Error == "" ||
			!strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Fatalf("%s: %d %s, body %+v (%v); want 503 with a JSON error", path, resp.StatusCode, resp.Header.Get("Content-Type"), body, derr)
		}
	}
}
