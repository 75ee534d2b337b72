package wire

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// Everything that arrives from the network goes through these parsers; none
// may panic, and what they accept must be well-formed.

func FuzzParseSubject(f *testing.F) {
	for _, s := range []string{"cams.front.frames", "cams.back-2.status", "cams..frames", "cams.a.b.frames",
		"cams.*.frames", "cams.>", "", ".", "cams.front.frames.", "CAMS.x.frames", "cams." + strings.Repeat("x", 65) + ".frames"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, subject string) {
		id, kind, err := ParseSubject(subject)
		if err != nil {
			return
		}
		if ValidateID(id) != nil || (kind != "frames" && kind != "status") {
			t.Fatalf("ParseSubject(%q) accepted id %q kind %q", subject, id, kind)
		}
		if want := SubjectPrefix + "." + id + "." + kind; want != subject {
			t.Fatalf("ParseSubject(%q) = %q, %q: does not round-trip", subject, id, kind)
		}
	})
}

func FuzzParseFrame(f *testing.F) {
	good := Frame{Seq: 7, Time: time.Date(2026, 11, 24, 8, 0, 5, 1, time.UTC), Width: 640, Height: 480}.Header()
	f.Add("image/jpeg", "7", "2026-11-24T08:00:05.000000001Z", "640", "480")
	f.Add("image/jpeg", "0", "2026-11-24T08:00:05Z", "1", "1")
	f.Add("text/plain", "-1", "yesterday", "x", "")
	f.Add("image/jpeg", "18446744073709551616", "2026-13-40T99:99:99Z", "65537", "0")
	f.Add(good.Get(HeaderContentType), good.Get(HeaderSeq), good.Get(HeaderTime), "  640", "480\x00")
	f.Fuzz(func(t *testing.T, ct, seq, at, w, h string) {
		hdr := nats.Header{}
		hdr.Set(HeaderContentType, ct)
		hdr.Set(HeaderSeq, seq)
		hdr.Set(HeaderTime, at)
		hdr.Set(HeaderWidth, w)
		hdr.Set(HeaderHeight, h)
		fr, err := ParseFrame(hdr)
		if err != nil {
			return
		}
		if fr.Seq == 0 || fr.Width <= 0 || fr.Height <= 0 || fr.Width > 1<<16 || fr.Height > 1<<16 {
			t.Fatalf("ParseFrame accepted %+v", fr)
		}
		back, err := ParseFrame(fr.Header())
		if err != nil || back.Seq != fr.Seq || !back.Time.Equal(fr.Time) || back.Width != fr.Width || back.Height != fr.Height {
			t.Fatalf("%+v does not round-trip: %+v, %v", fr, back, err)
		}
	})
}

func FuzzParseStatus(f *testing.F) {
	st, _ := json.Marshal(Status{ID: "front", Host: "pi", State: StateStreaming, FPS: 15, Width: 640, Height: 480, IntervalMS: 2000})
	f.Add("cams.front.status", string(st))
	f.Add("cams.front.status", `{"id":"front","state":"stopped"}`)
	f.Add("cams.front.status", `{"id":"front","state":"streaming","fps":1e400}`)
	f.Add("cams.front.status", `{"id":"front","state":"streaming","interval_ms":-5}`)
	f.Add("cams.front.status", `{"id":"front","state":"streaming","interval_ms":9223372036854775807}`)
	f.Add("cams.x.status", `[]`)
	f.Add("cams.x.status", ``)
	f.Add("cams.x.frames", `{"id":"x","state":"streaming"}`)
	f.Fuzz(func(t *testing.T, subject, data string) {
		s, err := ParseStatus(subject, []byte(data))
		if err != nil {
			return
		}
		id, kind, err := ParseSubject(subject)
		if err != nil || kind != "status" || s.ID != id {
			t.Fatalf("ParseStatus(%q) accepted a report for %q", subject, s.ID)
		}
		if s.IntervalMS < 0 || s.FPS < 0 || s.Width < 0 || s.Height < 0 {
			t.Fatalf("ParseStatus accepted %+v", s)
		}
		// however long an interval a report claims, a silent camera
		// goes offline within three of the longest report intervals
		if d := s.OfflineAfter(); d <= 0 || d > 3*MaxReportInterval {
			t.Fatalf("a report with interval_ms %d stays online for %v", s.IntervalMS, d)
		}
	})
}

func FuzzParseVideoSubject(f *testing.F) {
	for _, s := range []string{"cams.front.video.key", "cams.front.video.delta", "cams.front.video.", "cams.front.video.key.key",
		"cams.a.video.video.key", "cams..video.delta", "cams.front.frames", "", "cams.*.video.*"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, subject string) {
		id, key, err := ParseVideoSubject(subject)
		if err != nil {
			return
		}
		if ValidateID(id) != nil || VideoSubject(id, key) != subject {
			t.Fatalf("ParseVideoSubject(%q) = %q, %v: does not round-trip", subject, id, key)
		}
	})
}

func FuzzParseVideo(f *testing.F) {
	f.Add("video/h264", "7", "2026-11-24T08:00:05.000000001Z", "1280", "720", "avc1.42C01F", "1", "9000", "")
	f.Add("video/h264", "8", "2026-11-24T08:00:05Z", "1280", "720", "avc1.640028", "", "12000", "6000")
	f.Add("video/h264", "9", "2026-11-24T08:00:05Z", "2", "2", "avc1.zzzzzz", "0", "-1", "-2")
	f.Add("image/jpeg", "1", "now", "0", "0", "", "", "", "x")
	f.Fuzz(func(t *testing.T, ct, seq, at, w, h, codec, key, pts, dts string) {
		hdr := nats.Header{}
		for k, v := range map[string]string{HeaderContentType: ct, HeaderSeq: seq, HeaderTime: at, HeaderWidth: w,
			HeaderHeight: h, HeaderCodec: codec, HeaderKey: key, HeaderPTS: pts, HeaderDTS: dts} {
			if v != "" {
				hdr.Set(k, v)
			}
		}
		v, err := ParseVideo(hdr)
		if err != nil {
			return
		}
		if v.Seq == 0 || v.Width <= 0 || v.Height <= 0 || v.DTS > v.PTS || !codecString.MatchString(v.Codec) {
			t.Fatalf("ParseVideo accepted %+v", v)
		}
		back, err := ParseVideo(v.Header())
		if err != nil || back.Seq != v.Seq || !back.Time.Equal(v.Time) || back.Codec != v.Codec || back.Key != v.Key ||
			back.PTS != v.PTS || back.DTS != v.DTS {
			t.Fatalf("%+v does not round-trip: %+v, %v", v, back, err)
		}
	})
}
