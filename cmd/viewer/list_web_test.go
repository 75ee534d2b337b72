package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"camhub/agent"
	"camhub/hub/hubtest"
	"camhub/internal/camlist"
	"camhub/internal/testenv"
	"camhub/web"
)

// runAgent runs a real agent of camera id on url until the returned stop is
// called (or the test ends); stop waits for its stopped report.
func runAgent(t *testing.T, url, id, source string) (stop func()) {
	t.Helper()
	a, err := agent.New(agent.Config{
		ID: id, Source: source, FPS: 5, Width: 160, Height: 120, ReportInterval: time.Second,
	}, testenv.Conn(t, url), testenv.Quiet())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.Run(ctx)
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

// objects decodes a JSON array of objects.
func objects(t *testing.T, data []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatalf("not a JSON array of objects: %v\n%s", err, data)
	}
	return out
}

// sameShared compares a `viewer list --json` entry with the /api/cams entry
// of the same camera, field by field: every field of camlist.Entry present
// in either must be present in both with the same value. last_seen is when
// the hub stored the report for one and when the web server received it for
// the other: the same report, so within a second.
func sameShared(cli, api map[string]any) error {
	var diffs []string
	for _, f := range reflect.VisibleFields(reflect.TypeFor[camlist.Entry]()) {
		key, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		a, inCLI := cli[key]
		b, inAPI := api[key]
		switch {
		case inCLI != inAPI:
			diffs = append(diffs, fmt.Sprintf("%s: in viewer list %v, in /api/cams %v", key, inCLI, inAPI))
		case key == "last_seen" && inCLI:
			ta, errA := time.Parse(time.RFC3339Nano, fmt.Sprint(a))
			tb, errB := time.Parse(time.RFC3339Nano, fmt.Sprint(b))
			if errA != nil || errB != nil || ta.Sub(tb).Abs() > time.Second {
				diffs = append(diffs, fmt.Sprintf("last_seen: %v and %v", a, b))
			}
		case !reflect.DeepEqual(a, b):
			diffs = append(diffs, fmt.Sprintf("%s: %v and %v", key, a, b))
		}
	}
	if len(diffs) > 0 {
		return fmt.Errorf("%s", strings.Join(diffs, "; "))
	}
	return nil
}

// `viewer list --json` and the web viewer's /api/cams say the same of every
// camera, for the same hub state: real agents streaming, stopped and failing
// report to a real hub.
func TestListJSONMatchesWebAPI(t *testing.T) {
	h := hubtest.Start(t, nil)
	url := h.ClientURL()
	runAgent(t, url, "front", "testpattern")
	runAgent(t, url, "back", "testpattern")
	notVideo := filepath.Join(t.TempDir(), "broken.avi")
	if err := os.WriteFile(notVideo, []byte("not a video"), 0o644); err != nil {
		t.Fatal(err)
	}
	runAgent(t, url, "broken", notVideo)
	stopGone := runAgent(t, url, "gone", "testpattern")

	s, err := web.New(web.Config{}, testenv.Conn(t, url), testenv.Quiet())
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	t.Cleanup(s.Close)
	apiCams := func() []map[string]any {
		res, err := http.Get(ts.URL + "/api/cams")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var body json.RawMessage
		if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		return objects(t, body)
	}
	states := func(list []map[string]any) map[string]any {
		m := map[string]any{}
		for _, c := range list {
			m[fmt.Sprint(c["id"])] = c["state"]
		}
		return m
	}
	testenv.Eventually(t, 30*time.Second, "gone streaming", func() bool {
		return states(objects(t, []byte(list(t, "--nats", url, "--json"))))["gone"] == camlist.StateLive
	})
	stopGone()

	want := map[string]any{"front": "live", "back": "live", "broken": "source-error", "gone": "offline"}
	var mismatch string
	t.Cleanup(func() {
		if t.Failed() {
			t.Log("last difference: ", mismatch)
		}
	})
	testenv.Eventually(t, 30*time.Second, "viewer list --json and /api/cams agreeing", func() bool {
		// A report may come between two readings: compare only when
		// the hub's list did not change around the web's.
		before := list(t, "--nats", url, "--json")
		api := apiCams()
		after := list(t, "--nats", url, "--json")
		if before != after {
			mismatch = "a report came in between"
			return false
		}
		cli := objects(t, []byte(before))
		if got := states(cli); !reflect.DeepEqual(got, want) {
			mismatch = fmt.Sprintf("viewer list states %v, want %v", got, want)
			return false
		}
		if len(api) != len(cli) {
			mismatch = fmt.Sprintf("%d cameras in viewer list, %d in /api/cams", len(cli), len(api))
			return false
		}
		for i := range cli {
			if err := sameShared(cli[i], api[i]); err != nil || cli[i]["id"] != api[i]["id"] {
				mismatch = fmt.Sprintf("camera %v / %v: %v", cli[i]["id"], api[i]["id"], err)
				return false
			}
		}
		return true
	})

	// The web's additions are there, and the shared fields of the
	// stopped camera are all the report's.
	api := apiCams()
	for _, c := range api {
		for _, key := range []string{"signal", "rx_fps", "frame_age_ms", "frames_received"} {
			if _, ok := c[key]; !ok {
				t.Errorf("/api/cams camera %v has no %s", c["id"], key)
			}
		}
	}
	ids := make([]string, len(api))
	for i, c := range api {
		ids[i] = fmt.Sprint(c["id"])
	}
	if !slices.Equal(ids, []string{"back", "broken", "front", "gone"}) {
		t.Errorf("/api/cams lists %v", ids)
	}
	if g := api[3]; g["reported_state"] != "stopped" || g["host"] == "" {
		t.Errorf("gone: %v", g)
	}
}
