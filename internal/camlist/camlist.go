// Package camlist reads the camera list the hub keeps: the newest status
// report of every camera in the CAMS_STATUS stream. It answers at once, from
// the stream, without waiting for the next report.
//
// It also says what the list shows of a camera: its state (live, offline,
// or what it reports) and Entry, the one JSON shape of a camera that both
// `viewer list --json` and the web viewer's GET /api/cams answer.
package camlist

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"camhub/internal/natsconn"
	"camhub/internal/wire"
)

// Camera is one camera as the hub last heard of it.
type Camera struct {
	wire.Status
	// LastSeen is when the hub stored the camera's newest report.
	LastSeen time.Time
	// Online is false once the camera stopped or three reports were missed.
	Online bool
}

// ErrNoHub is returned when the NATS server has no camhub streams.
var ErrNoHub = errors.New("no camhub hub has provisioned this NATS server (stream " + wire.StatusStream + " not found); start `hub`")

// List returns every camera the hub knows, sorted by id, judged online or
// offline at now.
func List(ctx context.Context, js jetstream.JetStream, now time.Time) ([]Camera, error) {
	st, err := js.Stream(ctx, wire.StatusStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, ErrNoHub
	}
	if err != nil {
		return nil, fmt.Errorf("reading the camera list: %w", err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(wire.AllStatus))
	if err != nil {
		return nil, fmt.Errorf("reading the camera list: %w", err)
	}
	cams := make([]Camera, 0, len(info.State.Subjects))
	for subject := range info.State.Subjects {
		msg, err := st.GetLastMsgForSubject(ctx, subject)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // expired between the two calls
		}
		if err != nil {
			return nil, fmt.Errorf("reading the camera list: %w", err)
		}
		s, err := wire.ParseStatus(msg.Subject, msg.Data)
		if err != nil {
			continue // not a camhub agent's report
		}
		cams = append(cams, Heard(*s, msg.Time, now))
	}
	sort.Slice(cams, func(i, j int) bool { return cams[i].ID < cams[j].ID })
	return cams, nil
}

// States the camera list shows.
const (
	StateLive    = "live"    // online and streaming
	StateOffline = "offline" // stopped, silent for three report intervals, or never heard of
	// An online camera that is starting or failing shows the state it
	// reports: wire.StateStarting or wire.StateSourceError.
)

// NoSignalAfter is how long a camera may send no frame that can be shown
// before a viewer (the desktop grid's tile, the web page's) says "no
// signal".
const NoSignalAfter = 3 * time.Second

// Heard is camera s as the hub last heard of it, at lastSeen, judged at now.
func Heard(s wire.Status, lastSeen, now time.Time) Camera {
	return Camera{Status: s, LastSeen: lastSeen, Online: s.Online(lastSeen, now)}
}

// Entry is one camera as `viewer list --json` and the web viewer's GET
// /api/cams show it: the same fields, from the same report, by Camera.Entry.
// Fields left out are unknown: a camera the web viewer has frames of but no
// report from has no reported_state, last_seen or version.
type Entry struct {
	ID            string    `json:"id"`
	Site          string    `json:"site,omitempty"`           // where the camera is, if its agent says
	State         string    `json:"state"`                    // live, offline, starting or source-error
	ReportedState string    `json:"reported_state,omitempty"` // the state in the camera's newest report
	Error         string    `json:"error,omitempty"`          // the source error, with source-error
	FPS           float64   `json:"fps"`                      // frames sent per second, as the agent reports it
	Width         int       `json:"width"`
	Height        int       `json:"height"`
	Host          string    `json:"host"`
	Source        string    `json:"source"` // credentials redacted by the agent
	LastSeen      time.Time `json:"last_seen,omitzero"`
	FramesSent    uint64    `json:"frames_sent"`
	FramesDropped uint64    `json:"frames_dropped"`
	Version       string    `json:"version,omitempty"`
}

// state is the state the camera list shows for c: offline, live, or the
// state it reports while starting or failing.
func (c Camera) state() string {
	switch {
	case !c.Online:
		return StateOffline
	case c.Status.State == wire.StateStreaming:
		return StateLive
	default:
		return c.Status.State
	}
}

// Entry is what the camera list shows of c. The source is redacted
// (natsconn.RedactURL): an agent that is not camhub's may report one with
// its password or token in it.
func (c Camera) Entry() Entry {
	s := c.Status
	return Entry{
		ID: s.ID, Site: s.Site, State: c.state(), ReportedState: s.State, Error: s.Error,
		FPS: s.FPS, Width: s.Width, Height: s.Height, Host: s.Host, Source: natsconn.RedactURL(s.Source),
		LastSeen: c.LastSeen.UTC(), FramesSent: s.FramesSent, FramesDropped: s.FramesDropped, Version: s.Version,
	}
}

// Entries is what the camera list shows of cams.
func Entries(cams []Camera) []Entry {
	out := make([]Entry, len(cams))
	for i, c := range cams {
		out[i] = c.Entry()
	}
	return out
}
