package replay

import (
	"errors"
	"testing"
	"time"

	"camhub/hub/hubtest"
	"camhub/internal/replay/replaytest"
	"camhub/internal/testenv"
)

// FrameAt finds the frame captured at or before a time: the oldest for a
// time before the buffer, the newest for one after it.
func TestFrameAt(t *testing.T) {
	_, js := hubtest.StartJS(t, nil)
	ctx := testenv.Context(t, 30*time.Second)
	ts := replaytest.Series(30, time.Now().Truncate(time.Millisecond))
	replaytest.PublishSeries(t, js, "front", ts)
	for _, tc := range []struct {
		name string
		at   time.Time
		seq  uint64
	}{
		{"exactly a frame's time", ts[9], 10},
		{"between two frames", ts[9].Add(99 * time.Millisecond), 10},
		{"before the buffer", ts[0].Add(-time.Hour), 1},
		{"after the buffer", ts[29].Add(time.Hour), 30},
		{"the newest", ts[29], 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := FrameAt(ctx, js, "front", tc.at)
			if err != nil {
				t.Fatal(err)
			}
			if f.Seq != tc.seq || replaytest.JPEGNumber(t, f.JPEG) != int(tc.seq) {
				t.Errorf("frame %d (showing %d), want %d", f.Seq, replaytest.JPEGNumber(t, f.JPEG), tc.seq)
			}
		})
	}
	if _, err := FrameAt(ctx, js, "nobody", ts[0]); !errors.Is(err, ErrNoFrames) {
		t.Errorf("a camera with no frames: %v", err)
	}
	if _, err := FrameAt(ctx, js, "bad.id", ts[0]); !errors.Is(err, ErrInvalid) {
		t.Errorf("a bad id: %v", err)
	}
}

// GOPAt gives an H.264 camera's keyframe at or before a time, and with
// exact the access units after it up to the time.
func TestGOPAt(t *testing.T) {
	_, js := hubtest.StartJS(t, nil)
	ctx := testenv.Context(t, 30*time.Second)
	aus := testenv.H264Clip(t, 160, 120, 60, 10) // keyframes: Frame-Seq 1, 11, 21, ...
	times := make([]time.Time, len(aus))
	start := time.Now().Add(-10 * time.Second).Truncate(time.Millisecond)
	for i := range times {
		times[i] = start.Add(time.Duration(i) * 100 * time.Millisecond)
	}
	testenv.PublishVideo(t, js, "cam", aus, times, 160, 120)
	for _, tc := range []struct {
		name     string
		at       time.Time
		exact    bool
		from, to uint64
	}{
		{"a keyframe", times[14], false, 11, 11},
		{"exactly", times[14], true, 11, 15},
		{"between two", times[14].Add(50 * time.Millisecond), true, 11, 15},
		{"on a keyframe", times[20], true, 21, 21},
		{"before the buffer", times[0].Add(-time.Hour), true, 1, 1},
		{"after the buffer", times[59].Add(time.Hour), true, 51, 60},
		{"after the buffer, keyframe", times[59].Add(time.Hour), false, 51, 51},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gop, err := GOPAt(ctx, js, "cam", tc.at, tc.exact)
			if err != nil {
				t.Fatal(err)
			}
			if len(gop) == 0 || !gop[0].Key || gop[0].Seq != tc.from || gop[len(gop)-1].Seq != tc.to || len(gop) != int(tc.to-tc.from+1) {
				t.Fatalf("%d access units from %d to %d, want %d to %d from a keyframe", len(gop), gop[0].Seq, gop[len(gop)-1].Seq, tc.from, tc.to)
			}
			for i, a := range gop {
				if a.Seq != tc.from+uint64(i) || len(a.Data) == 0 {
					t.Fatalf("access unit %d: Frame-Seq %d, %d bytes", i, a.Seq, len(a.Data))
				}
			}
		})
	}
	if _, err := GOPAt(ctx, js, "nobody", times[0], true); !errors.Is(err, ErrNoFrames) {
		t.Errorf("a camera with no video: %v", err)
	}
}
