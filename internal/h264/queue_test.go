package h264

import (
	"context"
	"errors"
	"testing"
	"time"
)

// pushAll pushes access units described by kinds ('K' keyframe, 'd'
// delta), numbered from 1 in Seq.
func pushAll(q *Queue, kinds string) {
	for i, k := range kinds {
		q.Push(AccessUnit{Seq: uint64(i + 1), Key: k == 'K'})
	}
}

// popAll returns the Seq of everything queued.
func popAll(t *testing.T, q *Queue) []uint64 {
	t.Helper()
	var out []uint64
	for q.Len() > 0 {
		au, err := q.Pop(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, au.Seq)
	}
	return out
}

func TestQueue(t *testing.T) {
	for _, tc := range []struct {
		name, kinds string
		max         int
		want        []uint64
		stats       QueueStats
	}{
		{"deltas before the first keyframe", "ddKdd", 10, []uint64{3, 4, 5}, QueueStats{Skipped: 2}},
		{"room for all", "KddKdd", 10, []uint64{1, 2, 3, 4, 5, 6}, QueueStats{}},
		// full at the 4th: it and the queued 1-3 go, and so do 5 and 6; 7 starts again
		{"a delta finds it full", "KdddddKd", 3, []uint64{7, 8}, QueueStats{Dropped: 6, Cuts: 1}},
		// 1-3 queued, 4 is a keyframe: it replaces them
		{"a keyframe finds it full", "KddKd", 3, []uint64{4, 5}, QueueStats{Dropped: 3, Cuts: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := NewQueue(tc.max)
			pushAll(q, tc.kinds)
			got := popAll(t, q)
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
			if s := q.Stats(); s != tc.stats {
				t.Errorf("stats %+v, want %+v", s, tc.stats)
			}
		})
	}
}

// After a Break (a lost packet) what is queued stays, deltas wait for a
// keyframe; Skip counts a delta the sender dropped.
func TestQueueBreak(t *testing.T) {
	q := NewQueue(10)
	pushAll(q, "Kd")
	q.Break()
	q.Push(AccessUnit{Seq: 3})
	q.Skip()
	q.Push(AccessUnit{Seq: 5, Key: true})
	got := popAll(t, q)
	if len(got) != 3 || got[0] != 1 || got[1] != 2 || got[2] != 5 {
		t.Errorf("got %v, want [1 2 5]", got)
	}
	if s := q.Stats(); s != (QueueStats{Skipped: 2}) {
		t.Errorf("stats %+v", s)
	}
}

// Pop waits for a Push, returns what is queued before the Close error,
// then the error; a done context ends a wait.
func TestQueuePop(t *testing.T) {
	q := NewQueue(4)
	got := make(chan uint64)
	go func() {
		au, _ := q.Pop(context.Background())
		got <- au.Seq
	}()
	q.Push(AccessUnit{Seq: 1, Key: true})
	select {
	case s := <-got:
		if s != 1 {
			t.Errorf("Seq %d", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Pop did not return after a Push")
	}

	errEnd := errors.New("end")
	q.Push(AccessUnit{Seq: 2})
	q.Close(errEnd)
	q.Close(errors.New("later"))
	q.Push(AccessUnit{Seq: 3})
	if au, err := q.Pop(context.Background()); err != nil || au.Seq != 2 {
		t.Errorf("%v %v", au.Seq, err)
	}
	for range 2 {
		if _, err := q.Pop(context.Background()); err != errEnd {
			t.Errorf("%v, want the first Close's error", err)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := NewQueue(1).Pop(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("%v", err)
	}
}
