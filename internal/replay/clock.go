package replay

import "time"

// Capture clocks can be wrong: a Raspberry Pi has no real-time clock and
// steps its clock when NTP syncs, and a single frame can carry any
// Frame-Time its agent wrote. Playback and export are timed by capture
// times, so one frame dated 1970 or 2099 would stretch a clip over decades
// or stall a rewind. Each frame's capture time is therefore compared with
// the time the hub stored it: their difference (the agent's clock offset
// plus the network's delay) stays the same from frame to frame; a frame
// whose difference is more than MaxClockStep away from its camera's is
// out of order, skipped and counted. When the camera's clock really
// changed (NTP), clockSettle frames in a row agree on the new difference,
// which is then the camera's.
const (
	// MaxClockStep is how far a frame's capture time may be out of step
	// with its camera's other frames before it is skipped.
	MaxClockStep = time.Minute
	// clockSettle is how many frames in a row must agree on a new clock
	// offset for it to be adopted.
	clockSettle = 3
)

// ClockCheck follows one camera's clock offset (capture time minus stored
// time). The zero value expects the camera's clock to agree with the
// hub's.
type ClockCheck struct {
	offset    time.Duration // the camera's accepted offset
	candidate time.Duration // a different offset seen lately
	streak    int           // frames in a row with candidate
}

// OK reports whether frame f belongs in time with its camera's frames.
func (c *ClockCheck) OK(f Frame) bool {
	if f.Stored.IsZero() {
		return true // no stored time to judge by
	}
	// Clamped so that differences of offsets cannot overflow.
	const lim = time.Duration(1 << 61)
	off := min(max(f.Time.Sub(f.Stored), -lim), lim)
	if near(off, c.offset) {
		c.offset = off
		c.streak = 0
		return true
	}
	if c.streak > 0 && near(off, c.candidate) {
		c.streak++
	} else {
		c.candidate, c.streak = off, 1
	}
	if c.streak >= clockSettle {
		c.offset, c.streak = off, 0
		return true
	}
	return false
}

func near(a, b time.Duration) bool {
	d := a - b
	return d <= MaxClockStep && d >= -MaxClockStep
}
