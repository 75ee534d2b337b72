package ops

import (
	"bytes"
	"context"
	"net"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestHealthURL(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{in: "9100", want: "http://127.0.0.1:9100/healthz"},
		{in: ":9100", want: "http://127.0.0.1:9100/healthz"},
		{in: "0.0.0.0:8080", want: "http://127.0.0.1:8080/healthz"},
		{in: "[::]:8080", want: "http://127.0.0.1:8080/healthz"},
		{in: "10.0.0.2:9101", want: "http://10.0.0.2:9101/healthz"},
		{in: "https://:8443", want: "https://127.0.0.1:8443/healthz"},
		{in: "http://localhost:9100/other", want: "http://localhost:9100/other"},
		{in: "", err: "no address"},
		{in: "abc", err: "not a port"},
		{in: "70000", err: "not a port"},
		{in: "host:", err: "not a port"},
		{in: "ftp://x:1", err: "not an http"},
	} {
		u, err := HealthURL(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("HealthURL(%q) = %v, %v; want error %q", tc.in, u, err, tc.err)
			}
			continue
		}
		if err != nil || u.String() != tc.want {
			t.Errorf("HealthURL(%q) = %v, %v; want %s", tc.in, u, err, tc.want)
		}
	}
}

// The command against a real /healthz (Handler) that turns unhealthy, and
// against a port nothing listens on.
func TestHealthcheck(t *testing.T) {
	var ok atomic.Bool
	ok.Store(true)
	srv := httptest.NewServer(Handler(prometheus.NewRegistry(), func() (bool, any) { return ok.Load(), map[string]bool{"ok": ok.Load()} }))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	run := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := Healthcheck(context.Background(), "hub", args, &out, &errb)
		return code, out.String() + errb.String()
	}
	if code, out := run(port); code != 0 {
		t.Fatalf("healthy: exit %d: %s", code, out)
	}
	ok.Store(false)
	if code, out := run(":" + port); code != 1 || !strings.Contains(out, "503") {
		t.Fatalf("unhealthy: exit %d: %s", code, out)
	}
	t.Setenv("CAMHUB_HTTP", ":"+port)
	ok.Store(true)
	if code, out := run(); code != 0 {
		t.Fatalf("from CAMHUB_HTTP: exit %d: %s", code, out)
	}
	srv.Close()
	if code, out := run(port); code != 1 || !strings.Contains(out, "refused") {
		t.Fatalf("nothing listening: exit %d: %s", code, out)
	}
	if code, _ := run("1", "2"); code != 2 {
		t.Fatalf("two addresses: exit %d, want 2", code)
	}
	if code, out := run("--help"); code != 0 || !strings.Contains(out, "hub healthcheck [ADDR]") {
		t.Fatalf("--help: exit %d: %s", code, out)
	}
}

// An https URL is checked without verifying the certificate (the process
// checks itself).
func TestHealthcheckTLS(t *testing.T) {
	srv := httptest.NewTLSServer(Handler(prometheus.NewRegistry(), func() (bool, any) { return true, nil }))
	defer srv.Close()
	var errb bytes.Buffer
	if code := Healthcheck(context.Background(), "viewer", []string{srv.URL}, &errb, &errb); code != 0 {
		t.Fatalf("https: exit %d: %s", code, errb.String())
	}
}
