package agent

import (
	"context"
	"sync"
	"time"
)

// frame is one encoded frame on its way from capture to the publisher.
type frame struct {
	seq           uint64
	time          time.Time // capture time
	width, height int
	data          []byte // the JPEG; reused for later frames
}

// mailboxFrames is how many frames a mailbox owns: one being encoded, one
// waiting, one being published. Their buffers are reused for every frame.
const mailboxFrames = 3

// mailbox hands frames from the capture goroutine to the publisher: it
// holds at most one frame, and a newer frame replaces one the publisher
// has not taken yet (newest wins). It owns a few reusable frames, so
// encoding into them allocates nothing once their buffers have grown.
//
// The capture goroutine gets a frame, fills it and puts it; the publisher
// takes it, sends it and recycles it.
type mailbox struct {
	mu     sync.Mutex
	next   *frame   // waiting for the publisher
	spare  []*frame // free to be filled
	closed bool
	ready  chan struct{} // a frame was put, or the mailbox closed; capacity 1
}

func newMailbox() *mailbox {
	m := &mailbox{spare: make([]*frame, 0, mailboxFrames), ready: make(chan struct{}, 1)}
	for range mailboxFrames {
		m.spare = append(m.spare, new(frame))
	}
	return m
}

// get returns a frame to fill.
func (m *mailbox) get() *frame {
	m.mu.Lock()
	defer m.mu.Unlock()
	if n := len(m.spare); n > 0 {
		f := m.spare[n-1]
		m.spare = m.spare[:n-1]
		return f
	}
	// Only if a caller holds more frames than it should; the frame
	// joins the spares when recycled.
	return new(frame)
}

// recycle returns a frame that was sent or not used.
func (m *mailbox) recycle(f *frame) {
	m.mu.Lock()
	m.spare = append(m.spare, f)
	m.mu.Unlock()
}

// put leaves f for the publisher. It reports whether it replaced a frame
// the publisher had not taken, which the caller counts as dropped.
func (m *mailbox) put(f *frame) (replaced bool) {
	m.mu.Lock()
	if m.next != nil {
		m.spare = append(m.spare, m.next)
		replaced = true
	}
	m.next = f
	m.mu.Unlock()
	m.wake()
	return replaced
}

// take waits for a frame. It returns false when ctx is done, or when the
// mailbox is closed and empty.
func (m *mailbox) take(ctx context.Context) (*frame, bool) {
	for {
		m.mu.Lock()
		if f := m.next; f != nil {
			m.next = nil
			m.mu.Unlock()
			return f, true
		}
		closed := m.closed
		m.mu.Unlock()
		if closed {
			return nil, false
		}
		select {
		case <-m.ready:
		case <-ctx.Done():
			return nil, false
		}
	}
}

// close tells the publisher that no more frames will come; it still takes
// the one waiting.
func (m *mailbox) close() {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	m.wake()
}

// drain recycles a frame left waiting, and reports whether there was one.
func (m *mailbox) drain() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.next == nil {
		return false
	}
	m.spare = append(m.spare, m.next)
	m.next = nil
	return true
}

func (m *mailbox) wake() {
	select {
	case m.ready <- struct{}{}:
	default:
	}
}
