package camlist

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"camhub/internal/wire"
)

func TestEntryState(t *testing.T) {
	for _, tc := range []struct {
		state  string
		online bool
		want   string
	}{
		{wire.StateStreaming, true, StateLive},
		{wire.StateStreaming, false, StateOffline}, // silent
		{wire.StateStopped, false, StateOffline},
		{wire.StateSourceError, true, wire.StateSourceError},
		{wire.StateStarting, true, wire.StateStarting},
		{wire.StateSourceError, false, StateOffline},
	} {
		c := Camera{Status: wire.Status{State: tc.state}, Online: tc.online}
		if got := c.Entry(); got.State != tc.want || got.ReportedState != tc.state {
			t.Errorf("%s, online %v: state %s, reported %s; want %s", tc.state, tc.online, got.State, got.ReportedState, tc.want)
		}
	}
}

// Heard judges a camera online as wire.Status.Online does.
func TestHeard(t *testing.T) {
	now := time.Now()
	s := wire.Status{ID: "front", State: wire.StateStreaming, IntervalMS: 1000}
	if c := Heard(s, now.Add(-2*time.Second), now); !c.Online || c.Entry().State != StateLive {
		t.Errorf("2 s after a 1 s report: %+v", c)
	}
	if c := Heard(s, now.Add(-4*time.Second), now); c.Online || c.Entry().State != StateOffline {
		t.Errorf("4 s after a 1 s report: %+v", c)
	}
}

// What an entry leaves out of its JSON is what is unknown, and nothing
// else: a report with zero counters still says so.
func TestEntryJSON(t *testing.T) {
	b, err := json.Marshal(Entry{ID: "front", State: StateOffline})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"front","state":"offline","fps":0,"width":0,"height":0,"host":"","source":"","frames_sent":0,"frames_dropped":0}`
	if string(b) != want {
		t.Fatalf("unknown camera: %s\nwant %s", b, want)
	}
	seen := time.Date(2026, 11, 24, 8, 0, 0, 0, time.FixedZone("CET", 3600))
	c := Heard(wire.Status{ID: "front", State: wire.StateStopped, Version: "v1"}, seen, seen)
	b, err = json.Marshal(c.Entry())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"reported_state":"stopped"`, `"last_seen":"2026-11-24T07:00:00Z"`, `"version":"v1"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %s", b, want)
		}
	}
}
