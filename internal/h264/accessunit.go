package h264

import "time"

// ClockRate is the rate of PTS and DTS: 90 kHz, as in RTP and MPEG-TS.
const ClockRate = 90000

// TimeSource says where an AccessUnit's wall-clock Time comes from.
type TimeSource string

const (
	// TimeRTCP: the camera's own clock, mapped from the RTP timestamp
	// through its RTCP sender reports (NTP time).
	TimeRTCP TimeSource = "rtcp"
	// TimeReceive: camhub's clock when the access unit's first packet
	// arrived.
	TimeReceive TimeSource = "receive"
)

// AccessUnit is one H.264 access unit from a source that passes a
// camera's stream through (an RTSP camera, an MPEG-TS pipe): the NAL
// units as the camera sent them, joined in Annex B form with 4-byte start
// codes, SPS and PPS in every keyframe.
type AccessUnit struct {
	Data []byte // Annex B; owned by the receiver
	Key  bool   // an IDR access unit, with SPS and PPS first

	// Seq counts the access units the source received, from 1; a gap
	// means access units were dropped (a slow reader, a lost packet,
	// waiting for a keyframe).
	Seq uint64

	// PTS and DTS are in ClockRate ticks on one clock per source, which
	// starts near zero. DTS equals PTS unless the camera sends B-frames.
	PTS, DTS int64

	Time       time.Time  // wall clock of the capture
	TimeSource TimeSource // where Time comes from

	// Codec is the RFC 6381 codec string and Width and Height the picture
	// size, from the SPS in force.
	Codec         string
	Width, Height int
}
