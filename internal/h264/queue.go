package h264

import (
	"context"
	"sync"
)

// Queue hands access units from a source's receiving goroutine to its
// reader. It holds at most a fixed number of access units and never
// blocks the sender: when the reader falls behind, newest wins by the
// GOP. A delta that finds the queue full is dropped with everything
// queued and every delta after it up to the next keyframe; a keyframe
// that finds it full replaces everything queued. So the reader never gets
// a delta whose reference frames it did not get, and resumes at a
// keyframe.
type Queue struct {
	mu      sync.Mutex
	items   []AccessUnit // oldest first; len <= max
	max     int
	skip    bool // dropping deltas until the next keyframe
	cut     bool // because the reader fell behind (else: start, Break)
	err     error
	wake    chan struct{}
	dropped uint64
	cuts    uint64
	skipped uint64
}

// QueueStats counts what a Queue dropped.
type QueueStats struct {
	// Dropped counts access units dropped because the reader fell behind
	// (what was queued, and the rest of that GOP); Cuts counts the times
	// that happened.
	Dropped, Cuts uint64
	// Skipped counts deltas dropped while waiting for a keyframe at the
	// start and after a Break or Skip.
	Skipped uint64
}

// NewQueue returns a Queue that holds up to n access units (at least
// one). It starts waiting for a keyframe.
func NewQueue(n int) *Queue {
	n = max(n, 1)
	return &Queue{items: make([]AccessUnit, 0, n), max: n, skip: true, wake: make(chan struct{}, 1)}
}

// Push adds au. It never blocks.
func (q *Queue) Push(au AccessUnit) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.err != nil {
		return
	}
	switch {
	case au.Key:
		q.skip, q.cut = false, false
		if len(q.items) >= q.max {
			q.drop()
		}
	case q.skip && q.cut:
		q.dropped++
		return
	case q.skip:
		q.skipped++
		return
	case len(q.items) >= q.max:
		q.drop()
		q.dropped++ // au itself
		q.skip, q.cut = true, true
		return
	}
	q.items = append(q.items, au)
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// drop empties the queue, counting it as one cut.
func (q *Queue) drop() {
	q.dropped += uint64(len(q.items))
	q.cuts++
	clear(q.items) // let the data go
	q.items = q.items[:0]
}

// Break makes the queue drop deltas until the next keyframe: what the
// sender has lost (a packet, a damaged access unit) breaks the references
// of the deltas that follow. What is queued stays.
func (q *Queue) Break() {
	q.mu.Lock()
	q.skip, q.cut = true, false
	q.mu.Unlock()
}

// Skip counts a delta the sender dropped itself while waiting for a
// keyframe, and makes the queue wait for one too.
func (q *Queue) Skip() {
	q.mu.Lock()
	q.skip, q.cut = true, false
	q.skipped++
	q.mu.Unlock()
}

// Close makes Pop return err (which must not be nil) once the queue is
// empty; later Pushes are ignored. Only the first Close counts.
func (q *Queue) Close(err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.err == nil {
		q.err = err
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
}

// Pop returns the oldest access unit, waiting for one until ctx is done
// or the queue is closed and empty.
func (q *Queue) Pop(ctx context.Context) (AccessUnit, error) {
	for {
		q.mu.Lock()
		if len(q.items) > 0 {
			au := q.items[0]
			n := copy(q.items, q.items[1:]) // at most max-1 small structs
			q.items[n] = AccessUnit{}
			q.items = q.items[:n]
			q.mu.Unlock()
			return au, nil
		}
		err := q.err
		q.mu.Unlock()
		if err != nil {
			// wake any other reader waiting too
			select {
			case q.wake <- struct{}{}:
			default:
			}
			return AccessUnit{}, err
		}
		select {
		case <-ctx.Done():
			return AccessUnit{}, ctx.Err()
		case <-q.wake:
		}
	}
}

// Stats returns the queue's counts.
func (q *Queue) Stats() QueueStats {
	q.mu.Lock()
	defer q.mu.Unlock()
	return QueueStats{Dropped: q.dropped, Cuts: q.cuts, Skipped: q.skipped}
}

// Len returns the number of access units waiting.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}
