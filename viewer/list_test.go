package viewer

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"camhub/internal/camlist"
	"camhub/internal/wire"
)

func TestWriteTable(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.Local)
	cams := []camlist.Camera{
		{Status: wire.Status{ID: "back", Host: "pi-back", State: wire.StateStreaming, FPS: 14.96, Width: 1280, Height: 720}, LastSeen: now.Add(-2 * time.Second), Online: true},
		{Status: wire.Status{ID: "front", State: wire.StateStopped}, LastSeen: now.Add(-3 * time.Hour), Online: false},
		{Status: wire.Status{ID: "garage", Host: "nuc", State: wire.StateSourceError, Error: "no such device"}, LastSeen: now.Add(-72 * time.Hour), Online: true},
	}
	var b bytes.Buffer
	if err := WriteTable(&b, cams, now); err != nil {
		t.Fatal(err)
	}
	want := `ID      STATE                          FPS   SIZE      HOST     LAST SEEN
back    live                           15.0  1280x720  pi-back  2s ago (11:59:58)
front   offline                        0.0   -         -        3h ago (09:00:00)
garage  source-error (no such device)  0.0   -         nuc      3d ago (Nov 21 12:00:00)
`
	if b.String() != want {
		t.Fatalf("table:\n%s\nwant:\n%s", b.String(), want)
	}

	b.Reset()
	if err := WriteJSON(&b, cams); err != nil {
		t.Fatal(err)
	}
	var entries []camlist.Entry
	if err := json.Unmarshal(b.Bytes(), &entries); err != nil {
		t.Fatal(err)
	}
	if len(entries) != 3 || entries[0].State != "live" || entries[1].ReportedState != "stopped" ||
		!entries[0].LastSeen.Equal(now.Add(-2*time.Second)) || !strings.Contains(b.String(), `"last_seen"`) {
		t.Fatalf("JSON:\n%s", b.String())
	}
}

// Cameras at several sites: a SITE column, "-" for a camera without one.
func TestWriteTableSites(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.Local)
	cams := []camlist.Camera{
		{Status: wire.Status{ID: "gate", Site: "farm", Host: "pi1", State: wire.StateStreaming, FPS: 10, Width: 640, Height: 480}, LastSeen: now.Add(-time.Second), Online: true},
		{Status: wire.Status{ID: "hall", Host: "nuc", State: wire.StateStreaming, FPS: 15, Width: 640, Height: 480}, LastSeen: now.Add(-time.Second), Online: true},
	}
	var b bytes.Buffer
	if err := WriteTable(&b, cams, now); err != nil {
		t.Fatal(err)
	}
	want := `ID    SITE  STATE  FPS   SIZE     HOST  LAST SEEN
gate  farm  live   10.0  640x480  pi1   1s ago (11:59:59)
hall  -     live   15.0  640x480  nuc   1s ago (11:59:59)
`
	if b.String() != want {
		t.Fatalf("table:\n%s\nwant:\n%s", b.String(), want)
	}
	b.Reset()
	if err := WriteJSON(&b, cams); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `"site": "farm"`) || strings.Count(b.String(), `"site"`) != 1 {
		t.Fatalf("JSON:\n%s", b.String())
	}
}

func TestFormatAge(t *testing.T) {
	for d, want := range map[time.Duration]string{
		35 * time.Millisecond:   "35ms",
		-5 * time.Millisecond:   "-5ms", // the camera's clock is ahead
		1500 * time.Millisecond: "1.5s",
		185 * time.Second:       "3m05s",
		2 * time.Hour:           "2h0m0s",
	} {
		if got := formatAge(d); got != want {
			t.Errorf("formatAge(%v) = %q, want %q", d, got, want)
		}
	}
}
