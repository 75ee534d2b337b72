package testenv

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"camhub/internal/h264"
	"camhub/internal/wire"
)

// Vtest is OpenCV's sample clip of people walking (768x576, 10 fps), real
// footage from Debian's opencv-doc (scripts/deps.sh test).
const Vtest = "/usr/share/doc/opencv-doc/examples/data/vtest.avi"

// H264Clip encodes frames frames of Vtest at w x h with libx264 (ffmpeg;
// baseline-like: no B-frames), a keyframe every gop frames, and returns
// its access units in Annex B form, SPS and PPS in every keyframe.
func H264Clip(t testing.TB, w, h, frames, gop int) [][]byte {
	t.Helper()
	if _, err := os.Stat(Vtest); err != nil {
		t.Fatalf("%v: install opencv-doc (scripts/deps.sh test)", err)
	}
	es := filepath.Join(t.TempDir(), "clip.h264")
	cmd := exec.Command("ffmpeg", "-hide_banner", "-v", "error", "-stream_loop", "-1", "-i", Vtest,
		"-frames:v", strconv.Itoa(frames), "-vf", "scale="+strconv.Itoa(w)+":"+strconv.Itoa(h),
		"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", strconv.Itoa(gop),
		"-keyint_min", strconv.Itoa(gop), "-sc_threshold", "0", "-bf", "0", "-x264-params", "repeat-headers=1",
		"-an", "-f", "h264", es)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	b, err := os.ReadFile(es)
	if err != nil {
		t.Fatal(err)
	}
	aus, err := h264.AccessUnits(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(aus) != frames {
		t.Fatalf("clip: %d access units, want %d", len(aus), frames)
	}
	return aus
}

// VideoMsg is the message of access unit au of camera id as an agent sends
// it: Frame-Seq seq, captured at at, w x h, PTS from the capture time.
func VideoMsg(t testing.TB, id string, seq uint64, at time.Time, au []byte, w, h int) *nats.Msg {
	t.Helper()
	key := h264.IsKeyframe(au)
	codec := "avc1.42C01F"
	if key {
		sps, _, err := h264.Params(au)
		if err != nil {
			t.Fatal(err)
		}
		if codec, err = h264.CodecString(sps); err != nil {
			t.Fatal(err)
		}
	}
	pts := at.UnixNano() * wire.VideoClockRate / int64(time.Second)
	v := wire.Video{Frame: wire.Frame{Seq: seq, Time: at, Width: w, Height: h}, Codec: codec, Key: key, PTS: pts, DTS: pts}
	return &nats.Msg{Subject: wire.VideoSubject(id, key), Data: au, Header: v.Header()}
}

// PublishVideo stores the access units aus of camera id in the buffer
// (acknowledged), the i-th captured at times[i], with Frame-Seq i+1, and
// returns their stream sequences.
func PublishVideo(t testing.TB, js jetstream.JetStream, id string, aus [][]byte, times []time.Time, w, h int) []uint64 {
	t.Helper()
	seqs := make([]uint64, len(aus))
	for i, au := range aus {
		ack, err := js.PublishMsg(context.Background(), VideoMsg(t, id, uint64(i+1), times[i], au, w, h))
		if err != nil {
			t.Fatalf("publishing %s access unit %d: %v", id, i+1, err)
		}
		seqs[i] = ack.Sequence
	}
	return seqs
}
