//go:build cgo

package detector

import (
	"bytes"
	"image/jpeg"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"gocv.io/x/gocv"

	"camhub/hub/hubtest"
	"camhub/internal/motion"
	"camhub/internal/testenv"
	"camhub/internal/wire"
)

// A thumbnail is at most 640 wide: a small JPEG frame as it came, a large
// one and a decoded picture encoded smaller, keeping the aspect.
func TestThumbMaker(t *testing.T) {
	var tm thumbMaker
	defer tm.close()
	empty := gocv.NewMat()
	defer empty.Close()
	small := testenv.Picture(t, 1, 320, 240, 0)
	b, size, err := tm.make(small, empty)
	if err != nil || !bytes.Equal(b, small) || size.X != 320 || size.Y != 240 {
		t.Fatalf("a 320x240 frame: %d bytes (the frame: %v), %v, %v", len(b), bytes.Equal(b, small), size, err)
	}
	pic := gocv.NewMatWithSize(1080, 1920, gocv.MatTypeCV8UC3)
	defer pic.Close()
	for _, tc := range []struct {
		name string
		jpeg []byte
		w, h int
	}{
		{"1280x720 JPEG", testenv.Picture(t, 2, 1280, 720, 0), 640, 360},
		{"1920x1080 JPEG", testenv.Picture(t, 3, 1920, 1080, 0), 640, 360},
		{"1920x1080 decoded", nil, 640, 360},
	} {
		src := pic
		if tc.jpeg != nil {
			src = empty
		}
		b, size, err := tm.make(tc.jpeg, src)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		img, err := jpeg.Decode(bytes.NewReader(b))
		if err != nil || img.Bounds().Dx() != tc.w || img.Bounds().Dy() != tc.h || size.X != tc.w || size.Y != tc.h {
			t.Fatalf("%s: a %v thumbnail (says %v), %v; want %dx%d", tc.name, img.Bounds(), size, err, tc.w, tc.h)
		}
	}
}

// A thumbnail stored again (a publish retried after a restart) is not
// stored twice.
func TestThumbStoredOnce(t *testing.T) {
	h, js := hubtest.StartJS(t, nil)
	d, err := New(testenv.Conn(t, h.ClientURL()), Config{Defaults: motion.DefaultCamera()}, testenv.Quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	eid := wire.EventID("front", time.Now())
	for range 3 {
		msg := &nats.Msg{Subject: wire.ThumbSubject(eid, "front"), Data: testenv.Picture(t, 1, 64, 48, 0), Header: nats.Header{}}
		msg.Header.Set(wire.HeaderMsgID, wire.ThumbMsgID(eid))
		if err := d.storeThumb(testenv.Context(t, 10*time.Second), msg); err != nil {
			t.Fatal(err)
		}
	}
	ctx := testenv.Context(t, 10*time.Second)
	st, err := js.Stream(ctx, wire.ClipsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(wire.ThumbSubject(eid, "front")))
	if err != nil {
		t.Fatal(err)
	}
	if n := info.State.Subjects[wire.ThumbSubject(eid, "front")]; n != 1 || d.Stats().Thumbs != 1 {
		t.Fatalf("stored three times: %d messages, %d counted", n, d.Stats().Thumbs)
	}
}

// What a thumbnail costs, once per event: a 640x480 JPEG frame is kept as
// it is, a 1280x720 one decoded at 1/2 and encoded, a decoded 1280x720
// H.264 picture shrunk and encoded.
func BenchmarkThumb(b *testing.B) {
	var tm thumbMaker
	defer tm.close()
	pic := gocv.NewMatWithSize(720, 1280, gocv.MatTypeCV8UC3)
	defer pic.Close()
	empty := gocv.NewMat()
	defer empty.Close()
	for _, bc := range []struct {
		name string
		jpeg []byte
		src  gocv.Mat
	}{
		{"jpeg-640x480", testenv.Picture(b, 1, 640, 480, 0), empty},
		{"jpeg-1280x720", testenv.Picture(b, 2, 1280, 720, 0), empty},
		{"h264-1280x720", nil, pic},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if _, _, err := tm.make(bc.jpeg, bc.src); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
