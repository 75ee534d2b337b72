package wire

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func FuzzParseEvent(f *testing.F) {
	start := time.Date(2026, 12, 1, 6, 0, 31, 123e6, time.UTC)
	eid := EventID("front", start)
	good, _ := json.Marshal(Event{ID: eid, Camera: "front", Start: start, Score: 0.1, Boxes: []Box{{0.1, 0.2, 0.3, 0.4}},
		Clip: Clip{Stream: ClipsStream, Subject: ClipFilter(eid, "front"), From: start.Add(-5 * time.Second)}})
	ended, _ := json.Marshal(Event{ID: eid, Camera: "front", Start: start, End: start.Add(9 * time.Second), Boxes: []Box{}})
	for _, s := range []string{string(good), string(ended), `{}`, `{"id":"x","camera":"front","start":"2026-12-01T06:00:00Z","score":2}`,
		`{"id":"a.b","camera":"front","start":"2026-12-01T06:00:00Z"}`, `{"id":"x","camera":"back","start":"2026-12-01T06:00:00Z"}`,
		`{"id":"x","camera":"front","start":"2026-12-01T06:00:00Z","boxes":[{"x":0.9,"w":0.5}]}`, `null`, `[`} {
		f.Add("cams.front.events", []byte(s))
	}
	f.Add("cams.front.frames", good)
	f.Add("cams..events", good)
	f.Fuzz(func(t *testing.T, subject string, data []byte) {
		e, err := ParseEvent(subject, data)
		if err != nil {
			if !errors.Is(err, ErrBadEvent) {
				t.Fatalf("error %v does not wrap ErrBadEvent", err)
			}
			return
		}
		if EventsSubject(e.Camera) != subject || ValidateEventID(e.ID) != nil || e.Start.IsZero() {
			t.Fatalf("accepted %+v on %s", e, subject)
		}
		for _, b := range e.Boxes {
			if !b.valid() {
				t.Fatalf("accepted box %+v", b)
			}
		}
		// what was accepted is accepted again once written
		out, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseEvent(subject, out); err != nil {
			t.Fatalf("%s written as %s: %v", data, out, err)
		}
	})
}

func FuzzParseMotion(f *testing.F) {
	for _, s := range []string{`{"camera":"front","state":"ON","time":"2026-12-01T06:00:00Z","event":"x"}`,
		`{"camera":"front","state":"OFF"}`, `{"camera":"front","state":"on"}`, `{}`, `x`} {
		f.Add("cams.front.motion", []byte(s))
	}
	f.Fuzz(func(t *testing.T, subject string, data []byte) {
		m, err := ParseMotion(subject, data)
		if err != nil {
			if !errors.Is(err, ErrBadEvent) {
				t.Fatalf("error %v does not wrap ErrBadEvent", err)
			}
			return
		}
		if MotionSubject(m.Camera) != subject || (m.State != MotionOn && m.State != MotionOff) {
			t.Fatalf("accepted %+v on %s", m, subject)
		}
	})
}

func TestEventSubjects(t *testing.T) {
	start := time.Date(2026, 12, 1, 6, 0, 31, 123456789, time.UTC)
	eid := EventID("front", start)
	if eid != "20261201T060031123Z-front" {
		t.Errorf("EventID = %q", eid)
	}
	if err := ValidateEventID(eid); err != nil {
		t.Error(err)
	}
	s := ClipSubject(eid, VideoSubject("front", true))
	if s != "clips."+eid+".front.video.key" || CamsSubject(eid, s) != "cams.front.video.key" {
		t.Errorf("ClipSubject %q, CamsSubject %q", s, CamsSubject(eid, s))
	}
	if id, ok := EventCamera(eid); !ok || id != "front" {
		t.Errorf("EventCamera(%q) = %q, %v", eid, id, ok)
	}
	if _, ok := EventCamera("front"); ok {
		t.Error("EventCamera of a camera id")
	}
	if CamsSubject("other", s) != "" {
		t.Error("CamsSubject of another event")
	}
}
