package videojpeg

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"gocv.io/x/gocv"

	"camhub/hub/hubtest"
	"camhub/internal/avcodec"
	"camhub/internal/replay"
	"camhub/internal/testenv"
	"camhub/internal/wire"
)

// noLeaks fails the test if a decoder or a Mat is open when it ends.
func noLeaks(t testing.TB) {
	t.Helper()
	mats := openMats()
	t.Cleanup(func() {
		if avcodec.Live() != 0 || openMats() != mats {
			t.Errorf("leak: %s; %d Mats open, %d before", avcodec.LiveString(), openMats(), mats)
		}
	})
}

func startHub(t *testing.T) jetstream.JetStream {
	t.Helper()
	h := hubtest.Start(t, nil)
	js, err := jetstream.New(testenv.Conn(t, h.ClientURL()))
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func times(n int, fps float64, end time.Time) []time.Time {
	ts := make([]time.Time, n)
	for i := range ts {
		ts[i] = end.Add(-time.Duration(float64(n-1-i) / fps * float64(time.Second)))
	}
	return ts
}

// decodeJPEG decodes a JPEG with OpenCV and returns its size.
func decodeJPEG(t *testing.T, data []byte) (w, h int) {
	t.Helper()
	m, err := gocv.IMDecode(data, gocv.IMReadColor)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Empty() {
		t.Fatal("the snapshot is not a JPEG")
	}
	return m.Cols(), m.Rows()
}

// A snapshot of an H.264 camera is a JPEG of its newest picture, decoded
// from its newest keyframe and the access units after it, of the camera's
// size; a JPEG camera's is its newest frame as stored.
func TestSnapshotH264(t *testing.T) {
	noLeaks(t)
	js := startHub(t)
	aus := testenv.H264Clip(t, 320, 240, 25, 10) // keyframes at 0, 10, 20
	ts := times(len(aus), 15, time.Now())
	seqs := testenv.PublishVideo(t, js, "h", aus, ts, 320, 240)
	jpeg := testenv.Picture(t, 1, 160, 120, 0)
	if _, err := js.PublishMsg(context.Background(), testenv.FrameMsg("j", 7, time.Now(), jpeg, 160, 120)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	gop, err := replay.NewestGOP(ctx, js, "h")
	if err != nil {
		t.Fatal(err)
	}
	if len(gop) != 5 || gop[0].StreamSeq != seqs[20] || !gop[0].Key || gop[4].StreamSeq != seqs[24] {
		t.Fatalf("newest GOP: %d access units from stream sequence %d, want 5 from %d (the keyframe of frame 21)", len(gop), gop[0].StreamSeq, seqs[20])
	}
	f, err := replay.SnapshotJPEG(ctx, js, "h", Factory)
	if err != nil {
		t.Fatal(err)
	}
	if w, h := decodeJPEG(t, f.JPEG); w != 320 || h != 240 || f.Width != 320 || f.Height != 240 {
		t.Errorf("snapshot %dx%d (headers %dx%d), want 320x240", w, h, f.Width, f.Height)
	}
	if f.Seq != 25 || !f.Time.Equal(ts[24]) || f.StreamSeq != seqs[24] {
		t.Errorf("snapshot of frame %d at %v (stream %d), want the newest: 25 at %v (%d)", f.Seq, f.Time, f.StreamSeq, ts[24], seqs[24])
	}

	path := filepath.Join(t.TempDir(), "h.jpg")
	if _, err := replay.WriteSnapshot(ctx, js, "h", path, Factory); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if w, h := decodeJPEG(t, b); w != 320 || h != 240 {
		t.Errorf("written snapshot %dx%d, want 320x240", w, h)
	}
	if _, err := replay.WriteSnapshot(ctx, js, "h", path, nil); !errors.Is(err, replay.ErrNoDecoder) {
		t.Errorf("snapshot of an H.264 camera without a decoder: %v, want ErrNoDecoder", err)
	}

	jf, err := replay.SnapshotJPEG(ctx, js, "j", Factory)
	if err != nil || string(jf.JPEG) != string(jpeg) || jf.Seq != 7 {
		t.Errorf("snapshot of a JPEG camera: frame %d, %d bytes, %v; want frame 7 as stored", jf.Seq, len(jf.JPEG), err)
	}
}

// Garbage on a camera's video subjects is a clear error or skipped, never
// a crash: a newest keyframe that is not H.264 decodes to no picture, and
// a message without camhub's headers is skipped by a cursor and counted.
func TestSnapshotGarbage(t *testing.T) {
	noLeaks(t)
	js := startHub(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	aus := testenv.H264Clip(t, 160, 120, 3, 10)
	ts := times(3, 15, time.Now())
	testenv.PublishVideo(t, js, "x", aus, ts, 160, 120)
	// headers of a keyframe, payload garbage
	m := testenv.VideoMsg(t, "x", 4, time.Now(), aus[0], 160, 120)
	m.Data = []byte("\x00\x00\x00\x01\x65garbage garbage garbage")
	if _, err := js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	_, err := replay.SnapshotJPEG(ctx, js, "x", Factory)
	if !errors.Is(err, replay.ErrNoFrames) {
		t.Errorf("snapshot of a garbage keyframe: %v, want an error wrapping ErrNoFrames", err)
	}
	// no camhub headers at all, on .key and .delta
	for _, key := range []bool{true, false} {
		if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: wire.VideoSubject("x", key), Data: []byte("junk")}); err != nil {
			t.Fatal(err)
		}
	}
	c, err := replay.OpenVideoCursor(ctx, js, "x", replay.VideoCursorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	n := 0
	for {
		_, ok, err := c.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		n++
	}
	if n != 4 || c.Bad() != 2 {
		t.Errorf("cursor read %d access units and skipped %d, want 4 and 2", n, c.Bad())
	}
	// the newest keyframe with headers is the one with a garbage payload
	if _, err := replay.SnapshotJPEG(ctx, js, "x", Factory); !errors.Is(err, replay.ErrNoFrames) {
		t.Errorf("snapshot of a camera whose newest keyframes are garbage: %v, want an error wrapping ErrNoFrames", err)
	}
	// a good GOP after the garbage: the snapshot skips the junk after it
	testenv.PublishVideo(t, js, "x", aus, times(3, 15, time.Now()), 160, 120)
	if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: wire.VideoSubject("x", true), Data: []byte("junk")}); err != nil {
		t.Fatal(err)
	}
	f, err := replay.SnapshotJPEG(ctx, js, "x", Factory)
	if err != nil || f.Seq != 3 {
		t.Errorf("snapshot after junk on the keyframe subject: frame %d, %v; want frame 3", f.Seq, err)
	}
}
