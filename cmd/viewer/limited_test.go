package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"camhub/hub/hubtest"
	"camhub/internal/testenv"
	"camhub/internal/testenv/cvtest"
)

// A viewer limited to front (users file: cams [front]) lists, snapshots
// and exports front: every read of the buffer names its camera in the
// request's subject (direct gets by subject, consumers filtered to the
// camera), so the hub's permissions allow it. back stays out of reach.
func TestLimitedViewerSnapshotsAndExports(t *testing.T) {
	dir := t.TempDir()
	for _, u := range []string{"admin", "frontonly"} {
		if err := os.WriteFile(filepath.Join(dir, u+".pass"), []byte("pw-"+u+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	users := "users:\n" +
		"  - {user: admin, role: admin, password_file: admin.pass}\n" +
		"  - {user: frontonly, role: viewer, cams: [front], password_file: frontonly.pass}\n"
	if err := os.WriteFile(filepath.Join(dir, "users.yaml"), []byte(users), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := hubtest.Config()
	cfg.Auth = filepath.Join(dir, "users.yaml")
	h := hubtest.Start(t, &cfg)
	js, err := jetstream.New(testenv.Conn(t, h.ClientURL(), nats.UserInfo("admin", "pw-admin")))
	if err != nil {
		t.Fatal(err)
	}
	red := cvtest.JPEG(t, cvtest.Red, 320, 240)
	end := time.Now()
	for i := range 20 {
		at := end.Add(-time.Duration(19-i) * 100 * time.Millisecond)
		store(t, js, "front", uint64(i+1), at, red, 320, 240)
		store(t, js, "back", uint64(i+1), at, red, 320, 240)
	}
	as := []string{"--nats", h.ClientURL(), "--user", "frontonly", "--password-file", filepath.Join(dir, "frontonly.pass")}

	if code, out, errs := viewerRun(append([]string{"list"}, as...)...); code != 0 {
		t.Fatalf("list: %d\n%s%s", code, out, errs)
	}
	snap := filepath.Join(dir, "front.jpg")
	if code, out, errs := viewerRun(append([]string{"snapshot", "--cam", "front", "--out", snap}, as...)...); code != 0 {
		t.Fatalf("snapshot of front: %d\n%s%s", code, out, errs)
	}
	if data, err := os.ReadFile(snap); err != nil || !bytes.Equal(data, red) {
		t.Fatalf("front's snapshot: %v", err)
	}
	clip := filepath.Join(dir, "front.avi")
	if code, out, errs := viewerRun(append([]string{"export", "--cam", "front", "--out", clip}, as...)...); code != 0 {
		t.Fatalf("export of front: %d\n%s%s", code, out, errs)
	}
	if n := frameCount(t, clip); n != 20 {
		t.Fatalf("front's clip has %d frames, want 20", n)
	}

	backSnap := filepath.Join(dir, "back.jpg")
	if code, _, _ := viewerRun(append([]string{"snapshot", "--cam", "back", "--out", backSnap}, as...)...); code == 0 {
		t.Fatal("frontonly took a snapshot of back")
	}
	if code, _, _ := viewerRun(append([]string{"export", "--cam", "back", "--out", filepath.Join(dir, "back.avi")}, as...)...); code == 0 {
		t.Fatal("frontonly exported back")
	}
	for _, f := range []string{backSnap, filepath.Join(dir, "back.avi")} {
		if _, err := os.Stat(f); err == nil {
			t.Fatalf("%s written", f)
		}
	}
}
