//go:build matprofile

package export

import (
	"camhub/hub/hubtest"
	"camhub/internal/replay/replaytest"
	"camhub/internal/testenv"
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"camhub/internal/testenv/cvtest"
	"camhub/internal/wire"
)

// Every Mat and VideoWriter an export makes is closed, on every path: a
// clip written, frames resized, frames that are not JPEGs, and an export
// cancelled half way. Run with go test -tags matprofile.
func TestExportNoMatLeaks(t *testing.T) {
	_, js := hubtest.StartJS(t, nil)
	ts := publishFront(t, js) // frame 20 is bigger: it is resized
	// A frame whose payload is not a JPEG: skipped.
	bad := replaytest.Shot{ID: "front", Seq: 42, At: ts[40].Add(100 * time.Millisecond)}
	publishRaw(t, js, bad, []byte("not a jpeg"))
	ctx := testenv.Context(t, 60*time.Second)
	dir := t.TempDir()

	check := cvtest.MatLeaks(t)

	for _, ext := range []string{".mp4", ".avi"} {
		res, err := Export(ctx, js, Options{ID: "front", Out: filepath.Join(dir, "clip"+ext)})
		if err != nil || res.Frames != 41 || res.Skipped != 1 {
			t.Fatalf("%s: %+v, %v; want 41 frames and 1 skipped", ext, res, err)
		}
		check("export " + ext)

		cctx, cancel := context.WithCancel(ctx)
		_, err = Export(cctx, js, Options{ID: "front", Out: filepath.Join(dir, "cancelled"+ext),
			Progress: func(done, _ int) {
				if done == 25 {
					cancel()
				}
			}})
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("%s: cancelled export: %v", ext, err)
		}
		check("cancelled export " + ext)
	}
}

// publishRaw stores a frame with data as its payload.
func publishRaw(t *testing.T, js jetstream.JetStream, s replaytest.Shot, data []byte) {
	t.Helper()
	m := &nats.Msg{
		Subject: wire.FramesSubject(s.ID),
		Data:    data,
		Header:  wire.Frame{Seq: s.Seq, Time: s.At, Width: 160, Height: 120}.Header(),
	}
	if _, err := js.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
}
