package wire

import (
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

func TestVideoSubjects(t *testing.T) {
	if got := VideoSubject("front", true); got != "cams.front.video.key" {
		t.Errorf("key subject %q", got)
	}
	if got := VideoSubject("front", false); got != "cams.front.video.delta" {
		t.Errorf("delta subject %q", got)
	}
	if got := VideoFilter("front"); got != "cams.front.video.*" {
		t.Errorf("filter %q", got)
	}
	if AllVideo != "cams.*.video.*" {
		t.Errorf("AllVideo %q", AllVideo)
	}
	for subject, want := range map[string]struct {
		id  string
		key bool
		ok  bool
	}{
		"cams.front.video.key":   {"front", true, true},
		"cams.front.video.delta": {"front", false, true},
		"cams.front.video.other": {},
		"cams.front.frames":      {},
		"cams.a.b.video.key":     {},
		"cams..video.key":        {},
		"cams.video.key":         {},
		"CAMS.front.video.key":   {},
		"cams.front.video.key.x": {},
	} {
		id, key, err := ParseVideoSubject(subject)
		if (err == nil) != want.ok || id != want.id || key != want.key {
			t.Errorf("ParseVideoSubject(%q) = %q, %v, %v; want %q, %v, ok %v", subject, id, key, err, want.id, want.key, want.ok)
		}
	}
}

func TestVideoHeaders(t *testing.T) {
	at := time.Date(2026, 12, 1, 8, 0, 5, 123456789, time.UTC)
	for _, v := range []Video{
		{Frame: Frame{Seq: 1, Time: at, Width: 1280, Height: 720}, Codec: "avc1.42C01F", Key: true, PTS: 0, DTS: 0},
		{Frame: Frame{Seq: 2, Time: at, Width: 1280, Height: 720}, Codec: "avc1.640028", PTS: 9000, DTS: 6000},
	} {
		h := v.Header()
		if h.Get(HeaderContentType) != ContentTypeH264 {
			t.Fatalf("content type %q", h.Get(HeaderContentType))
		}
		if (h.Get(HeaderDTS) != "") != (v.DTS != v.PTS) {
			t.Errorf("Frame-DTS %q for PTS %d DTS %d: only when they differ", h.Get(HeaderDTS), v.PTS, v.DTS)
		}
		back, err := ParseVideo(h)
		if err != nil || back != v {
			t.Fatalf("%+v round-trips to %+v, %v", v, back, err)
		}
		// a JPEG reader refuses it, clearly
		if _, err := ParseFrame(h); !errors.Is(err, ErrBadFrame) {
			t.Errorf("ParseFrame of a video header: %v", err)
		}
	}
	// one header map reused: a keyframe's flag and a DTS do not linger
	h := nats.Header{}
	Video{Frame: Frame{Seq: 1, Time: at, Width: 2, Height: 2}, Codec: "avc1.42C01F", Key: true, PTS: 10, DTS: 5}.SetHeader(h)
	Video{Frame: Frame{Seq: 2, Time: at, Width: 2, Height: 2}, Codec: "avc1.42C01F", PTS: 20, DTS: 20}.SetHeader(h)
	if v, err := ParseVideo(h); err != nil || v.Key || v.DTS != 20 {
		t.Fatalf("reused header gave %+v, %v", v, err)
	}
	// a JPEG header is not video
	if _, err := ParseVideo(Frame{Seq: 1, Time: at, Width: 2, Height: 2}.Header()); !errors.Is(err, ErrBadVideo) || !errors.Is(err, ErrBadFrame) {
		t.Errorf("ParseVideo of a JPEG header: %v", err)
	}
}

func TestParseVideoRejects(t *testing.T) {
	good := Video{Frame: Frame{Seq: 3, Time: time.Now(), Width: 640, Height: 480}, Codec: "avc1.42C01E", PTS: 100}
	for name, spoil := range map[string]func(nats.Header){
		"no codec":       func(h nats.Header) { h.Del(HeaderCodec) },
		"H.265 codec":    func(h nats.Header) { h.Set(HeaderCodec, "hvc1.1.6.L93.B0") },
		"bad key flag":   func(h nats.Header) { h.Set(HeaderKey, "yes") },
		"no PTS":         func(h nats.Header) { h.Del(HeaderPTS) },
		"PTS not a num":  func(h nats.Header) { h.Set(HeaderPTS, "soon") },
		"DTS after PTS":  func(h nats.Header) { h.Set(HeaderDTS, "101") },
		"seq zero":       func(h nats.Header) { h.Set(HeaderSeq, "0") },
		"no time":        func(h nats.Header) { h.Del(HeaderTime) },
		"width too wide": func(h nats.Header) { h.Set(HeaderWidth, "70000") },
	} {
		h := good.Header()
		spoil(h)
		if _, err := ParseVideo(h); !errors.Is(err, ErrBadVideo) {
			t.Errorf("%s: %v, want ErrBadVideo", name, err)
		}
	}
}
