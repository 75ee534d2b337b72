package web

import (
	"sort"
	"sync"
	"time"

	"camhub/internal/wire"
)

// frame is one frame as the web server holds it: its headers, its JPEG
// (never decoded here) and its place in its camera's sequence on a board.
type frame struct {
	id string
	wire.Frame
	jpeg     []byte
	received time.Time
	// n numbers a camera's frames on a board 1, 2, 3 ...: a client that
	// sent frame n and next sends frame m skipped m-n-1.
	n  uint64
	lo bool // a small-tier frame (tier.go)
}

// fpsFrames is how many receive times a feed keeps to measure its rate, and
// fpsWindow how far back they count.
const (
	fpsFrames = 32
	fpsWindow = 5 * time.Second
)

// feed is one camera on a board: its newest frame and its counters.
type feed struct {
	id   string
	cur  *frame        // the newest frame; nil before the first
	wake chan struct{} // closed on the next frame; nil while nobody waits

	bytes   uint64
	drops   uint64 // frames missing from the Frame-Seq sequence
	invalid uint64 // messages that were not camhub frames
	lastSeq uint64
	times   [fpsFrames]time.Time // receive times, a ring
	seen    time.Time            // when the last message came
	first   uint64               // frames are numbered from first+1
}

// forgetAfter is how long a camera must have been silent before a full
// board forgets it for another.
const forgetAfter = time.Minute

// board holds the newest frame of each of a set of cameras and wakes the
// clients waiting for newer ones. It never queues: a new frame replaces the
// one before, and a client that was busy finds only the newest when it
// comes back. Waiting costs a client a channel receive, nothing per frame:
// the wake channels are closed (waking every waiter at once) and replaced
// only when someone waits on them.
//
// The server has one board for live frames, fed by its NATS subscription;
// each rewinding client has its own, fed by its replay player.
type board struct {
	max int // most cameras; frames of more are refused
	// known, if set, says which cameras the hub knows (they reported
	// their status): on a full board they take the place of cameras it
	// does not know.
	known func(id string) bool
	// base is the highest frame number of any camera forgotten: a camera
	// that comes back numbers its frames after it, so that no client
	// takes them for frames it has sent.
	base uint64

	mu    sync.Mutex
	feeds map[string]*feed
	any   chan struct{} // closed on the next frame of any camera; nil while nobody waits
}

func newBoard(max int) *board {
	return &board{max: max, feeds: make(map[string]*feed)}
}

// get returns camera id's feed, adding it if there is room, or if a camera
// can be forgotten to make room (see forget). b.mu is held.
func (b *board) get(id string) *feed {
	fd := b.feeds[id]
	if fd == nil && (len(b.feeds) < b.max || b.forget(id, time.Now())) {
		fd = &feed{id: id, seen: time.Now(), first: b.base}
		b.feeds[id] = fd
	}
	return fd
}

// forget makes room on a full board for camera id by forgetting the
// camera silent the longest, if it has been silent for forgetAfter or, when
// the hub knows id, if the hub does not know it. A camera a client waits
// for is kept. It reports whether it made room. b.mu is held.
func (b *board) forget(id string, now time.Time) bool {
	known := b.known != nil && b.known(id)
	var victim *feed
	for _, fd := range b.feeds {
		if fd.wake != nil {
			continue
		}
		if now.Sub(fd.seen) < forgetAfter && !(known && !b.known(fd.id)) {
			continue
		}
		if victim == nil || fd.seen.Before(victim.seen) {
			victim = fd
		}
	}
	if victim == nil {
		return false
	}
	if victim.cur != nil {
		b.base = max(b.base, victim.cur.n)
	}
	delete(b.feeds, victim.id)
	return true
}

// put makes f its camera's newest frame and wakes the waiters. It returns
// false if the board has no room for another camera. A frame whose payload
// is not a complete JPEG is counted as invalid and dropped: the camera's
// newest good frame stays.
func (b *board) put(f *frame) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	fd := b.get(f.id)
	if fd == nil {
		return false
	}
	if !wire.LooksLikeJPEG(f.jpeg) {
		fd.invalid++
		return true
	}
	fd.count(f, len(f.jpeg))
	if fd.wake != nil {
		close(fd.wake)
		fd.wake = nil
	}
	if b.any != nil {
		close(b.any)
		b.any = nil
	}
	return true
}

// invalid counts a message on camera id's subject that was not a frame.
func (b *board) invalid(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if fd := b.get(id); fd != nil {
		fd.invalid++
		fd.seen = time.Now()
	}
}

// next returns camera id's newest frame if it is newer than frame number
// after; otherwise nil and a channel that is closed when the camera's next
// frame arrives.
func (b *board) next(id string, after uint64) (*frame, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	fd := b.get(id)
	if fd == nil {
		return nil, nil // no room: never comes
	}
	if fd.cur != nil && fd.cur.n > after {
		return fd.cur, nil
	}
	if fd.wake == nil {
		fd.wake = make(chan struct{})
	}
	return nil, fd.wake
}

// newer appends to out the newest frame of every camera that want accepts
// (nil: every camera) and that is newer than the frame number sent has for
// it, and returns out and a channel closed on the next frame of any camera.
// Taking both under one lock means no frame slips between them.
func (b *board) newer(sent map[string]uint64, want func(string) bool, out []*frame) ([]*frame, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for id, fd := range b.feeds {
		if fd.cur != nil && fd.cur.n > sent[id] && (want == nil || want(id)) {
			out = append(out, fd.cur)
		}
	}
	if b.any == nil {
		b.any = make(chan struct{})
	}
	return out, b.any
}

// newest returns camera id's newest frame, nil if none.
func (b *board) newest(id string) *frame {
	b.mu.Lock()
	defer b.mu.Unlock()
	if fd := b.feeds[id]; fd != nil {
		return fd.cur
	}
	return nil
}

// maxCaptureFPS is more frames a second than any camera captures.
const maxCaptureFPS = 1000

// maxSeqGap is the largest Frame-Seq gap that can be frames lost in
// elapsed: what a camera could have captured meanwhile.
func maxSeqGap(elapsed time.Duration) uint64 {
	return uint64(max(elapsed.Seconds(), 1) * maxCaptureFPS)
}

// count makes f, of size bytes, fd's newest frame: it numbers it and
// counts its bytes, the Frame-Seq gap before it and its receive time.
func (fd *feed) count(f *frame, size int) {
	fd.seen = f.received
	n := fd.first + 1
	if fd.cur != nil {
		n = fd.cur.n + 1
	}
	f.n = n
	// A gap in Frame-Seq is frames the agent or the network dropped; a
	// sequence that goes back, or jumps further than a camera could
	// have captured since the last frame, is an agent that restarted (or
	// a Frame-Seq no agent sent), not a loss.
	if fd.lastSeq != 0 && f.Seq > fd.lastSeq+1 && fd.cur != nil {
		gap := f.Seq - fd.lastSeq - 1
		if gap <= maxSeqGap(f.received.Sub(fd.cur.received)) {
			fd.drops += gap
		}
	}
	fd.lastSeq = f.Seq
	fd.bytes += uint64(size)
	fd.times[n%fpsFrames] = f.received
	fd.cur = f
}

// feedStats is what a board knows of one camera.
type feedStats struct {
	ID      string
	Frames  uint64 // frames received
	Bytes   uint64
	Drops   uint64 // Frame-Seq gaps
	Invalid uint64
	FPS     float64 // frames received per second, recently
	Newest  *frame  // nil if none yet
}

// stats returns every camera's counters at now, sorted by id.
func (b *board) stats(now time.Time) []feedStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]feedStats, 0, len(b.feeds))
	for _, fd := range b.feeds {
		out = append(out, fd.stats(now))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// stats returns fd's counters at now.
func (fd *feed) stats(now time.Time) feedStats {
	st := feedStats{ID: fd.id, Bytes: fd.bytes, Drops: fd.drops, Invalid: fd.invalid, Newest: fd.cur}
	if fd.cur != nil {
		st.Frames = fd.cur.n - fd.first
		st.FPS = fd.fps(now)
	}
	return st
}

// fps is the rate of the frames received in the fpsWindow before now:
// frames between the first and the last of them over the time between.
// A camera that sent fewer than two frames in the window has 0.
func (fd *feed) fps(now time.Time) float64 {
	n := fd.cur.n
	k := min(n, fpsFrames)
	newest := fd.times[n%fpsFrames]
	if now.Sub(newest) > fpsWindow {
		return 0
	}
	var oldest time.Time
	count := 0
	for i := uint64(0); i < k; i++ {
		t := fd.times[(n-i)%fpsFrames]
		if now.Sub(t) > fpsWindow {
			break
		}
		oldest = t
		count++
	}
	if count < 2 || !newest.After(oldest) {
		return 0
	}
	return float64(count-1) / newest.Sub(oldest).Seconds()
}
