package notify

import (
	"context"
	"sync"
)

// queue holds a target's notifications waiting to be sent: at most max;
// a new one pushes out the oldest.
type queue struct {
	mu    sync.Mutex
	items []job
	max   int
	wake  chan struct{}
}

func newQueue(max int) *queue { return &queue{max: max, wake: make(chan struct{}, 1)} }

// push adds j, reporting whether the oldest waiting was dropped for it.
func (q *queue) push(j job) (dropped bool) {
	q.mu.Lock()
	if len(q.items) >= q.max {
		q.items[0] = job{}
		q.items = q.items[1:]
		dropped = true
	}
	q.items = append(q.items, j)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return dropped
}

// pop takes the oldest notification, waiting for one until ctx ends.
func (q *queue) pop(ctx context.Context) (job, bool) {
	for {
		q.mu.Lock()
		if len(q.items) > 0 {
			j := q.items[0]
			q.items[0] = job{}
			q.items = q.items[1:]
			if len(q.items) == 0 {
				q.items = nil // let the array go
			}
			q.mu.Unlock()
			return j, true
		}
		q.mu.Unlock()
		select {
		case <-ctx.Done():
			return job{}, false
		case <-q.wake:
		}
	}
}

// len is how many notifications wait.
func (q *queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}
