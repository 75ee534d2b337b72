package gopqueue

import (
	"testing"

	"camhub/internal/replay"
	"camhub/internal/wire"
)

func au(seq uint64, key bool) replay.AU {
	return replay.AU{Video: wire.Video{Frame: wire.Frame{Seq: seq}, Key: key}, Data: []byte{0, 0, 0, 1, 0x65}}
}

func seqs(aus []replay.AU) []uint64 {
	var s []uint64
	for _, a := range aus {
		s = append(s, a.Seq)
	}
	return s
}

func equal(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestQueue(t *testing.T) {
	q := New(4, 1<<20)
	// a first delta asks for a catch-up, once; the catch-up goes first,
	// without the live access units it holds
	if !q.Push(au(5, false)) || q.Push(au(6, false)) {
		t.Fatal("the first delta should ask for one catch-up")
	}
	if got, _ := q.Take(); got != nil {
		t.Fatalf("took %v before the catch-up", seqs(got))
	}
	q.CaughtUp([]replay.AU{au(3, true), au(4, false), au(5, false)})
	if got, sk := q.Take(); !equal(seqs(got), []uint64{3, 4, 5, 6}) || sk != 0 {
		t.Fatalf("took %v, %d skipped; want 3 4 5 6", seqs(got), sk)
	}
	// continuing: deltas alone
	q.Push(au(7, false))
	if got, _ := q.Take(); !equal(seqs(got), []uint64{7}) {
		t.Fatalf("took %v, want 7", seqs(got))
	}
	// a keyframe supersedes what was not taken
	q.Push(au(8, false))
	q.Push(au(9, true))
	if got, sk := q.Take(); !equal(seqs(got), []uint64{9}) || sk != 1 {
		t.Fatalf("took %v, %d skipped; want 9, 1 skipped", seqs(got), sk)
	}
	// behind: past the limit, everything waits for the next keyframe
	for s := uint64(10); s <= 15; s++ {
		q.Push(au(s, false))
	}
	if got, sk := q.Take(); got != nil || sk != 7 {
		t.Fatalf("took %v, %d skipped; want nothing, 7 skipped (10-13 dropped at 14, then 14, 15)", seqs(got), sk)
	}
	q.Push(au(16, true))
	if got, _ := q.Take(); !equal(seqs(got), []uint64{16}) {
		t.Fatalf("took %v, want 16", seqs(got))
	}
	// a failed catch-up waits for a keyframe
	q2 := New(4, 1<<20)
	q2.Push(au(1, false))
	q2.CaughtUp(nil)
	q2.Push(au(2, false))
	if got, sk := q2.Take(); got != nil || sk != 2 {
		t.Fatalf("took %v, %d skipped; want nothing, 2 skipped", seqs(got), sk)
	}
}

// Reset drops what is queued, uncounted, and the queue starts again as a
// new one: the next delta asks for a catch-up, and Take starts at a
// keyframe.
func TestReset(t *testing.T) {
	q := New(8, 1<<20)
	q.Push(au(1, true))
	q.Push(au(2, false))
	q.Reset()
	if aus, skipped := q.Take(); len(aus) != 0 || skipped != 0 {
		t.Fatalf("after Reset: %v, %d skipped", seqs(aus), skipped)
	}
	if !q.Push(au(3, false)) {
		t.Fatal("the first delta after Reset should ask for a catch-up")
	}
	q.CaughtUp(nil) // none: wait for a keyframe
	q.Push(au(4, false))
	q.Push(au(5, true))
	q.Push(au(6, false))
	if aus, skipped := q.Take(); !equal(seqs(aus), []uint64{5, 6}) || skipped != 2 {
		t.Fatalf("after Reset: %v, %d skipped; want [5 6], 2 (the deltas before the keyframe)", seqs(aus), skipped)
	}
}
