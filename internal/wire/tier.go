package wire

import (
	"fmt"
	"strings"
)

// Quality tiers (docs/PROTOCOL.md, "The small tier"). A camera's frames on
// cams.<id>.frames or cams.<id>.video.* are its main tier. An agent may
// also publish a small tier of the same camera, for grids of small tiles:
//
//	cams.<id>.lo.frames            JPEG frames, as cams.<id>.frames
//	cams.<id>.lo.video.key|delta   H.264 access units, as cams.<id>.video.*
//
// The third token, lo, is the subject's kind as everywhere under cams.:
// cams.*.frames and cams.*.video.* never match the small tier, so a
// reader that knows nothing of tiers reads the main tier alone. The small
// tier is live only: the hub's CAMS stream does not store it, and rewinds,
// exports and snapshots read the main tier.
const (
	// KindLo is the third token of a camera's small-tier subjects.
	KindLo = "lo"

	// TierMain and TierLo name the tiers (viewer --tier, the web API).
	TierMain = "main"
	TierLo   = "lo"

	// AllLoFrames matches the small-tier JPEG frames of every camera.
	AllLoFrames = SubjectPrefix + ".*." + KindLo + "." + KindFrames
	// AllLoVideo matches the small-tier access units of every camera.
	AllLoVideo = SubjectPrefix + ".*." + KindLo + "." + KindVideo + ".*"
)

// LoFramesSubject is the subject camera id publishes its small tier's JPEG
// frames on.
func LoFramesSubject(id string) string {
	return SubjectPrefix + "." + id + "." + KindLo + "." + KindFrames
}

// LoVideoSubject is the subject camera id publishes a small-tier access
// unit on.
func LoVideoSubject(id string, key bool) string {
	last := VideoDelta
	if key {
		last = VideoKey
	}
	return SubjectPrefix + "." + id + "." + KindLo + "." + KindVideo + "." + last
}

// LoVideoFilter matches both small-tier video subjects of camera id.
func LoVideoFilter(id string) string {
	return SubjectPrefix + "." + id + "." + KindLo + "." + KindVideo + ".*"
}

// ParseLoSubject splits a small-tier subject, cams.<id>.lo.frames or
// cams.<id>.lo.video.key|delta, into the camera id, whether it carries
// video and, for video, whether the access unit is a keyframe. It
// validates the id.
func ParseLoSubject(subject string) (id string, video, key bool, err error) {
	rest, ok := strings.CutPrefix(subject, SubjectPrefix+".")
	var tail string
	if ok {
		id, tail, ok = strings.Cut(rest, "."+KindLo+".")
	}
	switch {
	case !ok:
	case tail == KindFrames:
	case tail == KindVideo+"."+VideoKey:
		video, key = true, true
	case tail == KindVideo+"."+VideoDelta:
		video = true
	default:
		ok = false
	}
	if !ok {
		return "", false, false, fmt.Errorf("subject %q is not cams.<id>.lo.frames or cams.<id>.lo.video.key|delta", subject)
	}
	if err := ValidateID(id); err != nil {
		return "", false, false, err
	}
	return id, video, key, nil
}

// Tier describes a camera's small tier in its status report (Status.Lo):
// what it sends and how it fares, counted apart from the main tier.
type Tier struct {
	Codec         string  `json:"codec"` // CodecJPEG or CodecH264
	Width         int     `json:"width"` // of the frames sent (as configured until one was)
	Height        int     `json:"height"`
	FPS           float64 `json:"fps"` // frames sent per second, recently
	FramesSent    uint64  `json:"frames_sent"`
	FramesDropped uint64  `json:"frames_dropped"`
	BytesSent     uint64  `json:"bytes_sent"`
}

// ChooseTier is the tier a tile of tile pixels (width and height, device
// pixels) reads of a camera whose main tier is main and whose small tier
// is lo (zero: the camera has none): the small tier when the tile is at
// most half the main tier's size in both dimensions, else the main one.
// pin, TierMain or TierLo, overrides the choice (TierLo only where there is
// a small tier); anything else chooses by size.
func ChooseTier(tileW, tileH, mainW, mainH, loW, loH int, pin string) string {
	if loW <= 0 || loH <= 0 {
		return TierMain
	}
	switch pin {
	case TierMain, TierLo:
		return pin
	}
	if mainW <= 0 || mainH <= 0 {
		return TierMain
	}
	if 2*tileW <= mainW && 2*tileH <= mainH {
		return TierLo
	}
	return TierMain
}
