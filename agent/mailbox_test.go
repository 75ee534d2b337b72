package agent

import (
	"context"
	"sync"
	"testing"
	"time"
)

func fill(m *mailbox, seq uint64) *frame {
	f := m.get()
	f.seq = seq
	f.data = append(f.data[:0], byte(seq))
	return f
}

func TestMailboxNewestWins(t *testing.T) {
	m := newMailbox()
	ctx := t.Context()
	if m.put(fill(m, 1)) {
		t.Error("first put replaced a frame")
	}
	if !m.put(fill(m, 2)) || !m.put(fill(m, 3)) {
		t.Error("put did not replace the waiting frame")
	}
	f, ok := m.take(ctx)
	if !ok || f.seq != 3 || f.data[0] != 3 {
		t.Fatalf("take = %+v, %v; want frame 3", f, ok)
	}
	// The publisher holds f; the capture side can still fill and put
	// without allocating: the replaced frames were recycled.
	held := map[*frame]bool{f: true}
	for seq := uint64(4); seq < 100; seq++ {
		g := fill(m, seq)
		if held[g] {
			t.Fatalf("get returned the frame the publisher holds")
		}
		m.put(g)
	}
	if n := len(m.spare); n != mailboxFrames-2 {
		t.Errorf("%d spare frames, want %d", n, mailboxFrames-2)
	}
	m.recycle(f)
	g, ok := m.take(ctx)
	if !ok || g.seq != 99 {
		t.Fatalf("take = %+v, %v; want frame 99", g, ok)
	}
	m.recycle(g)
	if n := len(m.spare); n != mailboxFrames {
		t.Errorf("%d spare frames, want all %d", n, mailboxFrames)
	}
}

func TestMailboxTakeWaits(t *testing.T) {
	m := newMailbox()
	got := make(chan uint64)
	go func() {
		f, ok := m.take(context.Background())
		if !ok {
			close(got)
			return
		}
		got <- f.seq
	}()
	select {
	case seq := <-got:
		t.Fatalf("take returned %d from an empty mailbox", seq)
	case <-time.After(20 * time.Millisecond):
	}
	m.put(fill(m, 7))
	select {
	case seq := <-got:
		if seq != 7 {
			t.Errorf("took %d, want 7", seq)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("take did not return after put")
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan bool)
	go func() {
		_, ok := m.take(ctx)
		done <- ok
	}()
	cancel()
	select {
	case ok := <-done:
		if ok {
			t.Error("take returned a frame after cancel")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("take did not return after cancel")
	}
}

func TestMailboxClose(t *testing.T) {
	m := newMailbox()
	m.put(fill(m, 1))
	m.close()
	if f, ok := m.take(context.Background()); !ok || f.seq != 1 {
		t.Fatalf("take after close = %v, %v; want the waiting frame", f, ok)
	}
	if _, ok := m.take(context.Background()); ok {
		t.Fatal("take from a closed, empty mailbox returned a frame")
	}
	if m.drain() {
		t.Error("drain found a frame")
	}
	m2 := newMailbox()
	m2.put(fill(m2, 1))
	if !m2.drain() || m2.drain() {
		t.Error("drain did not take the waiting frame exactly once")
	}
}

// A fast producer and a slow consumer: the consumer sees increasing
// sequence numbers, never a frame's data changed under it, and every frame
// is either taken or counted as replaced. Run with -race.
func TestMailboxConcurrent(t *testing.T) {
	const n = 20000
	m := newMailbox()
	var replaced uint64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer m.close()
		for seq := uint64(1); seq <= n; seq++ {
			f := m.get()
			f.seq = seq
			f.data = append(f.data[:0], make([]byte, 64)...)
			for i := range f.data {
				f.data[i] = byte(seq)
			}
			if m.put(f) {
				replaced++
			}
		}
	}()
	var taken, prev uint64
	for {
		f, ok := m.take(context.Background())
		if !ok {
			break
		}
		if f.seq <= prev {
			t.Fatalf("took %d after %d", f.seq, prev)
		}
		prev = f.seq
		for _, b := range f.data {
			if b != byte(f.seq) {
				t.Fatalf("frame %d changed while taken", f.seq)
			}
		}
		taken++
		if taken%7 == 0 {
			time.Sleep(time.Microsecond) // be slow now and then
		}
		m.recycle(f)
	}
	wg.Wait()
	if taken+replaced != n {
		t.Errorf("%d taken + %d replaced != %d", taken, replaced, n)
	}
	if prev != n {
		t.Errorf("the last frame taken is %d, want %d", prev, n)
	}
	if len(m.spare) != mailboxFrames {
		t.Errorf("%d spare frames at the end, want %d", len(m.spare), mailboxFrames)
	}
}
