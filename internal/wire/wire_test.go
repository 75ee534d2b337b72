package wire

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

func TestValidateID(t *testing.T) {
	good := []string{"front", "a", "Cam_01-b", strings.Repeat("x", 64)}
	bad := []string{"", strings.Repeat("x", 65), "front.door", "cam*", "cam>", "back yard", "käfer", "a/b", "tab\t"}
	for _, id := range good {
		if err := ValidateID(id); err != nil {
			t.Errorf("ValidateID(%q) = %v", id, err)
		}
	}
	for _, id := range bad {
		err := ValidateID(id)
		if !errors.Is(err, ErrInvalidID) || !strings.Contains(err.Error(), IDRule) {
			t.Errorf("ValidateID(%q) = %v, want ErrInvalidID naming the rule", id, err)
		}
	}
}

func TestSubjects(t *testing.T) {
	if FramesSubject("front") != "cams.front.frames" || StatusSubject("front") != "cams.front.status" {
		t.Fatal(FramesSubject("front"), StatusSubject("front"))
	}
	// The names docs/PROTOCOL.md gives: the rest of camhub uses the
	// constants, so this is where they are held to the document.
	for got, want := range map[string]string{
		AllFrames: "cams.*.frames", AllStatus: "cams.*.status", FramesStream: "CAMS", StatusStream: "CAMS_STATUS",
		HeaderContentType: "Content-Type", HeaderSeq: "Frame-Seq", HeaderTime: "Frame-Time",
		HeaderWidth: "Frame-Width", HeaderHeight: "Frame-Height", ContentTypeJPEG: "image/jpeg",
	} {
		if got != want {
			t.Errorf("%q, PROTOCOL.md says %q", got, want)
		}
	}
	for _, tc := range []struct{ subject, id, kind string }{
		{"cams.front.frames", "front", "frames"},
		{"cams.back-2.status", "back-2", "status"},
		{"cams.front", "", ""},
		{"cams.front.frames.x", "", ""},
		{"other.front.frames", "", ""},
		{"cams..frames", "", ""},
		{"cams.a*b.frames", "", ""},
	} {
		id, kind, err := ParseSubject(tc.subject)
		if (err == nil) != (tc.id != "") || id != tc.id || kind != tc.kind {
			t.Errorf("ParseSubject(%q) = %q, %q, %v", tc.subject, id, kind, err)
		}
	}
}

func TestFrameHeaderRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 24, 8, 0, 5, 123456789, time.FixedZone("x", 3600))
	f := Frame{Seq: 42, Time: at, Width: 640, Height: 480}
	h := f.Header()
	if got := h.Get(HeaderTime); got != "2026-11-24T07:00:05.123456789Z" {
		t.Fatalf("Frame-Time %q: want UTC with nanoseconds", got)
	}
	if got := string(AppendTime([]byte("at "), f.Time)); got != "at "+FormatTime(f.Time) {
		t.Fatalf("AppendTime wrote %q", got)
	}
	if h.Get("Content-Type") != "image/jpeg" || h.Get("Frame-Seq") != "42" || h.Get("Frame-Width") != "640" || h.Get("Frame-Height") != "480" {
		t.Fatalf("headers %v", h)
	}
	back, err := ParseFrame(h)
	if err != nil || back.Seq != 42 || !back.Time.Equal(at) || back.Width != 640 || back.Height != 480 {
		t.Fatalf("ParseFrame = %+v, %v", back, err)
	}
	// times with no fractional seconds keep nine digits, so they sort
	if got := FormatTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)); got != "2026-01-02T03:04:05.000000000Z" {
		t.Fatal(got)
	}
}

func TestParseFrameRejects(t *testing.T) {
	good := Frame{Seq: 1, Time: time.Now(), Width: 8, Height: 8}.Header()
	for _, tc := range []struct {
		name, key, value string
	}{
		{"content type", HeaderContentType, "image/png"},
		{"seq zero", HeaderSeq, "0"},
		{"seq text", HeaderSeq, "one"},
		{"time", HeaderTime, "yesterday"},
		{"width", HeaderWidth, "-4"},
		{"height", HeaderHeight, ""},
		{"huge", HeaderWidth, "99999999"},
	} {
		h := nats.Header{}
		for k, v := range good {
			h[k] = v
		}
		h.Set(tc.key, tc.value)
		if _, err := ParseFrame(h); !errors.Is(err, ErrBadFrame) || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%s: ParseFrame = %v, want ErrBadFrame naming %s", tc.name, err, tc.key)
		}
	}
	if _, err := ParseFrame(nil); err == nil {
		t.Error("ParseFrame(nil) accepted")
	}
}

func TestParseStatus(t *testing.T) {
	st := Status{ID: "front", Host: "pi", State: StateStreaming, FPS: 15, Width: 640, Height: 480, IntervalMS: 2000}
	data, _ := json.Marshal(st)
	got, err := ParseStatus("cams.front.status", data)
	if err != nil || got.ID != "front" || got.FPS != 15 {
		t.Fatalf("ParseStatus = %+v, %v", got, err)
	}
	for name, tc := range map[string]struct{ subject, data string }{
		"id mismatch":   {"cams.back.status", string(data)},
		"frames":        {"cams.front.frames", string(data)},
		"not json":      {"cams.front.status", "{"},
		"unknown state": {"cams.front.status", `{"id":"front","state":"dancing"}`},
		"negative":      {"cams.front.status", `{"id":"front","state":"streaming","fps":-1}`},
	} {
		if _, err := ParseStatus(tc.subject, []byte(tc.data)); !errors.Is(err, ErrBadStatus) {
			t.Errorf("%s: ParseStatus = %v, want ErrBadStatus", name, err)
		}
	}
}

func TestOnline(t *testing.T) {
	now := time.Now()
	st := Status{State: StateStreaming, IntervalMS: 1000}
	if !st.Online(now.Add(-2*time.Second), now) {
		t.Error("offline after two seconds with 1 s reports")
	}
	if st.Online(now.Add(-4*time.Second), now) {
		t.Error("online after three missed reports")
	}
	st.State = StateStopped
	if st.Online(now, now) {
		t.Error("a stopped camera is online")
	}
	if (&Status{}).Interval() != DefaultReportInterval {
		t.Error("no interval should mean the default")
	}
	if got := (&Status{IntervalMS: 1 << 40}).Interval(); got != MaxReportInterval {
		t.Errorf("a huge interval gives %v, want it capped at %v", got, MaxReportInterval)
	}
}

// site is optional: left out of the JSON when empty, and a report without
// it (from an older agent) parses with an empty site.
func TestStatusSite(t *testing.T) {
	data, _ := json.Marshal(Status{ID: "front", State: StateStreaming})
	if strings.Contains(string(data), "site") {
		t.Fatalf("an empty site is in the JSON: %s", data)
	}
	data, _ = json.Marshal(Status{ID: "front", Site: "garden", State: StateStreaming})
	if !strings.Contains(string(data), `"site":"garden"`) {
		t.Fatalf("no site in the JSON: %s", data)
	}
	got, err := ParseStatus("cams.front.status", data)
	if err != nil || got.Site != "garden" {
		t.Fatalf("ParseStatus = %+v, %v", got, err)
	}
	got, err = ParseStatus("cams.front.status", []byte(`{"id":"front","state":"streaming","host":"pi"}`))
	if err != nil || got.Site != "" {
		t.Fatalf("an older report: %+v, %v", got, err)
	}
}

func TestLooksLikeJPEG(t *testing.T) {
	whole := []byte{0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3, 0xFF, 0xD9}
	for name, c := range map[string]struct {
		b    []byte
		want bool
	}{
		"whole":      {whole, true},
		"padded":     {append(append([]byte{}, whole...), 0, 0, 0), true},
		"empty":      {nil, false},
		"truncated":  {whole[:6], false},
		"no SOI":     {[]byte("GIF89a......"), false},
		"no EOI":     {[]byte{0xFF, 0xD8, 0xFF, 0xE0, 1, 2}, false},
		"text":       {[]byte("hello, world"), false},
		"zero bytes": {make([]byte, 100), false},
	} {
		if got := LooksLikeJPEG(c.b); got != c.want {
			t.Errorf("%s: %v, want %v", name, got, c.want)
		}
	}
}

func TestValidateIDs(t *testing.T) {
	for _, tc := range []struct {
		ids  []string
		max  int
		says string // "" for valid
	}{
		{nil, 4, ""},
		{[]string{"front", "back"}, 2, ""},
		{[]string{"a", "b", "c"}, 0, ""},
		{[]string{"a", "b", "c"}, 2, "3 cameras, at most 2"},
		{[]string{"front", "front"}, 0, `"front" is listed twice`},
		{[]string{"front", "a.b"}, 0, IDRule},
	} {
		err := ValidateIDs(tc.ids, tc.max)
		if (err == nil) != (tc.says == "") || err != nil && !strings.Contains(err.Error(), tc.says) {
			t.Errorf("ValidateIDs(%q, %d) = %v, want %q", tc.ids, tc.max, err, tc.says)
		}
	}
	if err := ValidateIDs([]string{"*"}, 0); !errors.Is(err, ErrInvalidID) {
		t.Errorf("a bad id: %v does not wrap ErrInvalidID", err)
	}
}
