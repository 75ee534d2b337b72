package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"camhub/internal/join"
)

// hubCmd runs the hub command in this process.
func hubCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut strings.Builder
	code = run(t.Context(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// add prints a token and nothing else on stdout; list, remove; a user's
// password goes to stderr once and only its hash is kept.
func TestCameraAndUserCommands(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	code, out, errOut := hubCmd(t, "camera", "add", "front", "--data", data, "--advertise", "hub.lan,192.168.1.10:4333")
	if code != 0 {
		t.Fatalf("camera add: %d %s", code, errOut)
	}
	tok, err := join.Parse(out)
	if err != nil || strings.Count(out, "\n") != 1 {
		t.Fatalf("stdout %q is not one token: %v", out, err)
	}
	if tok.User != "front" || tok.Role != "agent" || strings.Join(tok.URLs, ",") != "tls://hub.lan:4222,tls://192.168.1.10:4333" {
		t.Fatalf("token %v", tok)
	}
	if strings.Contains(errOut, tok.Seed) {
		t.Fatal("stderr shows the seed")
	}
	code, out, errOut = hubCmd(t, "user", "add", "family", "--role", "viewer", "--cams", "front,back", "--web-host", "viewer.lan,10.0.0.2", "--data", data)
	if code != 0 {
		t.Fatalf("user add: %d %s", code, errOut)
	}
	utok, err := join.Parse(out)
	if err != nil || utok.Role != "viewer" || strings.Join(utok.Cams, ",") != "front,back" || !utok.HasWeb() {
		t.Fatalf("user token %v, %v", utok, err)
	}
	if _, err := utok.WebCertificate(); err != nil {
		t.Fatal(err)
	}
	_, pw, _ := strings.Cut(errOut, `password for "family" (shown once, only its hash is kept): `)
	pw, _, _ = strings.Cut(pw, "\n")
	users, _ := os.ReadFile(filepath.Join(data, "users.yaml"))
	if len(pw) < 20 || strings.Contains(string(users), pw) || !strings.Contains(string(users), "password: $2") {
		t.Fatalf("password %q; users file:\n%s", pw, users)
	}
	if code, out, _ = hubCmd(t, "camera", "list", "--data", data); code != 0 || !strings.Contains(out, "front") || strings.Contains(out, "family") {
		t.Fatalf("camera list: %d\n%s", code, out)
	}
	if code, out, _ = hubCmd(t, "user", "list", "--data", data); code != 0 || !strings.Contains(out, "family  viewer  front,back  token+password") {
		t.Fatalf("user list: %d\n%s", code, out)
	}
	if code, _, errOut = hubCmd(t, "camera", "add", "front", "--data", data); code != 1 || !strings.Contains(errOut, "already exists") {
		t.Fatalf("adding twice: %d %s", code, errOut)
	}
	if code, _, errOut = hubCmd(t, "camera", "remove", "family", "--data", data); code != 1 || !strings.Contains(errOut, "hub user remove") {
		t.Fatalf("removing a user as a camera: %d %s", code, errOut)
	}
	if code, _, errOut = hubCmd(t, "camera", "remove", "front", "--data", data); code != 0 {
		t.Fatalf("remove: %d %s", code, errOut)
	}
	if code, out, _ = hubCmd(t, "camera", "list", "--data", data); strings.Contains(out, "front") {
		t.Fatalf("front still listed:\n%s", out)
	}
	for _, args := range [][]string{{"camera"}, {"camera", "add"}, {"camera", "fly", "x"}, {"user", "add", "x", "--role", "agent"}, {"camera", "add", "a.b", "--data", data}} {
		if code, _, _ := hubCmd(t, args...); code == 0 {
			t.Errorf("hub %v: exit 0", args)
		}
	}
	if code, out, _ := hubCmd(t, "camera", "--help"); code != 0 || !strings.Contains(out, "agent --join-file") {
		t.Fatalf("camera --help: %d\n%s", code, out)
	}
}

// Secured unless told otherwise.
func TestSecureByDefault(t *testing.T) {
	for _, tc := range []struct {
		args []string
		data string
	}{
		{nil, "camhub-data"},
		{[]string{"--data", "/var/lib/camhub"}, "/var/lib/camhub"},
		{[]string{"--insecure"}, ""},
		{[]string{"--auth", "users.yaml"}, ""},
		{[]string{"--nats", "nats://a:4222"}, ""},
	} {
		o, err := parse(tc.args, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if o.hub.Data != tc.data {
			t.Errorf("hub %v: data %q, want %q", tc.args, o.hub.Data, tc.data)
		}
	}
	if _, err := parse([]string{"--leaf-listen", ":7422"}, io.Discard); err == nil || !strings.Contains(err.Error(), "--insecure") {
		t.Fatalf("leaf without --insecure: %v", err)
	}
	if _, err := parse([]string{"--leaf-listen", ":7422", "--insecure"}, io.Discard); err != nil {
		t.Fatal(err)
	}
}
