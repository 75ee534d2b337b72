//go:build cgo

package detector

import (
	"image"
	"time"

	"github.com/nats-io/nats.go"
	"gocv.io/x/gocv"

	"camhub/internal/wire"
)

// snapshotMaxWidth bounds a snapshot's width: a still picture for a
// dashboard, not the camera's full frame.
const snapshotMaxWidth = 640

// snapshot publishes, at most every Config.Snapshots of capture time, an
// H.264 camera's decoded picture as a JPEG on cams.<id>.snapshot: the hub
// (cgo-free) publishes JPEG cameras' snapshots itself, but an H.264 camera's
// pictures exist only here, where every access unit is decoded anyway.
func (c *camera) snapshot(pic gocv.Mat, t time.Time) {
	every := c.d.cfg.Snapshots
	if every <= 0 || pic.Empty() {
		return
	}
	if !c.snapNext.IsZero() && t.Before(c.snapNext) && c.snapNext.Sub(t) < every+maxClockJump {
		return
	}
	c.snapNext = t.Add(every)
	src, w, h := pic, pic.Cols(), pic.Rows()
	if w > snapshotMaxWidth {
		w, h = snapshotMaxWidth, max(1, h*snapshotMaxWidth/w)
		small := gocv.NewMat()
		defer small.Close()
		gocv.Resize(pic, &small, image.Pt(w, h), 0, 0, gocv.InterpolationArea)
		src = small
	}
	buf, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, src, []int{gocv.IMWriteJpegQuality, 80})
	if err != nil {
		c.d.bad.Add(1)
		return
	}
	defer buf.Close()
	data := append([]byte(nil), buf.GetBytes()...) // the native buffer is freed on return
	m := &nats.Msg{Subject: wire.SnapshotSubject(c.id), Data: data, Header: nats.Header{}}
	wire.Frame{Time: t, Width: w, Height: h}.SetHeader(m.Header)
	delete(m.Header, wire.HeaderSeq) // not a frame of the camera's sequence
	if err := c.d.nc.PublishMsg(m); err != nil {
		c.d.log.Debug("publishing a snapshot", "camera", c.id, "error", err)
	}
}
