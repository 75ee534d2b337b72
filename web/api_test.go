package web

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"camhub/internal/camlist"
	"camhub/internal/testenv"
	"camhub/internal/wire"
)

// camsByID gets /api/cams.
func camsByID(t *testing.T, base string) map[string]Camera {
	t.Helper()
	var list []Camera
	if st := getJSON(t, base+"/api/cams", &list); st != http.StatusOK {
		t.Fatalf("GET /api/cams: %d", st)
	}
	m := make(map[string]Camera)
	for _, c := range list {
		m[c.ID] = c
	}
	return m
}

func TestAPI(t *testing.T) {
	_, nc := startHub(t)

	// "early" sent frames before the web server started: its snapshot
	// comes from the hub's buffer.
	early := newCamera(t, nc, "early", 64, 48, 3, 0)
	early.report(wire.StateStreaming)
	early.frame()
	early.frame()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	stopped := newCamera(t, nc, "gone", 64, 48, 1, 0)
	stopped.report(wire.StateStopped)

	s, ts := startWeb(t, Config{}, nc)
	front := newCamera(t, nc, "front", 160, 120, 6, 0)
	front.report(wire.StateStreaming)
	quiet := newCamera(t, nc, "back", 64, 48, 1, 0) // reports, sends no frame
	quiet.report(wire.StateStreaming)
	for range 3 {
		front.frame()
	}
	front.seq += 2 // two frames lost on the way
	front.frame()

	var cams map[string]Camera
	testenv.Eventually(t, 10*time.Second, "the camera list", func() bool {
		cams = camsByID(t, ts.URL)
		return cams["front"].Frames == 4 && len(cams) == 4
	})

	f := cams["front"]
	if f.State != camlist.StateLive || f.Host != "test-host" || f.Width != 160 || f.Height != 120 || f.FPS != 10 {
		t.Errorf("front: %+v", f)
	}
	if f.Drops != 2 || f.FrameSeq != 6 || f.FrameWidth != 160 || f.FrameHeight != 120 || f.FrameAgeMS == nil || *f.FrameAgeMS < 0 || *f.FrameAgeMS > 5000 || !f.Signal {
		t.Errorf("front frames: missed %d, seq %d, age %v, signal %v", f.Drops, f.FrameSeq, f.FrameAgeMS, f.Signal)
	}
	if f.RxFPS <= 0 || f.LastSeen.IsZero() || f.Bytes == 0 {
		t.Errorf("front: rx_fps %v, last_seen %v, bytes %d", f.RxFPS, f.LastSeen, f.Bytes)
	}
	if b := cams["back"]; b.State != camlist.StateLive || b.FrameAgeMS != nil || b.Signal {
		t.Errorf("back (reports, no frames): %+v", b)
	}
	if g := cams["gone"]; g.State != camlist.StateOffline || g.ReportedState != wire.StateStopped {
		t.Errorf("gone (stopped): %+v", g)
	}
	// The JSON has the fields `viewer list --json` has.
	res, err := http.Get(ts.URL + "/api/cams")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, key := range []string{`"id"`, `"state"`, `"fps"`, `"width"`, `"height"`, `"host"`, `"last_seen"`, `"frame_age_ms"`} {
		if !bytes.Contains(body, []byte(key)) {
			t.Errorf("/api/cams has no %s: %s", key, body)
		}
	}

	t.Run("snapshot", func(t *testing.T) {
		res, err := http.Get(ts.URL + "/cams/front/snapshot.jpg?download=1")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		got, _ := io.ReadAll(res.Body)
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != wire.ContentTypeJPEG {
			t.Fatalf("%d %s", res.StatusCode, res.Header.Get("Content-Type"))
		}
		if !bytes.Equal(got, front.pics[5%len(front.pics)]) || res.Header.Get(wire.HeaderSeq) != "6" {
			t.Errorf("snapshot is not the newest frame (Frame-Seq %s)", res.Header.Get(wire.HeaderSeq))
		}
		if cd := res.Header.Get("Content-Disposition"); !strings.HasPrefix(cd, `attachment; filename="front-`) {
			t.Errorf("Content-Disposition %q", cd)
		}
		// from the buffer: the server never received early's frames
		if s.live.newest("early") != nil {
			t.Fatal("early's frames reached the live board")
		}
		res, err = http.Get(ts.URL + "/cams/early/snapshot.jpg")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		got, _ = io.ReadAll(res.Body)
		if res.StatusCode != 200 || !bytes.Equal(got, early.pics[1]) || res.Header.Get(wire.HeaderSeq) != "2" {
			t.Errorf("snapshot from the buffer: %d, Frame-Seq %s", res.StatusCode, res.Header.Get(wire.HeaderSeq))
		}
	})

	t.Run("errors", func(t *testing.T) {
		for _, tc := range []struct {
			method, path string
			status       int
			says         string
		}{
			{"GET", "/cams/nope/snapshot.jpg", 404, "unknown camera"},
			{"GET", "/cams/nope/stream.mjpg", 404, "unknown camera"},
			{"GET", "/cams/a.b/stream.mjpg", 404, "camera id"},
			{"GET", "/cams/back/snapshot.jpg", 404, "no frame"},
			{"GET", "/api/stream?cams=nope", 404, "unknown camera"},
			{"GET", "/nowhere", 404, "no such page"},
			{"GET", "/cams/front/stream.mjpg?since=abc", 400, "since"},
			{"GET", "/cams/front/stream.mjpg?since=-3s", 400, "since"},
			{"GET", "/cams/front/stream.mjpg?speed=0", 400, "speed"},
			{"GET", "/cams/front/stream.mjpg?fps=-1", 400, "fps"},
			{"GET", "/cams/front/stream.mjpg?since=%zz", 400, "query"},
			{"GET", "/api/stream?cams=a*b", 400, "camera id"},
			{"GET", "/cams/front/snapshot.jpg?download=maybe", 400, "download"},
			{"POST", "/api/cams", 405, "not allowed"},
		} {
			req, _ := http.NewRequest(tc.method, ts.URL+tc.path, nil)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tc.status || res.Header.Get("Content-Type") != "application/json" ||
				!bytes.Contains(body, []byte(`"error"`)) || !bytes.Contains(body, []byte(tc.says)) {
				t.Errorf("%s %s: %d %s %s; want %d, a JSON error saying %q",
					tc.method, tc.path, res.StatusCode, res.Header.Get("Content-Type"), body, tc.status, tc.says)
			}
		}
	})

	t.Run("healthz", func(t *testing.T) {
		var h health
		if st := getJSON(t, ts.URL+"/healthz", &h); st != 200 || h.Status != "ok" || h.NATS != "connected" || h.Cameras == nil || *h.Cameras != 4 {
			t.Errorf("%d %+v", st, h)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		res, err := http.Get(ts.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
			t.Errorf("Content-Type %q", ct)
		}
		p := expfmt.NewTextParser(model.LegacyValidation)
		fams, err := p.TextToMetricFamilies(res.Body)
		if err != nil {
			t.Fatalf("not Prometheus text: %v", err)
		}
		want := map[string]float64{
			"camhub_web_camera_frames_total":        4,
			"camhub_web_camera_frames_missed_total": 2,
			"camhub_web_camera_bytes_total":         float64(f.Bytes),
			"camhub_web_camera_up":                  1,
		}
		for name, v := range want {
			if got, ok := sample(fams, name, "front"); !ok || got != v {
				t.Errorf("%s{camera=front} = %v (present %v), want %v", name, got, ok, v)
			}
		}
		if got, ok := sample(fams, "camhub_web_camera_up", "gone"); !ok || got != 0 {
			t.Errorf("camhub_web_camera_up{camera=gone} = %v, %v", got, ok)
		}
		for _, name := range []string{"camhub_web_camera_fps", "camhub_web_camera_frame_age_seconds"} {
			if got, ok := sample(fams, name, "front"); !ok || got < 0 {
				t.Errorf("%s{camera=front} = %v, %v", name, got, ok)
			}
		}
		for _, name := range []string{"camhub_web_clients", "camhub_web_frames_sent_total", "camhub_web_frames_skipped_total",
			"camhub_web_clients_dropped_total", "process_cpu_seconds_total", "go_goroutines"} {
			if fams[name] == nil {
				t.Errorf("no %s", name)
			}
		}
	})
}

// sample is the value of metric name for camera id.
func sample(fams map[string]*dto.MetricFamily, name, id string) (float64, bool) {
	fam := fams[name]
	if fam == nil {
		return 0, false
	}
	for _, m := range fam.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "camera" && l.GetValue() == id {
				switch {
				case m.Counter != nil:
					return m.Counter.GetValue(), true
				case m.Gauge != nil:
					return m.Gauge.GetValue(), true
				}
			}
		}
	}
	return 0, false
}

func TestConfig(t *testing.T) {
	_, nc := startHub(t)
	for name, cfg := range map[string]Config{
		"bad id":    {Cams: []string{"a.b"}},
		"twice":     {Cams: []string{"a", "a"}},
		"negative":  {WriteTimeout: -1},
		"too many":  {Cams: manyIDs(MaxCameras + 1)},
		"no replay": {MaxReplays: -2},
	} {
		if _, err := New(cfg, nc, nil); err == nil {
			t.Errorf("%s: New accepted %+v", name, cfg)
		}
	}
	if _, err := New(Config{}, nil, nil); err == nil {
		t.Error("New accepted no connection")
	}
	s, err := New(Config{}, nc, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Run(context.Background()); !errors.Is(err, ErrConfig) {
		t.Errorf("Run with no address: %v", err)
	}
	s.Close()
	s.Close() // twice is fine
}

func manyIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = "cam" + strings.Repeat("x", i%60) + string(rune('a'+i%26)) + string(rune('a'+i/26%26))
	}
	return ids
}

// With a camera list, only those cameras exist, in that order, and a
// configured camera that never reported is listed offline.
func TestConfiguredCams(t *testing.T) {
	_, nc := startHub(t)
	_, ts := startWeb(t, Config{Cams: []string{"zeta", "alpha"}}, nc)
	other := newCamera(t, nc, "other", 32, 32, 1, 0)
	other.report(wire.StateStreaming)
	zeta := newCamera(t, nc, "zeta", 32, 32, 1, 0)
	zeta.report(wire.StateStreaming)
	other.frame()
	zeta.frame()
	var list []Camera
	testenv.Eventually(t, 10*time.Second, "zeta's frame", func() bool {
		list = nil
		getJSON(t, ts.URL+"/api/cams", &list)
		return len(list) == 2 && list[0].Frames == 1
	})

	if list[0].ID != "zeta" || list[1].ID != "alpha" || list[1].State != camlist.StateOffline || list[0].State != camlist.StateLive {
		t.Errorf("list %+v", list)
	}
	var e apiError
	if st := getJSON(t, ts.URL+"/cams/other/snapshot.jpg", &e); st != 404 {
		t.Errorf("a camera not listed: %d %+v", st, e)
	}
}
