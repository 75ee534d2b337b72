//go:build cgo

package detector

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"

	"camhub/internal/wire"
)

// The agent's test pattern moves all over, all the time (a sweeping bar,
// a bouncing ball, a clock, a frame counter): motion on it is no news, and
// a demo of test patterns would raise an event every few seconds. A camera
// whose status report says it sends the test pattern (Source "testpattern")
// is therefore not analysed, unless its own settings turn detection on
// (motion-cameras: {id: {enabled: true}}). Its frames are counted as
// skipped. A camera that changes source is analysed again from its next
// report.

// SourceTestPattern is the source an agent reports for its test pattern.
const SourceTestPattern = "testpattern"

// patternOn reports whether camera id's own settings turn detection on,
// the test pattern or not.
func (d *Detector) patternOn(id string) bool {
	s, ok := d.cfg.Cameras[id]
	return ok && s.Enabled != nil && *s.Enabled
}

// onStatus takes a camera's status report: whether it sends the test
// pattern.
func (d *Detector) onStatus(m *nats.Msg) {
	st, err := wire.ParseStatus(m.Subject, m.Data)
	if err != nil {
		return // the web viewer and the hub count bad reports
	}
	d.mu.Lock()
	c := d.cams[st.ID]
	d.mu.Unlock()
	if c != nil {
		c.setPattern(st.Source == SourceTestPattern)
	}
}

// setPattern says whether the camera sends the test pattern.
func (c *camera) setPattern(on bool) {
	on = on && !c.d.patternOn(c.id)
	if c.pattern.Swap(on) != on && on {
		c.d.log.Info("motion detection off: the camera sends the test pattern (its settings can turn it on: enabled: true)", "camera", c.id)
	}
}

// checkPattern reads the camera's newest status report from the hub, so
// that the test pattern is known before its first frame is analysed.
func (c *camera) checkPattern(ctx context.Context) {
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := c.d.js.Stream(sctx, wire.StatusStream)
	if err != nil {
		return
	}
	m, err := st.GetLastMsgForSubject(sctx, wire.StatusSubject(c.id))
	if err != nil {
		return
	}
	if s, err := wire.ParseStatus(m.Subject, m.Data); err == nil {
		c.setPattern(s.Source == SourceTestPattern)
	}
}

// skipPattern drops what the test pattern sent since the last look.
func (c *camera) skipPattern(m *nats.Msg) {
	n := uint64(0)
	if m != nil {
		n++
	}
	aus, _ := c.video.Take()
	c.d.skipped.Add(n + uint64(len(aus)))
}
