package hub

import (
	"context"
	"time"
)

// CheckDepth runs the hub's periodic buffer-span check now.
func (s *Server) CheckDepth(now time.Time) { s.checkDepth(context.Background(), now) }

// BufferDepth is what the buffer holds now.
func (s *Server) BufferDepth(now time.Time) (Depth, error) {
	info, err := s.bufferInfo(context.Background())
	if err != nil {
		return Depth{}, err
	}
	return s.depth(info, now), nil
}

// SetBcryptCost sets the cost of the passwords' hashes the store makes,
// for tests that log in under the race detector.
func SetBcryptCost(c int) { bcryptCost = c }
