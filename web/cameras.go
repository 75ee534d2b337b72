package web

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"camhub/internal/camlist"
	"camhub/internal/wire"
)

// report is a camera's newest status report and when it was received (or,
// read from the hub's camera list, stored).
type report struct {
	status wire.Status
	at     time.Time
}

// directory keeps the newest status report of every camera: first the hub's
// camera list, then the reports as they come.
type directory struct {
	max int

	mu   sync.Mutex
	cams map[string]report

	invalid atomic.Uint64 // messages on status subjects that were not status reports
}

func newDirectory(max int) *directory {
	return &directory{max: max, cams: make(map[string]report)}
}

// put keeps r as camera id's report unless a newer one is known.
func (d *directory) put(r report) {
	d.mu.Lock()
	defer d.mu.Unlock()
	old, ok := d.cams[r.status.ID]
	if !ok && len(d.cams) >= d.max && !d.forget(time.Now()) {
		return
	}
	if ok && old.at.After(r.at) {
		return
	}
	d.cams[r.status.ID] = r
}

// forget makes room for another camera by forgetting the one whose newest
// report is oldest, if it is older than forgetAfter. d.mu is held.
func (d *directory) forget(now time.Time) bool {
	var oldest string
	var at time.Time
	for id, r := range d.cams {
		if oldest == "" || r.at.Before(at) {
			oldest, at = id, r.at
		}
	}
	if oldest == "" || now.Sub(at) < forgetAfter {
		return false
	}
	delete(d.cams, oldest)
	return true
}

// seed takes the hub's camera list.
func (d *directory) seed(cams []camlist.Camera, want func(string) bool) {
	for _, c := range cams {
		if want(c.ID) {
			d.put(report{status: c.Status, at: c.LastSeen})
		}
	}
}

// onStatus takes a status report message.
func (d *directory) onStatus(m *nats.Msg, want func(string) bool) {
	st, err := wire.ParseStatus(m.Subject, m.Data)
	if err == nil {
		err = wire.CheckLive(m)
	}
	if err != nil {
		d.invalid.Add(1)
	}
	if err != nil || !want(st.ID) {
		return // not a camhub agent's report, or not a camera shown
	}
	d.put(report{status: *st, at: time.Now()})
}

func (d *directory) get(id string) (report, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	r, ok := d.cams[id]
	return r, ok
}

func (d *directory) ids() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	ids := make([]string, 0, len(d.cams))
	for id := range d.cams {
		ids = append(ids, id)
	}
	return ids
}

// Camera is one camera in GET /api/cams: what `viewer list --json` says of
// it (camlist.Entry, the same fields from the same report), and what this
// server measures of its frames.
type Camera struct {
	camlist.Entry

	// Measured by this server, from the frames it received.
	Signal      bool      `json:"signal"`                  // a frame came in the last camlist.NoSignalAfter
	RxFPS       float64   `json:"rx_fps"`                  // frames received per second, recently
	FrameAgeMS  *int64    `json:"frame_age_ms"`            // now minus the newest frame's Frame-Time; null: no frame yet
	FrameTime   time.Time `json:"frame_time,omitzero"`     // the newest frame's Frame-Time
	FrameSeq    uint64    `json:"frame_seq,omitempty"`     // and its Frame-Seq
	FrameWidth  int       `json:"frame_width,omitempty"`   // and its Frame-Width
	FrameHeight int       `json:"frame_height,omitempty"`  // and its Frame-Height
	Frames      uint64    `json:"frames_received"`         // frames received by this server
	Bytes       uint64    `json:"bytes_received"`          // their bytes
	Drops       uint64    `json:"frames_missed"`           // frames missing from Frame-Seq
	Received    time.Time `json:"frame_received,omitzero"` // when the newest frame arrived here

	// Lo is the camera's small tier, as its newest report says (null:
	// none); the page asks for it (lo=) for small JPEG tiles.
	Lo *wire.Tier `json:"lo,omitempty"`
	// Codec is the main tier's codec, jpeg or h264, as reported.
	Codec string `json:"codec,omitempty"`
}

// cameras lists the cameras the server shows, judged at now: the configured
// ones in their order, or every camera heard of (by report or frame) by id.
func (s *Server) cameras(now time.Time) []Camera {
	byID := make(map[string]feedStats)
	for _, st := range s.live.stats(now) {
		byID[st.ID] = st
	}
	// An H.264 camera's frames are its access units, not the pictures
	// decoded from them for those who watch it as JPEG.
	for _, st := range s.videoStats(now) {
		byID[st.ID] = st
	}
	ids := s.cfg.Cams
	if len(ids) == 0 {
		seen := make(map[string]bool)
		for _, id := range s.dir.ids() {
			seen[id] = true
			ids = append(ids, id)
		}
		for id, st := range byID {
			if !seen[id] && st.Newest != nil {
				ids = append(ids, id)
			}
		}
		sort.Strings(ids)
	}
	out := make([]Camera, 0, len(ids))
	for _, id := range ids {
		rep, known := s.dir.get(id)
		out = append(out, describe(id, rep, known, byID[id], now))
	}
	return out
}

// camerasFor lists the cameras the server shows that id may see.
func (s *Server) camerasFor(id *identity, now time.Time) []Camera {
	cams := s.cameras(now)
	if id == nil {
		return cams
	}
	out := cams[:0]
	for _, c := range cams {
		if id.allows(c.ID) {
			out = append(out, c)
		}
	}
	return out
}

// describe puts together what is known of one camera: its report, if
// known, as the camera list shows it, and the frames received.
func describe(id string, rep report, known bool, st feedStats, now time.Time) Camera {
	c := Camera{Entry: camlist.Entry{ID: id, State: camlist.StateOffline}}
	if known {
		c.Entry = camlist.Heard(rep.status, rep.at, now).Entry()
		c.Lo, c.Codec = rep.status.Lo, rep.status.Codec
	}
	c.Frames, c.Bytes, c.Drops, c.RxFPS = st.Frames, st.Bytes, st.Drops, st.FPS
	if f := st.Newest; f != nil {
		c.Signal = now.Sub(f.received) <= camlist.NoSignalAfter
		age := max(now.Sub(f.Time), 0).Milliseconds()
		c.FrameAgeMS = &age
		c.FrameTime, c.FrameSeq, c.Received = f.Time.UTC(), f.Seq, f.received.UTC()
		c.FrameWidth, c.FrameHeight = f.Width, f.Height
		// A publisher that sends no status reports (the protocol
		// does not require them) is live while its frames come.
		if !known && c.Signal {
			c.State = camlist.StateLive
		}
	}
	return c
}
