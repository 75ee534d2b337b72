// Package camlist reads the camera list the hub keeps: the newest status
// report of every camera in the CAMS_STATUS stream. It answers at once, from
// the stream, without waiting for the next report.
package camlist

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"

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
		cams = append(cams, Camera{Status: *s, LastSeen: msg.Time, Online: s.Online(msg.Time, now)})
	}
	sort.Slice(cams, func(i, j int) bool { return cams[i].ID < cams[j].ID })
	return cams, nil
}
