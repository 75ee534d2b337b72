package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"camhub/internal/cli"
	"camhub/internal/testenv/cvtest"
	"camhub/internal/wire"
)

// storeEvent stores an ended event of camera front with a clip of n JPEG
// frames, as a detector does, and returns its id.
func storeEvent(t *testing.T, js jetstream.JetStream, start time.Time, n int) string {
	t.Helper()
	ctx := context.Background()
	eid := wire.EventID("front", start)
	jpeg := cvtest.JPEG(t, cvtest.Green, 320, 240)
	ev := wire.Event{ID: eid, Camera: "front", Start: start, Score: 0.05, Boxes: []wire.Box{{X: 0.1, Y: 0.1, W: 0.2, H: 0.3}},
		Clip: wire.Clip{Stream: wire.ClipsStream, Subject: wire.ClipFilter(eid, "front"), From: start.Add(-time.Second), Codec: wire.CodecJPEG}}
	pub := func(e wire.Event, id string) {
		b, _ := json.Marshal(e)
		m := &nats.Msg{Subject: wire.EventsSubject("front"), Data: b, Header: nats.Header{wire.HeaderMsgID: {id}}}
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	pub(ev, eid+".start")
	for i := range n {
		at := ev.Clip.From.Add(time.Duration(i) * 100 * time.Millisecond)
		m := &nats.Msg{Subject: wire.ClipSubject(eid, wire.FramesSubject("front")), Data: jpeg,
			Header: wire.Frame{Seq: uint64(i + 1), Time: at, Width: 320, Height: 240}.Header()}
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
		ev.Clip.Last = at
	}
	ev.End = start.Add(time.Duration(n-20) * 100 * time.Millisecond)
	ev.Clip.To, ev.Clip.First, ev.Clip.Frames, ev.Clip.Bytes = ev.End.Add(time.Second), ev.Clip.From, n, int64(n*len(jpeg))
	pub(ev, eid+".end")
	return eid
}

func TestEvents(t *testing.T) {
	url, js := hubJS(t)
	code, out, errOut := viewerRun("events", "--nats", url)
	if code != cli.ExitOK || !strings.Contains(out, "no events") {
		t.Fatalf("no events: exit %d, %q, %q", code, out, errOut)
	}
	eid := storeEvent(t, js, time.Now().Add(-time.Minute).Truncate(time.Millisecond), 40)
	storeEvent(t, js, time.Now().Add(-48*time.Hour).Truncate(time.Millisecond), 30) // too old for the default 24h

	code, out, errOut = viewerRun("events", "--nats", url, "--json")
	var evs []wire.Event
	if err := json.Unmarshal([]byte(out), &evs); err != nil || code != cli.ExitOK {
		t.Fatalf("events --json: exit %d, %v, %q", code, err, errOut)
	}
	if len(evs) != 1 || evs[0].ID != eid || evs[0].Open() || evs[0].Clip.Frames != 40 {
		t.Fatalf("events --json: %+v, want the ended event %s", evs, eid)
	}
	code, out, _ = viewerRun("events", "--nats", url, "--since", "72h", "--cam", "front")
	if code != cli.ExitOK || strings.Count(out, "-front") != 2 || !strings.Contains(out, "40 frames") {
		t.Errorf("events --since 72h: exit %d:\n%s", code, out)
	}
	code, out, _ = viewerRun("events", "--nats", url, "--cam", "back")
	if code != cli.ExitOK || !strings.Contains(out, "no events") {
		t.Errorf("events --cam back: exit %d: %s", code, out)
	}

	clip := filepath.Join(t.TempDir(), "clip.mp4")
	code, out, errOut = viewerRun("export", "--nats", url, "--event", eid, "--out", clip)
	if code != cli.ExitOK {
		t.Fatalf("export --event: exit %d: %s", code, errOut)
	}
	if n := frameCount(t, clip); n != 40 {
		t.Errorf("the clip has %d frames, want 40 (%s)", n, out)
	}
	for _, args := range [][]string{
		{"export", "--event", eid, "--cam", "front", "--out", clip},
		{"export", "--event", "a.b", "--out", clip},
		{"export", "--event", eid},
		{"events", "--cam", "a b"},
	} {
		if code, _, _ := viewerRun(append(args, "--nats", url)...); code != cli.ExitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, cli.ExitUsage)
		}
	}
	if code, _, errOut := viewerRun("export", "--nats", url, "--event", "20200101T000000000Z-front", "--out", clip); code != cli.ExitFailure || !strings.Contains(errOut, "no clip") {
		t.Errorf("export of an unknown event: exit %d: %s", code, errOut)
	}
}
