// Package wire is camhub's wire contract: the NATS subjects, frame headers,
// camera ids and status reports that agents, hubs, viewers and any other
// client agree on. docs/PROTOCOL.md describes the same contract in prose.
//
// The package is a leaf: it depends on nats.go for its header type only, and
// nothing in it needs cgo, so every binary and third-party client can use it.
package wire

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// Subjects and streams.
const (
	// SubjectPrefix starts every camhub subject.
	SubjectPrefix = "cams"
	// KindFrames and KindStatus are the last token of a camera's
	// subjects: cams.<id>.frames and cams.<id>.status.
	KindFrames = "frames"
	KindStatus = "status"
	// AllFrames matches the frames of every camera.
	AllFrames = SubjectPrefix + ".*." + KindFrames
	// AllStatus matches the status reports of every camera.
	AllStatus = SubjectPrefix + ".*." + KindStatus

	// FramesStream is the JetStream stream that holds the replay buffer.
	FramesStream = "CAMS"
	// StatusStream is the JetStream stream that keeps the newest status
	// report of every camera, so that a camera list answers at once.
	StatusStream = "CAMS_STATUS"
)

// Frame headers.
const (
	HeaderContentType = "Content-Type"
	HeaderSeq         = "Frame-Seq"
	HeaderTime        = "Frame-Time"
	HeaderWidth       = "Frame-Width"
	HeaderHeight      = "Frame-Height"

	// ContentTypeJPEG is the content type of cams.<id>.frames, the
	// default codec's subject.
	ContentTypeJPEG = "image/jpeg"
)

// MaxIDLen is the longest camera id.
const MaxIDLen = 64

// IDRule states the camera id rule in words, for error messages.
const IDRule = "a camera id is 1-64 characters of A-Z a-z 0-9 _ -"

// ErrInvalidID is wrapped by every id validation error.
var ErrInvalidID = errors.New("invalid camera id")

// ValidateID reports whether id follows IDRule.
func ValidateID(id string) error {
	if len(id) == 0 || len(id) > MaxIDLen {
		return fmt.Errorf("%w %q: %s", ErrInvalidID, id, IDRule)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
		default:
			return fmt.Errorf("%w %q: %s", ErrInvalidID, id, IDRule)
		}
	}
	return nil
}

// ValidateIDs checks a list of camera ids: each follows IDRule, none is
// listed twice, and there are at most max (any number if max is 0).
func ValidateIDs(ids []string, max int) error {
	if max > 0 && len(ids) > max {
		return fmt.Errorf("%d cameras, at most %d", len(ids), max)
	}
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if err := ValidateID(id); err != nil {
			return err
		}
		if seen[id] {
			return fmt.Errorf("camera %q is listed twice", id)
		}
		seen[id] = true
	}
	return nil
}

// FramesSubject is the subject camera id publishes its frames on.
func FramesSubject(id string) string { return SubjectPrefix + "." + id + "." + KindFrames }

// StatusSubject is the subject camera id reports its status on.
func StatusSubject(id string) string { return SubjectPrefix + "." + id + "." + KindStatus }

// ParseSubject splits a camhub subject "cams.<id>.<kind>" into the camera id
// and kind (KindFrames or KindStatus). It validates the id.
func ParseSubject(subject string) (id, kind string, err error) {
	rest, ok := strings.CutPrefix(subject, SubjectPrefix+".")
	if !ok {
		return "", "", fmt.Errorf("subject %q is not under %q", subject, SubjectPrefix+".")
	}
	id, kind, ok = strings.Cut(rest, ".")
	if !ok || (kind != KindFrames && kind != KindStatus) {
		return "", "", fmt.Errorf("subject %q is not cams.<id>.frames or cams.<id>.status", subject)
	}
	if err := ValidateID(id); err != nil {
		return "", "", err
	}
	return id, kind, nil
}

// ErrReply is wrapped by the error CheckLive returns.
var ErrReply = errors.New("live message with a reply subject")

// CheckLive checks a message received on a live subject (cams.<id>.frames
// or cams.<id>.status): it must carry no reply subject. Agents never set
// one; a JetStream consumer's push deliveries always do (their
// acknowledgement subject), so a message with one was delivered by a
// consumer someone pointed at the live subject, not sent by the camera's
// agent, and must not be shown.
func CheckLive(m *nats.Msg) error {
	if m.Reply != "" {
		return fmt.Errorf("%w (%s): not sent by a camhub agent", ErrReply, m.Reply)
	}
	return nil
}

// Frame describes one frame: everything in its headers.
type Frame struct {
	Seq    uint64
	Time   time.Time // capture time
	Width  int
	Height int
}

// Header builds the headers of a frame message.
func (f Frame) Header() nats.Header {
	h := make(nats.Header, 5)
	f.SetHeader(h)
	return h
}

// SetHeader writes the frame's headers into h, replacing earlier values.
// An agent reuses one header map for every frame it sends.
func (f Frame) SetHeader(h nats.Header) {
	// Direct map writes: the keys are already canonical, and this avoids
	// the allocation nats.Header.Set makes for each key.
	h[HeaderContentType] = []string{ContentTypeJPEG}
	h[HeaderSeq] = []string{strconv.FormatUint(f.Seq, 10)}
	h[HeaderTime] = []string{FormatTime(f.Time)}
	h[HeaderWidth] = []string{strconv.Itoa(f.Width)}
	h[HeaderHeight] = []string{strconv.Itoa(f.Height)}
}

// ErrBadFrame is wrapped by every error from ParseFrame.
var ErrBadFrame = errors.New("bad frame")

// ParseFrame reads a JPEG frame's headers. It checks the content type and
// that every header is present and well-formed; it does not look at the
// payload.
func ParseFrame(h nats.Header) (Frame, error) {
	if ct := h.Get(HeaderContentType); ct != ContentTypeJPEG {
		return Frame{}, fmt.Errorf("%w: %s is %q, want %q", ErrBadFrame, HeaderContentType, ct, ContentTypeJPEG)
	}
	return parseFrame(h, ErrBadFrame)
}

// parseFrame reads the headers every frame has, JPEG or H.264; its errors
// wrap bad.
func parseFrame(h nats.Header, bad error) (Frame, error) {
	var f Frame
	seq, err := strconv.ParseUint(h.Get(HeaderSeq), 10, 64)
	if err != nil || seq == 0 {
		return f, fmt.Errorf("%w: %s %q is not a positive integer", bad, HeaderSeq, h.Get(HeaderSeq))
	}
	t, err := time.Parse(time.RFC3339Nano, h.Get(HeaderTime))
	if err != nil {
		return f, fmt.Errorf("%w: %s %q is not an RFC 3339 time", bad, HeaderTime, h.Get(HeaderTime))
	}
	w, err := strconv.Atoi(h.Get(HeaderWidth))
	if err != nil || w <= 0 || w > 1<<16 {
		return f, fmt.Errorf("%w: %s %q is not a width", bad, HeaderWidth, h.Get(HeaderWidth))
	}
	hh, err := strconv.Atoi(h.Get(HeaderHeight))
	if err != nil || hh <= 0 || hh > 1<<16 {
		return f, fmt.Errorf("%w: %s %q is not a height", bad, HeaderHeight, h.Get(HeaderHeight))
	}
	f.Seq, f.Time, f.Width, f.Height = seq, t, w, hh
	return f, nil
}

// TimeLayout is how camhub writes times on the wire (Frame-Time, the times
// in status reports): RFC 3339 in UTC with nanoseconds, always nine digits,
// so the strings sort. Readers accept any RFC 3339 time.
const TimeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// FormatTime formats t in TimeLayout.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }

// AppendTime appends t in TimeLayout to b, as FormatTime writes it.
func AppendTime(b []byte, t time.Time) []byte { return t.UTC().AppendFormat(b, TimeLayout) }

// LooksLikeJPEG is a cheap check that b is a whole JPEG file: it starts
// with the start-of-image marker and another marker, and ends with the
// end-of-image marker (some encoders pad after it). It catches payloads
// that are not JPEGs, empty or cut short, which a decoder might otherwise
// turn into a partly grey picture without an error.
func LooksLikeJPEG(b []byte) bool {
	if len(b) < 4 || b[0] != 0xFF || b[1] != 0xD8 || b[2] != 0xFF {
		return false
	}
	tail := b[max(2, len(b)-64):]
	return bytes.LastIndex(tail, []byte{0xFF, 0xD9}) >= 0
}
