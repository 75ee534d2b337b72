package mp4

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"camhub/internal/h264"
)

// fixture is internal/h264's: 16 frames of vtest at 176x144, GOPs of 8.
const fixture = "../h264/testdata/vtest-176x144.h264"

func fixtureAUs(t testing.TB) [][]byte {
	t.Helper()
	b, err := os.ReadFile(fixture)
	if err != nil {
		t.Fatal(err)
	}
	aus, err := h264.AccessUnits(b)
	if err != nil {
		t.Fatal(err)
	}
	return aus
}

// FuzzAppendAVCC: the one-pass reader of access units agrees with
// internal/h264.Split on every input, NAL units and errors alike.
func FuzzAppendAVCC(f *testing.F) {
	for _, au := range fixtureAUs(f)[:3] {
		f.Add(au)
	}
	for _, s := range []string{"", "\x00\x00\x01", "\x00\x00\x00\x01\x65\x00\x00", "\x00\x01\x65", "\x00\x00\x01\x67\x00\x00\x01\x00\x00\x00\x01\x65",
		"\x00\x00\x01\x09\x10\x00\x00\x00\x00\x01\x41\x00\x00\x01"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		want, werr := h264.Split(b)
		got, a, gerr := appendAVCC([]byte("prefix"), b)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("Split: %v, appendAVCC: %v", werr, gerr)
		}
		for _, e := range []error{h264.ErrEmpty, h264.ErrNoStartCode, h264.ErrTooLarge} {
			if errors.Is(werr, e) != errors.Is(gerr, e) {
				t.Fatalf("Split: %v, appendAVCC: %v", werr, gerr)
			}
		}
		if werr != nil {
			return
		}
		var avcc []byte
		key := false
		for _, n := range want {
			avcc = append(avcc, byte(len(n)>>24), byte(len(n)>>16), byte(len(n)>>8), byte(len(n)))
			avcc = append(avcc, n...)
			key = key || h264.Type(n) == h264.TypeIDR
		}
		if a.off != 6 || !bytes.Equal(got[a.off:a.off+a.n], avcc) || a.key != key || string(got[:6]) != "prefix" {
			t.Fatalf("appendAVCC %x (key %v), want %x (key %v)", got[a.off:], a.key, avcc, key)
		}
	})
}

// FuzzWriter: whatever follows a keyframe, the Writer returns an error
// or takes it, never panics, and Close ends the file.
func FuzzWriter(f *testing.F) {
	aus := fixtureAUs(f)
	f.Add(aus[1], int64(0))
	f.Add(aus[8], int64(-1))
	f.Add([]byte("\x00\x00\x01\x67garbage"), int64(5))
	f.Add([]byte("\x00\x00\x01\x65\x88"), int64(1<<40))
	f.Fuzz(func(t *testing.T, b []byte, off int64) {
		w := NewWriter(io.Discard, Options{})
		if err := w.WriteAU(aus[0], 0, 0); err != nil {
			t.Fatal(err)
		}
		at := interval + time.Duration(off)
		_ = w.WriteAU(b, at, at-time.Duration(off%1000))
		_ = w.WriteAU(aus[1], 2*interval, 2*interval)
		if err := w.Close(); err != nil && !errors.Is(err, ErrParamsChanged) {
			t.Fatal(err)
		}
	})
}
