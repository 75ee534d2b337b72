package agent

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"camhub/internal/ops"
	"camhub/internal/testenv"
)

// scrape reads the agent's /metrics and returns the value of a metric for
// camera id.
func scrape(t *testing.T, url, name, id string) float64 {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.LegacyValidation)
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics is not Prometheus text: %v", err)
	}
	f := families[name]
	if f == nil {
		t.Fatalf("/metrics has no %s", name)
	}
	for _, m := range f.Metric {
		for _, l := range m.Label {
			if l.GetName() == "camera" && l.GetValue() == id {
				if c := m.GetCounter(); c != nil {
					return c.GetValue()
				}
				return m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("%s has no camera=%q", name, id)
	return 0
}

func health(t *testing.T, url string) (int, Health) {
	t.Helper()
	resp, err := http.Get(url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h Health
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatalf("/healthz: %v", err)
	}
	return resp.StatusCode, h
}

// /healthz turns 200 once the agent streams and 503 when it has stopped;
// /metrics counts the frames it sent.
func TestMetricsAndHealth(t *testing.T) {
	_, url := startNATS(t, nil)
	a, err := New(Config{ID: "front", Source: "testpattern", FPS: 30, Width: 160, Height: 120}, dial(t, url), testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(ops.Handler(a.Collector(), func() (bool, any) { return a.Health() }))
	defer srv.Close()
	if code, h := health(t, srv.URL); code != http.StatusServiceUnavailable || h.State != "starting" {
		t.Fatalf("before Run: %d %+v", code, h)
	}
	r := run(t, a)
	testenv.Eventually(t, 15*time.Second, "healthy, streaming and 5 frames sent", func() bool {
		code, h := health(t, srv.URL)
		return code == http.StatusOK && h.State == "streaming" && h.Connected && scrape(t, srv.URL, "camhub_agent_frames_sent_total", "front") >= 5
	})
	if up := scrape(t, srv.URL, "camhub_agent_up", "front"); up != 1 {
		t.Fatalf("camhub_agent_up = %v while streaming", up)
	}
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	if code, h := health(t, srv.URL); code != http.StatusServiceUnavailable || h.State != "stopped" {
		t.Fatalf("after Run: %d %+v", code, h)
	}
	st := a.Stats()
	if sent := scrape(t, srv.URL, "camhub_agent_frames_sent_total", "front"); sent != float64(st.Sent) {
		t.Fatalf("frames_sent_total %v, Stats().Sent %d", sent, st.Sent)
	}
}
