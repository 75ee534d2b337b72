//go:build cgo

package detector_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"camhub/detector"
	"camhub/hass"
	"camhub/hub/hubtest"
	"camhub/internal/motion"
	"camhub/internal/motion/motiontest"
	"camhub/internal/testenv"
	"camhub/internal/wire"
	"camhub/notify"
)

// From the fixture to the outside world: people walking in front of a JPEG
// camera make one event, which a webhook gets once as it starts and once
// as it ends, an ntfy topic gets with a JPEG, and an MQTT client (Debian's
// mosquitto_sub, as Home Assistant would) sees as motion ON then OFF on
// cams/front/motion.
func TestEventNotifiedAndOverMQTT(t *testing.T) {
	var mu sync.Mutex
	type got struct {
		path, event string
		body        []byte
	}
	var reqs []got
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		reqs = append(reqs, got{r.URL.Path, r.Header.Get(notify.HeaderEvent), b})
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	requests := func() []got {
		mu.Lock()
		defer mu.Unlock()
		return append([]got(nil), reqs...)
	}

	cfg := hubtest.Config()
	cfg.MQTT = "127.0.0.1:0"
	h, js := hubtest.StartJS(t, &cfg)
	_, port, _ := strings.Cut(h.MQTTAddr(), ":")
	var out testenv.Buffer
	sub := exec.Command("mosquitto_sub", "-h", "127.0.0.1", "-p", port, "-t", "cams/front/motion", "-t", "homeassistant/probe", "-v")
	sub.Stdout, sub.Stderr = &out, &out
	if err := sub.Start(); err != nil {
		t.Fatalf("mosquitto_sub (apt-get install mosquitto-clients): %v", err)
	}
	t.Cleanup(func() { _ = sub.Process.Kill(); _ = sub.Wait() })
	probe := testenv.Conn(t, h.ClientURL())
	testenv.Eventually(t, 10*time.Second, "mosquitto_sub subscribed", func() bool {
		_ = probe.Publish("homeassistant.probe", []byte("probe"))
		_ = probe.Flush()
		return strings.Contains(out.String(), "probe")
	})

	set := notify.DefaultSettings()
	set.ThumbWait = time.Second
	end := true
	n, err := notify.New(h.Conn(), notify.Config{Settings: set, Targets: notify.Targets{
		Webhooks: []notify.Webhook{{URL: srv.URL + "/hook", End: &end}},
		Ntfy:     []notify.Ntfy{{URL: srv.URL + "/topic"}},
	}}, testenv.Quiet())
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(testenv.Context(t, 30*time.Second)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	p, err := hass.New(h.Conn(), hass.Config{}, testenv.Quiet())
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(testenv.Context(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)

	c := newCamera(t, h.ClientURL(), false, motiontest.Walk(t, width, height))
	startDetector(t, testenv.Conn(t, h.ClientURL()))
	c.publish(len(c.data))
	ev := ended(t, js)

	testenv.Eventually(t, 20*time.Second, "the webhook's start and end, and ntfy's message", func() bool { return len(requests()) == 3 })
	var hook []string
	for _, r := range requests() {
		switch r.path {
		case "/hook":
			hook = append(hook, r.event)
			var b notify.WebhookBody
			if err := json.Unmarshal(r.body, &b); err != nil || b.ID != ev.ID || b.Camera != cam {
				t.Errorf("webhook body %s: %v", r.body, err)
			}
		case "/topic":
			if !wire.LooksLikeJPEG(r.body) {
				t.Errorf("ntfy got %d bytes, not a JPEG", len(r.body))
			}
		}
	}
	if strings.Join(hook, " ") != ev.ID+".start "+ev.ID+".end" {
		t.Errorf("webhook notifications %v, want the event's start, then its end", hook)
	}

	testenv.Eventually(t, 10*time.Second, "motion ON and OFF over MQTT", func() bool {
		return strings.Count(out.String(), "cams/front/motion ") == 2
	})
	var states []string
	for _, l := range strings.Split(out.String(), "\n") {
		if payload, ok := strings.CutPrefix(l, "cams/front/motion "); ok {
			m, err := wire.ParseMotion(wire.MotionSubject(cam), []byte(payload))
			if err != nil || m.Event != ev.ID {
				t.Fatalf("motion over MQTT %q: %v", payload, err)
			}
			states = append(states, m.State)
		}
	}
	if strings.Join(states, ",") != "ON,OFF" {
		t.Errorf("motion over MQTT: %v", states)
	}
	if s := p.Stats(); s.Snapshots == 0 {
		t.Errorf("no snapshot published on motion: %+v", s)
	}
}

// An H.264 camera's pictures exist only in the detector, which publishes
// one as a JPEG on cams.<id>.snapshot every Snapshots of capture time.
func TestH264Snapshots(t *testing.T) {
	h := hubtest.Start(t, nil)
	nc := testenv.Conn(t, h.ClientURL())
	snaps, err := nc.SubscribeSync(wire.SnapshotSubject(cam))
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	d, err := detector.New(testenv.Conn(t, h.ClientURL()), detector.Config{Defaults: motion.DefaultCamera(), Snapshots: time.Second}, testenv.Quiet())
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	c := newCamera(t, h.ClientURL(), true, motiontest.Walk(t, width, height))
	c.publish(int(5 * time.Second / motiontest.Interval)) // 5 s of capture time
	var times []time.Time
	for len(times) < 4 {
		m, err := snaps.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatalf("%d snapshots, want 4 or 5: %v", len(times), err)
		}
		at, err := time.Parse(time.RFC3339Nano, m.Header.Get(wire.HeaderTime))
		if err != nil || !wire.LooksLikeJPEG(m.Data) || m.Header.Get(wire.HeaderContentType) != wire.ContentTypeJPEG ||
			m.Header.Get(wire.HeaderWidth) != "640" || m.Header.Get(wire.HeaderHeight) != "480" {
			t.Fatalf("snapshot %d: %v %v, %d bytes", len(times), err, m.Header, len(m.Data))
		}
		if n := len(times); n > 0 && at.Sub(times[n-1]) < time.Second {
			t.Fatalf("snapshots %v apart, want at least 1 s", at.Sub(times[n-1]))
		}
		times = append(times, at)
	}
}
