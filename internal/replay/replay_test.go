package replay

import (
	"bytes"
	"camhub/hub/hubtest"
	"camhub/internal/replay/replaytest"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"camhub/internal/testenv"
	"camhub/internal/wire"
)

// Snapshot returns the newest frame of the camera asked for, at once.
func TestSnapshotNewest(t *testing.T) {
	_, js := hubtest.StartJS(t, nil)
	ctx := testenv.Context(t, 30*time.Second)
	end := time.Now()
	var frontSeq uint64
	for i, at := range replaytest.Series(5, end) {
		frontSeq = replaytest.Publish(t, js, replaytest.Shot{ID: "front", Seq: uint64(i + 1), At: at})
		replaytest.Publish(t, js, replaytest.Shot{ID: "back", Seq: uint64(100 + i), At: at.Add(time.Millisecond)})
	}
	f, err := Snapshot(ctx, js, "front")
	if err != nil {
		t.Fatal(err)
	}
	if f.Seq != 5 || !f.Time.Equal(end) || f.StreamSeq != frontSeq || f.Width != 160 || f.Height != 120 {
		t.Fatalf("snapshot %+v, want frame 5 at %v, stream sequence %d", f.Frame, end, frontSeq)
	}
	if n := replaytest.JPEGNumber(t, f.JPEG); n != 5 {
		t.Fatalf("snapshot shows %d, want 5", n)
	}
	b, err := Snapshot(ctx, js, "back")
	if err != nil || b.Seq != 104 || replaytest.JPEGNumber(t, b.JPEG) != 104 {
		t.Fatalf("back: %+v, %v", b.Frame, err)
	}
	first, last, err := Bounds(ctx, js, "front")
	if err != nil || !first.Equal(end.Add(-400*time.Millisecond)) || !last.Equal(end) {
		t.Fatalf("Bounds = %v, %v, %v; want %v, %v", first, last, err, end.Add(-400*time.Millisecond), end)
	}
}

func TestSnapshotErrors(t *testing.T) {
	_, js := hubtest.StartJS(t, nil)
	ctx := testenv.Context(t, 30*time.Second)
	replaytest.Publish(t, js, replaytest.Shot{ID: "front", Seq: 1, At: time.Now()})

	_, err := Snapshot(ctx, js, "garage")
	if !errors.Is(err, ErrNoFrames) || !strings.Contains(err.Error(), `"garage"`) {
		t.Errorf("unknown camera: %v, want ErrNoFrames naming it", err)
	}
	if _, _, err := Bounds(ctx, js, "garage"); !errors.Is(err, ErrNoFrames) {
		t.Errorf("Bounds of an unknown camera: %v", err)
	}
	_, err = Snapshot(ctx, js, "front.door")
	if !errors.Is(err, ErrInvalid) || !errors.Is(err, wire.ErrInvalidID) {
		t.Errorf("bad id: %v", err)
	}

	// A NATS server no hub provisioned: JetStream, but no CAMS.
	bare := testenv.NATS(t, nil)
	_, err = Snapshot(ctx, hubtest.JetStream(t, bare.ClientURL()), "front")
	if !errors.Is(err, ErrNoBuffer) || !strings.Contains(err.Error(), "hub") {
		t.Errorf("no CAMS stream: %v, want ErrNoBuffer with a hint to start the hub", err)
	}
	// A NATS server without JetStream.
	opts := testenv.NATSOptions(t)
	opts.JetStream = false
	plain := testenv.NATS(t, opts)
	_, err = Snapshot(ctx, hubtest.JetStream(t, plain.ClientURL()), "front")
	if !errors.Is(err, ErrNoBuffer) || !strings.Contains(err.Error(), "hub") {
		t.Errorf("no JetStream: %v, want ErrNoBuffer with a hint to start the hub", err)
	}
}

func TestWriteSnapshot(t *testing.T) {
	_, js := hubtest.StartJS(t, nil)
	ctx := testenv.Context(t, 30*time.Second)
	replaytest.Publish(t, js, replaytest.Shot{ID: "front", Seq: 1, At: time.Now()})
	replaytest.Publish(t, js, replaytest.Shot{ID: "front", Seq: 2, At: time.Now()})
	dir := t.TempDir()

	path := filepath.Join(dir, "front.JPG")
	f, err := WriteSnapshot(ctx, js, "front", path, nil)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(data, f.JPEG) || replaytest.JPEGNumber(t, data) != 2 {
		t.Fatalf("%s: %d bytes, %v; want frame 2", path, len(data), err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", st.Mode().Perm())
	}
	if ns := testenv.Names(t, dir); len(ns) != 1 {
		t.Fatalf("files left: %v", ns)
	}

	for _, tc := range []struct {
		name, path, id string
		is             error
		says           string
	}{
		{"png", filepath.Join(dir, "x.png"), "front", ErrInvalid, ".jpg"},
		{"no extension", filepath.Join(dir, "x"), "front", ErrInvalid, ".jpg"},
		{"missing directory", filepath.Join(dir, "missing", "x.jpg"), "front", os.ErrNotExist, filepath.Join(dir, "missing")},
		{"directory is a file", filepath.Join(path, "x.jpg"), "front", nil, path},
		{"unknown camera", filepath.Join(dir, "garage.jpg"), "garage", ErrNoFrames, "garage"},
	} {
		_, err := WriteSnapshot(ctx, js, tc.id, tc.path, nil)
		if err == nil || (tc.is != nil && !errors.Is(err, tc.is)) || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: %v, want an error (%v) saying %q", tc.name, err, tc.is, tc.says)
		}
		if _, err := os.Stat(tc.path); err == nil {
			t.Errorf("%s: %s exists", tc.name, tc.path)
		}
	}
	if ns := testenv.Names(t, dir); len(ns) != 1 || ns[0] != "front.JPG" {
		t.Fatalf("files left: %v", ns)
	}
}
