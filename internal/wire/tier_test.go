package wire

import (
	"strings"
	"testing"
)

func TestLoSubjects(t *testing.T) {
	if got := LoFramesSubject("front"); got != "cams.front.lo.frames" {
		t.Errorf("LoFramesSubject = %q", got)
	}
	if got := LoVideoSubject("front", true); got != "cams.front.lo.video.key" {
		t.Errorf("LoVideoSubject key = %q", got)
	}
	if got := LoVideoSubject("front", false); got != "cams.front.lo.video.delta" {
		t.Errorf("LoVideoSubject delta = %q", got)
	}
	if got := LoVideoFilter("front"); got != "cams.front.lo.video.*" {
		t.Errorf("LoVideoFilter = %q", got)
	}
	for _, tc := range []struct {
		subject    string
		id         string
		video, key bool
		ok         bool
	}{
		{"cams.front.lo.frames", "front", false, false, true},
		{"cams.front.lo.video.key", "front", true, true, true},
		{"cams.lo.lo.video.delta", "lo", true, false, true},
		{"cams.front.frames", "", false, false, false},
		{"cams.front.lo.status", "", false, false, false},
		{"cams.front.lo.video.other", "", false, false, false},
		{"cams.a.b.lo.frames", "", false, false, false},
		{"cams..lo.frames", "", false, false, false},
		{"other.front.lo.frames", "", false, false, false},
	} {
		id, video, key, err := ParseLoSubject(tc.subject)
		if (err == nil) != tc.ok || id != tc.id || video != tc.video || key != tc.key {
			t.Errorf("ParseLoSubject(%q) = %q, %v, %v, %v", tc.subject, id, video, key, err)
		}
	}
	// The main tier's readers never see the small tier.
	for _, s := range []string{LoFramesSubject("x"), LoVideoSubject("x", true)} {
		if _, _, err := ParseSubject(s); err == nil {
			t.Errorf("ParseSubject(%q) accepted a small-tier subject", s)
		}
		if _, _, err := ParseVideoSubject(s); err == nil {
			t.Errorf("ParseVideoSubject(%q) accepted a small-tier subject", s)
		}
	}
}

func TestChooseTier(t *testing.T) {
	for _, tc := range []struct {
		tileW, tileH, mainW, mainH, loW, loH int
		pin, want                            string
	}{
		{480, 270, 1920, 1080, 320, 180, "", TierLo},         // a 4x4 grid of 1080p cameras
		{960, 540, 1920, 1080, 320, 180, "", TierLo},         // exactly half
		{961, 540, 1920, 1080, 320, 180, "", TierMain},       // wider than half
		{1600, 900, 1920, 1080, 320, 180, "", TierMain},      // solo
		{480, 270, 1920, 1080, 0, 0, "", TierMain},           // no small tier
		{480, 270, 1920, 1080, 0, 0, TierLo, TierMain},       // pinned to a tier it lacks
		{1600, 900, 1920, 1080, 320, 180, TierLo, TierLo},    // pinned
		{100, 100, 1920, 1080, 320, 180, TierMain, TierMain}, // pinned
		{100, 100, 0, 0, 320, 180, "", TierMain},             // main size not known yet
	} {
		if got := ChooseTier(tc.tileW, tc.tileH, tc.mainW, tc.mainH, tc.loW, tc.loH, tc.pin); got != tc.want {
			t.Errorf("ChooseTier(%+v) = %s", tc, got)
		}
	}
}

func TestParseStatusLo(t *testing.T) {
	good := `{"id":"a","state":"streaming","lo":{"codec":"jpeg","width":320,"height":180,"fps":15,"frames_sent":3,"frames_dropped":0,"bytes_sent":100}}`
	s, err := ParseStatus("cams.a.status", []byte(good))
	if err != nil || s.Lo == nil || s.Lo.Width != 320 || s.Lo.Codec != CodecJPEG {
		t.Fatalf("ParseStatus = %+v, %v", s, err)
	}
	for _, bad := range []string{
		`{"id":"a","state":"streaming","lo":{"codec":"mjpeg","width":320,"height":180}}`,
		`{"id":"a","state":"streaming","lo":{"codec":"jpeg","width":-1,"height":180}}`,
	} {
		if _, err := ParseStatus("cams.a.status", []byte(bad)); err == nil {
			t.Errorf("ParseStatus(%s) accepted it", bad)
		}
	}
	s, err = ParseStatus("cams.a.status", []byte(`{"id":"a","state":"streaming"}`))
	if err != nil || s.Lo != nil {
		t.Fatalf("a report without lo: %+v, %v", s, err)
	}
}

func FuzzParseLoSubject(f *testing.F) {
	for _, s := range []string{"cams.front.lo.frames", "cams.front.lo.video.key", "cams.front.lo.video.delta",
		"cams.front.frames", "cams.lo.lo.lo.frames", "cams..lo.frames", "cams.*.lo.frames", "cams.>", "",
		"cams." + strings.Repeat("x", 65) + ".lo.frames"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, subject string) {
		id, video, key, err := ParseLoSubject(subject)
		if err != nil {
			return
		}
		if ValidateID(id) != nil || (key && !video) {
			t.Fatalf("ParseLoSubject(%q) accepted id %q video %v key %v", subject, id, video, key)
		}
		want := LoFramesSubject(id)
		if video {
			want = LoVideoSubject(id, key)
		}
		if want != subject {
			t.Fatalf("ParseLoSubject(%q) = %q, %v, %v: does not round-trip", subject, id, video, key)
		}
	})
}
