// Package gopqueue holds an H.264 camera's access units between the
// goroutine that receives them and the one that decodes them. A JPEG
// viewer needs only a camera's newest frame; a decoder needs every access
// unit from a keyframe on. So the queue always starts at a keyframe or
// continues what the decoder took last: a new keyframe supersedes what was
// not yet taken, and a queue past its limits (a decoder that fell behind)
// is emptied and waits for the next keyframe. Both are counted as skipped:
// latency stays bounded by about one GOP, as for JPEG it is one frame.
//
// A decoder should not wait for the camera's next keyframe to show a
// picture: the first access unit of a camera that is not a keyframe asks
// for a catch-up (Push returns true), and the caller reads the newest
// keyframe and what follows from the hub's buffer (replay.NewestGOP) and
// hands it to CaughtUp, which puts it before the live access units
// received since. It needs no cgo.
package gopqueue

import (
	"sync"

	"camhub/internal/replay"
)

// Queue is one camera's access units, from a keyframe on. It is safe for
// concurrent use.
type Queue struct {
	maxAUs, maxBytes int

	mu      sync.Mutex
	aus     []replay.AU
	bytes   int
	keyed   bool // aus starts at a keyframe, or continues what was taken
	pending bool // a catch-up is under way
	asked   bool // a catch-up was asked for
	skipped uint64
}

// New returns a queue that holds at most maxAUs access units and maxBytes
// bytes of them.
func New(maxAUs, maxBytes int) *Queue { return &Queue{maxAUs: maxAUs, maxBytes: maxBytes} }

// Push adds a live access unit (its Stored is when it was received). It
// reports whether the caller should start a catch-up from the buffer: the
// camera's first access unit is not a keyframe. Only one is asked for.
func (q *Queue) Push(a replay.AU) (catchUp bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if a.Key {
		q.skipped += uint64(len(q.aus)) // not decoded: the keyframe supersedes them
		q.aus, q.bytes, q.keyed = q.aus[:0], 0, true
	}
	if len(q.aus) >= q.maxAUs || q.bytes+len(a.Data) > q.maxBytes {
		// The decoder fell behind: wait for the next keyframe (a
		// catch-up from the buffer would bring back the GOP it could
		// not keep up with).
		q.skipped += uint64(len(q.aus)) + 1
		q.aus, q.bytes, q.keyed, q.asked = q.aus[:0], 0, false, true
		return false
	}
	if !q.keyed && !q.pending {
		if q.asked {
			q.skipped++ // waiting for a keyframe
			return false
		}
		q.asked, q.pending = true, true
		catchUp = true
	}
	q.aus = append(q.aus, a)
	q.bytes += len(a.Data)
	return catchUp
}

// CaughtUp ends a catch-up: gop (nil if it failed) goes before the live
// access units received since that it does not hold (by Frame-Seq), unless
// a live keyframe came first.
func (q *Queue) CaughtUp(gop []replay.AU) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.pending = false
	if q.keyed {
		return
	}
	if len(gop) == 0 {
		q.skipped += uint64(len(q.aus))
		q.aus, q.bytes = q.aus[:0], 0
		return
	}
	last := gop[len(gop)-1].Seq
	aus := make([]replay.AU, 0, len(gop)+len(q.aus))
	bytes := 0
	for _, a := range gop {
		aus = append(aus, a)
		bytes += len(a.Data)
	}
	for _, a := range q.aus {
		if a.Seq > last {
			aus = append(aus, a)
			bytes += len(a.Data)
		}
	}
	q.aus, q.bytes, q.keyed = aus, bytes, true
}

// Take returns the access units queued since the last Take (from a
// keyframe, or continuing the last Take) and how many were skipped so far.
func (q *Queue) Take() (aus []replay.AU, skipped uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.keyed || len(q.aus) == 0 {
		return nil, q.skipped
	}
	aus = q.aus
	q.aus, q.bytes = nil, 0
	return aus, q.skipped
}

// Reset drops what is queued, uncounted, and starts again as a new queue
// does: a reader that stopped reading the stream (a viewer showing another
// tier of the camera) calls it before it reads the stream again.
func (q *Queue) Reset() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.aus, q.bytes, q.keyed, q.asked = nil, 0, false, false
}

// Restart makes the next Take start at a keyframe: what is queued is kept
// only if it starts at one. A decoder that stops taking for a while (no
// one watches) calls it before it starts again.
func (q *Queue) Restart() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.aus) > 0 && q.aus[0].Key {
		return
	}
	q.skipped += uint64(len(q.aus))
	q.aus, q.bytes, q.keyed, q.asked = q.aus[:0], 0, false, false
}
