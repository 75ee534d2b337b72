package h264

import (
	"bytes"
	"os"
	"regexp"
	"testing"
)

// The seeds are the fixture's access units (real x264 output) and a few
// edge cases by hand; testdata/fuzz holds more made from x264 streams at
// other profiles and sizes. Run one for longer with
//
//	go test -run '^$' -fuzz FuzzSplit -fuzztime 30s -fuzzminimizetime 2s ./internal/h264/
//
// (minimizing a new input found from the larger seeds otherwise takes up
// to a minute, during which no new input is tried)
func FuzzSplit(f *testing.F) {
	b, err := os.ReadFile(fixture)
	if err != nil {
		f.Fatal(err)
	}
	aus, err := AccessUnits(b)
	if err != nil {
		f.Fatal(err)
	}
	for _, au := range aus[:3] {
		f.Add(au)
	}
	f.Add(aus[0][:60])                          // a keyframe cut short
	f.Add(bytes.Join(aus[:2], nil))             // two access units as one
	f.Add([]byte{0, 0, 0, 1, 0x09, 0xF0, 0, 0}) // a delimiter, trailing zeros
	f.Add([]byte{0, 0, 1, 0x65, 0, 0, 3, 0, 0, 1})
	f.Add([]byte{0, 0, 1})
	f.Fuzz(func(t *testing.T, in []byte) {
		nalus, err := Split(in)
		if err == nil {
			if len(nalus) == 0 || len(nalus) > MaxNALUs {
				t.Fatalf("%d NAL units without an error", len(nalus))
			}
			for _, n := range nalus {
				if len(n) == 0 || n[len(n)-1] == 0 {
					t.Fatalf("NAL unit %x: empty or ends with a zero", n)
				}
			}
			again, err := Split(Join(nalus))
			if err != nil {
				t.Fatalf("Split(Join(Split(x))): %v", err)
			}
			if len(again) != len(nalus) {
				t.Fatalf("%d NAL units, after Join %d", len(nalus), len(again))
			}
			for i := range nalus {
				if !bytes.Equal(nalus[i], again[i]) {
					t.Fatalf("NAL unit %d changed by Join: %x, %x", i, nalus[i], again[i])
				}
			}
		}
		key := IsKeyframe(in)
		if key && err != nil {
			t.Fatal("a keyframe that does not split")
		}
		sps, pps, perr := Params(in)
		if (perr == nil) != (err == nil) {
			t.Fatalf("Split: %v, Params: %v", err, perr)
		}
		if s, _ := ParseSPS(sps); sps != nil && s.Width > MaxSide {
			t.Fatalf("SPS %+v", s)
		}
		out, eerr := EnsureParams(in, []byte{0x67, 0x42, 0xC0, 0x0A, 0xDA}, []byte{0x68, 0xCE})
		if (eerr == nil) != (err == nil) {
			t.Fatalf("Split: %v, EnsureParams: %v", err, eerr)
		}
		if eerr == nil {
			if IsKeyframe(out) != key {
				t.Fatal("EnsureParams changed whether it is a keyframe")
			}
			if s, p, _ := Params(out); key && (s == nil || p == nil) {
				t.Fatal("a keyframe without parameter sets after EnsureParams")
			} else if !key && (!bytes.Equal(s, sps) || !bytes.Equal(p, pps)) {
				t.Fatal("EnsureParams changed a delta frame")
			}
		}

		// AppendAccessUnit is Join then EnsureParams, in one pass, after
		// what is already in the buffer
		if nalus, err := Split(in); err == nil {
			sps, pps := []byte{0x67, 0x42, 0xC0, 0x0A, 0xDA}, []byte{0x68, 0xCE}
			joined := Join(nalus)
			want, werr := EnsureParams(joined, sps, pps)
			got, added, gerr := AppendAccessUnit([]byte("prefix"), nalus, sps, pps)
			if (gerr == nil) != (werr == nil) {
				t.Fatalf("EnsureParams: %v, AppendAccessUnit: %v", werr, gerr)
			}
			if gerr == nil && (string(got[:6]) != "prefix" || !bytes.Equal(got[6:], want) || added != (len(want) != len(joined))) {
				t.Fatalf("AppendAccessUnit gave %x (added %v), want %x", got, added, want)
			}
		}

		units, err := AccessUnits(in)
		if err == nil && !bytes.Equal(bytes.Join(units, nil), in) {
			t.Fatal("the access units are not the stream")
		}
	})
}

var codecRE = regexp.MustCompile(`^avc1\.[0-9A-F]{6}$`)

func FuzzParseSPS(f *testing.F) {
	b, err := os.ReadFile(fixture)
	if err != nil {
		f.Fatal(err)
	}
	sps, _, err := Params(b)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sps)
	f.Add(sps[:len(sps)/2])
	f.Add([]byte{0x67, 0x42, 0xC0, 0x0A})
	f.Add([]byte{0x67, 0, 0, 3, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		s, err := ParseSPS(in)
		if err != nil {
			if s != (SPS{}) {
				t.Fatalf("%+v with an error", s)
			}
			return
		}
		if s.Width <= 0 || s.Height <= 0 || s.Width > MaxSide || s.Height > MaxSide {
			t.Fatalf("picture %dx%d", s.Width, s.Height)
		}
		if !codecRE.MatchString(s.Codec()) {
			t.Fatalf("codec string %q", s.Codec())
		}
		if c, err := CodecString(in); err != nil || c != s.Codec() {
			t.Fatalf("CodecString %q %v", c, err)
		}
	})
}
