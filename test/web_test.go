package test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"gocv.io/x/gocv"
)

// viewer --http serves the grid to browsers: the real binaries, a live
// camera in the API, a snapshot that decodes, and a clean stop.
func TestWebViewer(t *testing.T) {
	hub := start(t, nil, "hub", "--listen", "127.0.0.1:0", "--monitor", "", "--http", "127.0.0.1:0")
	url := hub.waitLog(`msg="NATS server ready" url=(nats://[0-9.:]+)`)
	hubOps := hub.waitLog(`msg="http listening" url=(http://[0-9.:]+)`)
	agent := start(t, nil, "agent", "--id", "front", "--source", "testpattern", "--nats", url, "--size", "320x240", "--http", "127.0.0.1:0")
	agentOps := agent.waitLog(`msg="http listening" url=(http://[0-9.:]+)`)
	web := start(t, nil, "viewer", "--http", "127.0.0.1:0", "--nats", url)
	base := web.waitLog(`msg="web viewer listening" url=(http://[0-9.:]+)`)

	get := func(path string) (int, []byte) {
		if !strings.HasPrefix(path, "http") {
			path = base + path
		}
		resp, err := http.Get(path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, body
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body := get("/api/cams")
		var cams []struct{ ID, State string }
		if code == 200 && json.Unmarshal(body, &cams) == nil && len(cams) == 1 && cams[0].ID == "front" && cams[0].State == "live" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/api/cams: %d %s", code, body)
		}
		time.Sleep(100 * time.Millisecond) // polling interval, not synchronisation
	}
	code, jpeg := get("/cams/front/snapshot.jpg")
	img, err := gocv.IMDecode(jpeg, gocv.IMReadColor)
	if err != nil || code != 200 || img.Cols() != 320 || img.Rows() != 240 {
		t.Fatalf("snapshot: %d, %d bytes, %dx%d, %v", code, len(jpeg), img.Cols(), img.Rows(), err)
	}
	img.Close()
	if code, body := get("/cams/nope/snapshot.jpg"); code != 404 {
		t.Fatalf("unknown camera: %d %s", code, body)
	}
	// the hub's and the agent's own /healthz and /metrics
	for _, ops := range []string{hubOps, agentOps} {
		if code, body := get(ops + "/healthz"); code != 200 {
			t.Fatalf("%s/healthz: %d %s", ops, code, body)
		}
		code, body := get(ops + "/metrics")
		if code != 200 || !strings.Contains(string(body), `camera="front"`) {
			t.Fatalf("%s/metrics: %d\n%s", ops, code, body)
		}
	}
	web.stop()
}
