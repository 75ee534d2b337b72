package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"camhub/hub"
	"camhub/hub/hubtest"
	"camhub/internal/natsconn"
	"camhub/internal/testenv"
)

// securedHub starts a hub with users (password "pw-<user>", in files) and
// returns it and the users' password files.
func securedHub(t *testing.T) (*hub.Server, map[string]string) {
	t.Helper()
	dir := t.TempDir()
	pw := map[string]string{}
	for _, u := range []string{"admin", "frontonly", "viewer", "agent"} {
		pw[u] = filepath.Join(dir, u+".pass")
		if err := os.WriteFile(pw[u], []byte("pw-"+u+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	users := "users:\n" +
		"  - {user: admin, role: admin, password_file: admin.pass}\n" +
		"  - {user: frontonly, role: viewer, cams: [front], password_file: frontonly.pass}\n" +
		"  - {user: viewer, role: viewer, password_file: viewer.pass}\n" +
		"  - {user: agent, role: agent, cams: [front], password_file: agent.pass}\n"
	auth := filepath.Join(dir, "users.yaml")
	if err := os.WriteFile(auth, []byte(users), 0o600); err != nil {
		t.Fatal(err)
	}
	h := hubtest.Start(t, &hub.Config{Listen: "127.0.0.1:0", Replay: 30 * time.Second, ReplayBytes: 64 << 20, Auth: auth})
	return h, pw
}

// A rewind the hub refuses (here: the web viewer's user may not read the
// camera's buffer) is answered 503 with a JSON error, not 200 and an
// empty stream.
func TestRewindRefusedByHubIs503(t *testing.T) {
	h, pw := securedHub(t)
	admin, err := natsconn.Dial(h.ClientURL(), natsconn.DialOptions{Auth: natsconn.Auth{User: "admin", PasswordFile: pw["admin"]}}, quiet())
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
	nc, err := natsconn.Dial(h.ClientURL(), natsconn.DialOptions{Auth: natsconn.Auth{User: "frontonly", PasswordFile: pw["frontonly"]}}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	back.report("streaming") // into CAMS_STATUS, which this user may read
	_, ts := startWeb(t, Config{}, nc)
	testenv.Eventually(t, 10*time.Second, "the web viewer to know camera back", func() bool {
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

// Rewinds that play nothing hold a rewind slot each: the speed is bounded,
// and a rewind that has sent nothing for ReplayIdle ends.
func TestIdleRewindsEnd(t *testing.T) {
	_, nc := startHub(t)
	s, ts := startWeb(t, Config{ReplayIdle: 500 * time.Millisecond}, nc)
	// Two frames 10 s apart: at the slowest speed the second is due
	// 100 s after the first, and nothing is sent meanwhile.
	cam := newCamera(t, nc, "front", 64, 48, 2, 0)
	now := time.Now()
	for i, at := range []time.Time{now.Add(-10 * time.Second), now} {
		if err := nc.PublishMsg(natsFrame(cam, uint64(i+1), at)); err != nil {
			t.Fatal(err)
		}
	}
	nc.Flush()
	testenv.Eventually(t, 10*time.Second, "the web viewer to know camera front", func() bool {
		_, ok := s.dir.get("front")
		return ok || s.live.newest("front") != nil
	})
	for _, q := range []string{"since=24h&speed=1e-10", "since=10s&speed=1e-12", "since=10s&speed=0.01"} {
		resp, err := http.Get(ts.URL + "/cams/front/stream.mjpg?" + q)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("%s: status %d, want 400", q, resp.StatusCode)
		}
	}

	start := time.Now()
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(ts.URL + "/cams/front/stream.mjpg?since=20s&speed=0.1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	n, err := io.Copy(io.Discard, resp.Body) // ends when the server ends the stream
	if err != nil {
		t.Fatalf("the idle rewind did not end (after %v): %v", time.Since(start), err)
	}
	if n == 0 {
		t.Fatal("the rewind sent not even its first frame")
	}
	testenv.Eventually(t, 5*time.Second, "the rewind slot to be freed", func() bool { return s.replays.Load() == 0 })
	if s.idleCut.Load() != 1 {
		t.Fatalf("idle rewinds ended: %d, want 1", s.idleCut.Load())
	}
}

// One spoofed Frame-Seq far ahead is a restart, not a billion frames lost;
// a real gap still counts.
func TestFrameSeqJumpIsNotLoss(t *testing.T) {
	_, nc := startHub(t)
	_, ts := startWeb(t, Config{}, nc)
	cam := newCamera(t, nc, "front", 64, 48, 2, 0)
	for _, seq := range []uint64{1, 2, 999999999, 1000000000, 1000000003} {
		if err := nc.PublishMsg(natsFrame(cam, seq, time.Now())); err != nil {
			t.Fatal(err)
		}
	}
	nc.Flush()
	var missed uint64
	testenv.Eventually(t, 10*time.Second, "the frames to arrive", func() bool {
		var cams []struct {
			ID     string `json:"id"`
			Frames uint64 `json:"frames_received"`
			Missed uint64 `json:"frames_missed"`
		}
		if getJSON(t, ts.URL+"/api/cams", &cams) != http.StatusOK || len(cams) != 1 {
			return false
		}
		missed = cams[0].Missed
		return cams[0].Frames == 5
	})
	if missed != 2 {
		t.Fatalf("frames_missed %d, want 2 (the gap before 1000000003 only)", missed)
	}
}

// Frames of 300 made-up cameras fill the web viewer's cameras; a real
// camera that joins later (it reports its status) still shows.
func TestBogusCamerasDoNotCrowdOutRealOnes(t *testing.T) {
	_, nc := startHub(t)
	s, ts := startWeb(t, Config{}, nc)
	bogus := newCamera(t, nc, "x", 64, 48, 1, 0)
	for i := range MaxCameras + 44 {
		bogus.id = fmt.Sprintf("bogus%d", i)
		if err := nc.PublishMsg(natsFrame(bogus, 1, time.Now())); err != nil {
			t.Fatal(err)
		}
	}
	nc.Flush()
	testenv.Eventually(t, 10*time.Second, "the board to fill", func() bool { return s.ignored.Load() > 0 })

	real := newCamera(t, nc, "real", 64, 48, 1, 0)
	real.report("streaming")
	testenv.Eventually(t, 10*time.Second, "the real camera's report", func() bool { _, ok := s.dir.get("real"); return ok })
	real.frame()
	nc.Flush()
	testenv.Eventually(t, 10*time.Second, "the real camera's live frame", func() bool {
		var cams []struct {
			ID     string `json:"id"`
			Frames uint64 `json:"frames_received"`
		}
		getJSON(t, ts.URL+"/api/cams", &cams)
		for _, c := range cams {
			if c.ID == "real" && c.Frames == 1 {
				return true
			}
		}
		return false
	})
}
