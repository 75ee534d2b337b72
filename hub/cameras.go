package hub

import (
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"camhub/internal/natsconn"
	"camhub/internal/wire"
)

// cameras follows the status reports of every camera to log cameras
// joining and leaving.
type cameras struct {
	log *slog.Logger
	now func() time.Time

	invalid atomic.Uint64 // messages on status subjects that were not reports

	mu   sync.Mutex
	cams map[string]*camera
}

type camera struct {
	status   wire.Status
	received time.Time
	online   bool
	bps      float64 // bits per second between the last two reports with bytes_sent
}

func newCameras(log *slog.Logger) *cameras {
	return &cameras{log: log, now: time.Now, cams: make(map[string]*camera)}
}

// handle takes one status report.
func (c *cameras) handle(m *nats.Msg) {
	st, err := wire.ParseStatus(m.Subject, m.Data)
	if err == nil {
		err = wire.CheckLive(m)
	}
	if err != nil {
		c.invalid.Add(1)
		c.log.Debug("ignoring status report", "error", err)
		return
	}
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	cam, known := c.cams[st.ID]
	if !known {
		cam = &camera{}
		c.cams[st.ID] = cam
	}
	prev := cam.status
	cam.status, cam.received = *st, now
	if dt := st.Time.Sub(prev.Time); known && st.Started.Equal(prev.Started) && st.BytesSent >= prev.BytesSent && dt > 0 {
		cam.bps = float64(st.BytesSent-prev.BytesSent) * 8 / dt.Seconds()
	}
	if st.State == wire.StateStopped {
		cam.bps = 0
	}
	log := c.log.With("camera", st.ID)
	switch {
	case st.State == wire.StateStopped:
		if cam.online {
			log.Info("camera left", "reason", "agent stopped", "frames_sent", st.FramesSent, "frames_dropped", st.FramesDropped)
		}
		cam.online = false
	case !cam.online:
		cam.online = true
		attrs := []any{"host", st.Host, "source", natsconn.RedactURL(st.Source), "state", st.State}
		if st.Width > 0 && st.Height > 0 {
			attrs = append(attrs, "size", strconv.Itoa(st.Width)+"x"+strconv.Itoa(st.Height))
		}
		log.Info("camera joined", append(attrs, "version", st.Version)...)
	case prev.State != st.State && st.State == wire.StateSourceError:
		log.Warn("camera source failing", "error", st.Error)
	case prev.State != st.State:
		log.Info("camera state", "state", st.State)
	}
}

// sweep marks cameras whose reports stopped as offline.
func (c *cameras) sweep() {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, cam := range c.cams {
		if cam.online && !cam.status.Online(cam.received, now) {
			cam.online = false
			c.log.Info("camera left", "camera", id, "reason", "no status report",
				"last_seen", cam.received.Format(time.RFC3339))
		}
	}
}

// online lists the ids of the cameras online now.
func (c *cameras) online() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ids []string
	for id, cam := range c.cams {
		if cam.online {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// bitrates lists the online cameras' bitrates, from their reports.
func (c *cameras) bitrates() []camRate {
	c.mu.Lock()
	defer c.mu.Unlock()
	var rs []camRate
	for id, cam := range c.cams {
		if cam.online {
			rs = append(rs, camRate{id, cam.bps})
		}
	}
	return rs
}
