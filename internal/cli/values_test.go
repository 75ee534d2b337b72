package cli

import (
	"image"
	"slices"
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		w, h int
		ok   bool
	}{
		{"640x480", 640, 480, true},
		{"1280X720", 1280, 720, true},
		{" 320x240 ", 320, 240, true},
		{"640", 0, 0, false},
		{"640x", 0, 0, false},
		{"x480", 0, 0, false},
		{"0x480", 0, 0, false},
		{"-640x480", 0, 0, false},
		{"640x480x3", 0, 0, false},
		{"axb", 0, 0, false},
		{"", 0, 0, false},
	} {
		p, err := ParseSize(tc.in)
		if (err == nil) != tc.ok || p.X != tc.w || p.Y != tc.h {
			t.Errorf("ParseSize(%q) = %v, %v", tc.in, p, err)
		}
		if err != nil && !strings.Contains(err.Error(), "WIDTHxHEIGHT") {
			t.Errorf("ParseSize(%q): %v does not say the form", tc.in, err)
		}
	}
}

func TestSize(t *testing.T) {
	s := Size{Min: image.Pt(160, 120), Max: image.Pt(7680, 4320)}
	for in, want := range map[string]image.Point{"1280x720": {1280, 720}, " 1920X1080 ": {1920, 1080}, "160x120": {160, 120}} {
		if err := s.Set(in); err != nil || s.Point != want {
			t.Errorf("Set(%q) = %v, %v", in, s.Point, err)
		}
	}
	for _, in := range []string{"", "1280", "x720", "1280x", "axb", "100x100", "9000x9000", "-1x5"} {
		if err := s.Set(in); err == nil {
			t.Errorf("Set(%q) accepted", in)
		}
	}
	if err := s.Set("10x10"); err == nil || !strings.Contains(err.Error(), "between 160x120 and 7680x4320") {
		t.Errorf("Set below Min: %v", err)
	}
	var any Size // no bounds
	if err := any.Set("1x99999"); err != nil || any.String() != "1x99999" {
		t.Errorf("unbounded Set: %v, %v", any.String(), err)
	}
}

func TestSplitList(t *testing.T) {
	if got := SplitList([]string{"front, back", "", " side "}); !slices.Equal(got, []string{"front", "back", "side"}) {
		t.Errorf("SplitList = %q", got)
	}
}
