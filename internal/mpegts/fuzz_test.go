package mpegts

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"camhub/internal/h264"
)

// The seeds in testdata/fuzz/FuzzSource are real MPEG-TS from ffmpeg and
// libx264 (three 32x32 frames of testsrc: program tables, then video
// packets), whole, cut, and with a packet damaged. Run it for longer with
//
//	go test -run '^$' -fuzz FuzzSource -fuzztime 60s -fuzzminimizetime 2s ./internal/mpegts/
//
// (minimizing an input found from the larger seeds otherwise takes up to
// a minute, during which no new input is tried)
func FuzzSource(f *testing.F) {
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{0x47, 0x40, 0, 0x10}, 47))
	f.Fuzz(func(t *testing.T, in []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s, err := Open(ctx, io.NopCloser(bytes.NewReader(in)), Options{Queue: 1000})
		if err != nil {
			check(t, err)
			return
		}
		defer s.Close()
		var prev h264.AccessUnit
		for {
			au, err := s.Read(ctx)
			if err != nil {
				check(t, err)
				return
			}
			if _, err := h264.Split(au.Data); err != nil {
				t.Fatalf("access unit %d: %v", au.Seq, err)
			}
			if prev.Seq == 0 || au.Seq != prev.Seq+1 {
				if !au.Key {
					t.Fatalf("access unit %d after %d is not a keyframe", au.Seq, prev.Seq)
				}
			}
			if au.Key {
				if sps, pps, _ := h264.Params(au.Data); sps == nil || pps == nil {
					t.Fatalf("keyframe %d without SPS or PPS", au.Seq)
				}
			}
			prev = au
		}
	})
}

// check fails on errors that are not the stream's fault: a panic caught
// in the demuxer, a read that did not end.
func check(t *testing.T, err error) {
	t.Helper()
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		t.Fatal("no end within 10 s")
	case strings.Contains(err.Error(), "demuxer failed"):
		t.Fatal(err)
	}
}
