package web

import (
	"testing"
	"time"

	"camhub/internal/testenv"
	"camhub/internal/wire"
)

// A frame whose payload is not a whole JPEG is counted as invalid and never
// replaces the camera's newest good frame.
func TestBoardSkipsNonJPEG(t *testing.T) {
	good := testenv.Picture(t, 1, 64, 48, 0)
	b := newBoard(4)
	put := func(seq uint64, data []byte) {
		t.Helper()
		if !b.put(&frame{id: "x", Frame: wire.Frame{Seq: seq, Time: time.Now(), Width: 64, Height: 48}, jpeg: data, received: time.Now()}) {
			t.Fatal("no room on the board")
		}
	}
	put(1, good)
	for i, data := range [][]byte{
		[]byte("hello, not a JPEG"),
		good[:len(good)/2], // truncated
		nil,                // 0 bytes
	} {
		put(uint64(i+2), data)
	}
	put(9, good)
	st := b.stats(time.Now())
	if len(st) != 1 || st[0].Invalid != 3 || st[0].Frames != 2 || st[0].Newest.Seq != 9 {
		t.Fatalf("stats %+v: want 2 frames (the newest 9), 3 invalid", st)
	}
}
