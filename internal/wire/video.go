package wire

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
)

// H.264 video: the second codec, chosen per camera (docs/PROTOCOL.md,
// "H.264 video"). JPEG cameras publish cams.<id>.frames as before; an H.264
// camera publishes one message per access unit (Annex B, SPS and PPS in
// every keyframe) on
//
//	cams.<id>.video.key    keyframes (IDR access units)
//	cams.<id>.video.delta  every other access unit
//
// in decode order, on one connection. The split lets JetStream find
// keyframes by subject: the newest is one direct get of the .key subject's
// last message, and a reader filtered to cams.<id>.video.* continues from
// its stream sequence, so a late viewer shows a picture at once.
const (
	// KindVideo is the third token of a camera's video subjects.
	KindVideo = "video"
	// VideoKey and VideoDelta are the last token of a video subject.
	VideoKey   = "key"
	VideoDelta = "delta"
	// AllVideo matches the video of every camera.
	AllVideo = SubjectPrefix + ".*." + KindVideo + ".*"

	// ContentTypeH264 is the content type of an H.264 access unit in
	// Annex B form (start codes).
	ContentTypeH264 = "video/h264"

	// HeaderCodec is the RFC 6381 codec string of the SPS in force, such
	// as avc1.42C01F, on every video message.
	HeaderCodec = "Frame-Codec"
	// HeaderKey is "1" on keyframes (the subject says it too; the header
	// survives a republish to another subject).
	HeaderKey = "Frame-Key"
	// HeaderPTS is the access unit's presentation time in VideoClockRate
	// ticks, on one clock per agent run.
	HeaderPTS = "Frame-PTS"
	// HeaderDTS is its decode time on the same clock, present only when it
	// differs from the presentation time (B-frames from a camera).
	HeaderDTS = "Frame-DTS"

	// VideoClockRate is the rate of Frame-PTS and Frame-DTS: 90 kHz, as in
	// RTP and MPEG-TS.
	VideoClockRate = 90000
)

// Codec names: the agent's --codec and the codec field of status reports.
const (
	CodecJPEG = "jpeg"
	CodecH264 = "h264"
)

// VideoSubject is the subject camera id publishes an access unit on.
func VideoSubject(id string, key bool) string {
	if key {
		return SubjectPrefix + "." + id + "." + KindVideo + "." + VideoKey
	}
	return SubjectPrefix + "." + id + "." + KindVideo + "." + VideoDelta
}

// VideoFilter matches both video subjects of camera id.
func VideoFilter(id string) string { return SubjectPrefix + "." + id + "." + KindVideo + ".*" }

// ParseVideoSubject splits cams.<id>.video.key|delta into the camera id
// and whether the access unit is a keyframe. It validates the id.
func ParseVideoSubject(subject string) (id string, key bool, err error) {
	rest, ok := strings.CutPrefix(subject, SubjectPrefix+".")
	if ok {
		var last string
		id, last, ok = strings.Cut(rest, "."+KindVideo+".")
		key = last == VideoKey
		ok = ok && (key || last == VideoDelta)
	}
	if !ok {
		return "", false, fmt.Errorf("subject %q is not cams.<id>.video.key or cams.<id>.video.delta", subject)
	}
	if err := ValidateID(id); err != nil {
		return "", false, err
	}
	return id, key, nil
}

// Video describes one H.264 access unit: everything in its headers.
type Video struct {
	Frame        // Seq, Time (capture), Width and Height, as for JPEG
	Codec string // RFC 6381, e.g. avc1.42C01F
	Key   bool   // a keyframe: decoding can start here
	PTS   int64  // presentation time, VideoClockRate ticks
	DTS   int64  // decode time; equal to PTS unless the camera sends B-frames
}

// SetHeader writes the access unit's headers into h, replacing earlier
// values.
func (v Video) SetHeader(h nats.Header) {
	v.Frame.SetHeader(h)
	h[HeaderContentType] = []string{ContentTypeH264}
	h[HeaderCodec] = []string{v.Codec}
	if v.Key {
		h[HeaderKey] = []string{"1"}
	} else {
		delete(h, HeaderKey)
	}
	h[HeaderPTS] = []string{strconv.FormatInt(v.PTS, 10)}
	if v.DTS != v.PTS {
		h[HeaderDTS] = []string{strconv.FormatInt(v.DTS, 10)}
	} else {
		delete(h, HeaderDTS)
	}
}

// Header builds the headers of an access unit's message.
func (v Video) Header() nats.Header {
	h := make(nats.Header, 9)
	v.SetHeader(h)
	return h
}

// codecString is what an RFC 6381 H.264 codec string looks like.
var codecString = regexp.MustCompile(`^avc[13]\.[0-9A-Fa-f]{6}$`)

// ErrBadVideo is wrapped by every error from ParseVideo; it wraps
// ErrBadFrame, so a reader counting bad frames counts these too.
var ErrBadVideo = fmt.Errorf("%w: bad video", ErrBadFrame)

// ParseVideo reads an access unit's headers. It checks every header; it
// does not look at the payload.
func ParseVideo(h nats.Header) (Video, error) {
	var v Video
	if ct := h.Get(HeaderContentType); ct != ContentTypeH264 {
		return v, fmt.Errorf("%w: %s is %q, want %q", ErrBadVideo, HeaderContentType, ct, ContentTypeH264)
	}
	f, err := parseFrame(h, ErrBadVideo)
	if err != nil {
		return v, err
	}
	v.Frame = f
	if v.Codec = h.Get(HeaderCodec); !codecString.MatchString(v.Codec) {
		return v, fmt.Errorf("%w: %s %q is not an RFC 6381 H.264 codec string such as avc1.42C01F", ErrBadVideo, HeaderCodec, v.Codec)
	}
	switch k := h.Get(HeaderKey); k {
	case "1":
		v.Key = true
	case "":
	default:
		return v, fmt.Errorf("%w: %s %q is not 1", ErrBadVideo, HeaderKey, k)
	}
	if v.PTS, err = strconv.ParseInt(h.Get(HeaderPTS), 10, 64); err != nil {
		return v, fmt.Errorf("%w: %s %q is not an integer", ErrBadVideo, HeaderPTS, h.Get(HeaderPTS))
	}
	v.DTS = v.PTS
	if d := h.Get(HeaderDTS); d != "" {
		if v.DTS, err = strconv.ParseInt(d, 10, 64); err != nil || v.DTS > v.PTS {
			return v, fmt.Errorf("%w: %s %q is not an integer at most %s", ErrBadVideo, HeaderDTS, d, HeaderPTS)
		}
	}
	return v, nil
}
