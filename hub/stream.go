package hub

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"camhub/internal/wire"
)

// Buffer defaults.
const (
	// DefaultReplay is sized for H.264: 1 GiB holds ten minutes of about
	// seven 2 Mbit/s cameras (README, hub); beyond that the byte bound
	// binds and the hub says so.
	DefaultReplay      = 10 * time.Minute
	DefaultReplayBytes = 1 << 30
	// StatusMaxAge is how long the newest report of a camera that stopped
	// reporting is kept: a camera silent for longer leaves the list.
	StatusMaxAge = 7 * 24 * time.Hour
	// statusMaxBytes bounds the status stream: one small report a camera.
	statusMaxBytes = 16 << 20

	// DefaultClipsAge and DefaultClipsBytes bound the CLIPS stream.
	DefaultClipsAge   = 7 * 24 * time.Hour
	DefaultClipsBytes = 1 << 30
	// EventsMaxAge and EventsMaxBytes bound the EVENTS stream: a month of
	// events, about 100 000 of them.
	EventsMaxAge   = 30 * 24 * time.Hour
	EventsMaxBytes = 64 << 20
)

// BufferConfig says how the replay buffer is kept.
type BufferConfig struct {
	Storage     jetstream.StorageType // jetstream.MemoryStorage or jetstream.FileStorage
	Replay      time.Duration         // the oldest frame kept
	ReplayBytes int64                 // the most bytes kept
	MaxMsgSize  int32                 // the largest frame accepted; 0: the server's maximum payload
	Replicas    int                   // copies in a cluster; 0 means 1
	// ClipsAge and ClipsBytes bound the CLIPS stream (0: the defaults).
	// EVENTS and CLIPS are always on file storage: they outlive a restart.
	ClipsAge   time.Duration
	ClipsBytes int64
	// Sites, if set, are site hubs' JetStream domains: CAMS then captures
	// no subjects itself and sources each site's CAMS (SiteSource).
	Sites []string
}

// FramesStreamConfig is the configuration of the CAMS stream: every
// camera's frames (JPEG) and access units (H.264), bounded by age and bytes,
// discarding the oldest. Direct gets are allowed, so that the newest
// keyframe of a camera (the last message on cams.<id>.video.key) or its
// newest JPEG is one request, which NATS permissions can grant per camera
// ($JS.API.DIRECT.GET.CAMS.<subject>).
func FramesStreamConfig(b BufferConfig) jetstream.StreamConfig {
	cfg := jetstream.StreamConfig{
		Name:        wire.FramesStream,
		Description: "camhub replay buffer: the newest frames of every camera",
		Subjects:    []string{wire.AllFrames, wire.AllVideo},
		AllowDirect: true,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      b.Replay,
		MaxBytes:    b.ReplayBytes,
		MaxMsgs:     -1,
		MaxMsgSize:  b.MaxMsgSize,
		Storage:     b.Storage,
		Replicas:    max(b.Replicas, 1),
		// Frames carry no Nats-Msg-Id; a short window keeps the
		// de-duplication index small should a client send some.
		Duplicates: min(time.Second, b.Replay),
	}
	if len(b.Sites) > 0 {
		cfg.Subjects = nil
		for _, d := range b.Sites {
			cfg.Sources = append(cfg.Sources, SiteSource(d))
		}
	}
	return cfg
}

// StatusStreamConfig is the configuration of the CAMS_STATUS stream: the
// newest status report of every camera, so a camera list answers at once.
func StatusStreamConfig(b BufferConfig) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:              wire.StatusStream,
		Description:       "camhub camera list: the newest status report of every camera",
		Subjects:          []string{wire.AllStatus},
		Retention:         jetstream.LimitsPolicy,
		Discard:           jetstream.DiscardOld,
		MaxMsgsPerSubject: 1,
		MaxAge:            StatusMaxAge,
		MaxBytes:          statusMaxBytes,
		MaxMsgs:           -1,
		MaxMsgSize:        64 << 10,
		Storage:           b.Storage,
		Replicas:          max(b.Replicas, 1),
		Duplicates:        time.Second,
	}
}

// EventsStreamConfig is the configuration of the EVENTS stream: every
// camera's events (cams.<id>.events), a month of them, on file storage.
// An event is published twice, with message ids <event-id>.start and
// <event-id>.end, so a restarted detector never doubles one.
func EventsStreamConfig(b BufferConfig) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        wire.EventsStream,
		Description: "camhub events: motion detected on the cameras",
		Subjects:    []string{wire.AllEvents},
		AllowDirect: true,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      EventsMaxAge,
		MaxBytes:    EventsMaxBytes,
		MaxMsgs:     -1,
		MaxMsgSize:  256 << 10,
		Storage:     jetstream.FileStorage,
		Replicas:    max(b.Replicas, 1),
		Duplicates:  10 * time.Minute,
	}
}

// ClipsStreamConfig is the configuration of the CLIPS stream: the frames
// of every event's clip (clips.<event-id>.<id>.frames|video.*), copied
// from CAMS with their headers, bounded by age and bytes, discarding the
// oldest, on file storage. Each copy carries the message id
// <event-id>.<kind>.<Frame-Time>.<Frame-Seq>, so copying again after a
// restart adds nothing.
func ClipsStreamConfig(b BufferConfig) jetstream.StreamConfig {
	age, bytes := b.ClipsAge, b.ClipsBytes
	if age <= 0 {
		age = DefaultClipsAge
	}
	if bytes <= 0 {
		bytes = DefaultClipsBytes
	}
	return jetstream.StreamConfig{
		Name:        wire.ClipsStream,
		Description: "camhub clips: the frames of each event, with pre- and post-roll",
		Subjects:    []string{wire.AllClips},
		AllowDirect: true,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      age,
		MaxBytes:    bytes,
		MaxMsgs:     -1,
		MaxMsgSize:  b.MaxMsgSize,
		Storage:     jetstream.FileStorage,
		Replicas:    max(b.Replicas, 1),
		Duplicates:  10 * time.Minute,
	}
}

// Provision creates the CAMS, CAMS_STATUS, EVENTS and CLIPS streams, or
// updates them to b's limits if they exist. It works on any NATS server
// with JetStream.
func Provision(ctx context.Context, js jetstream.JetStream, b BufferConfig) error {
	for _, cfg := range []jetstream.StreamConfig{FramesStreamConfig(b), StatusStreamConfig(b), EventsStreamConfig(b), ClipsStreamConfig(b)} {
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) ||
				errors.Is(err, nats.ErrNoResponders) {
				return fmt.Errorf("creating stream %s: the NATS server has no JetStream; start nats-server with -js: %w", cfg.Name, err)
			}
			if info, ierr := js.Stream(ctx, cfg.Name); ierr == nil && info.CachedInfo().Config.Storage != cfg.Storage {
				return fmt.Errorf("stream %s exists with %s storage and cannot change to %s; remove it (nats stream rm %s) or choose --storage %s: %w",
					cfg.Name, info.CachedInfo().Config.Storage, cfg.Storage, cfg.Name, info.CachedInfo().Config.Storage, err)
			}
			return fmt.Errorf("creating stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}
