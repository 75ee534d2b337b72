package hub_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"camhub/hub"
	"camhub/internal/ops"
	"camhub/internal/testenv"
	"camhub/internal/wire"
)

// The hub's /metrics shows its cameras and buffer; /healthz says it is well.
func TestMetricsAndHealth(t *testing.T) {
	h := start(t, config(), quiet())
	srv := httptest.NewServer(ops.Handler(h.Collector(), func() (bool, any) { return h.Health(context.Background()) }))
	defer srv.Close()
	nc := testenv.Conn(t, h.ClientURL())
	js, _ := jetstream.New(nc)
	publishStatus(t, nc, wire.Status{ID: "front", State: wire.StateStreaming, FPS: 12.5, FramesSent: 40, FramesDropped: 2, IntervalMS: 60000})
	for i := 1; i <= 3; i++ {
		m := &nats.Msg{Subject: wire.FramesSubject("front"), Data: make([]byte, 1000),
			Header: wire.Frame{Seq: uint64(i), Time: time.Now(), Width: 8, Height: 8}.Header()}
		if _, err := js.PublishMsg(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 10*time.Second, "front online", func() bool { return len(h.Online()) == 1 })

	resp, err := http.Get(srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	var health hub.Health
	json.NewDecoder(resp.Body).Decode(&health)
	resp.Body.Close()
	if resp.StatusCode != 200 || !health.Buffer || health.BufferFrames != 3 || len(health.CamerasOnline) != 1 {
		t.Fatalf("/healthz: %d %+v", resp.StatusCode, health)
	}

	resp, err = http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	value := func(name string) float64 {
		f := families[name]
		if f == nil || len(f.Metric) == 0 {
			t.Fatalf("no %s in /metrics", name)
		}
		m := f.Metric[0]
		if c := m.GetCounter(); c != nil {
			return c.GetValue()
		}
		return m.GetGauge().GetValue()
	}
	for name, want := range map[string]float64{
		"camhub_hub_camera_up": 1, "camhub_hub_camera_fps": 12.5, "camhub_hub_camera_frames_sent_total": 40,
		"camhub_hub_camera_frames_dropped_total": 2, "camhub_hub_buffer_frames": 3, "camhub_hub_buffer_limit_bytes": 1 << 30,
		"camhub_hub_buffer_full": 0, "camhub_hub_camera_bitrate_bits": 0,
	} {
		if got := value(name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if got := families["camhub_hub_camera_up"].Metric[0].Label[0].GetValue(); got != "front" {
		t.Errorf("camera label %q", got)
	}
}
