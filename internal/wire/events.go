package wire

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// Motion, events and clips (docs/PROTOCOL.md, "Motion, events and clips").
// A motion detector publishes, for camera <id>:
//
//	cams.<id>.motion   Motion JSON: ON when motion starts, OFF when it ends (not stored)
//	cams.<id>.events   Event JSON: when an event starts, and again when its clip is complete (stream EVENTS)
//
// and copies each event's frames or access units, with their headers, from
// the replay buffer into the stream CLIPS on
//
//	clips.<event-id>.<id>.frames, clips.<event-id>.<id>.video.key|delta
//
// with, beside them, the event's thumbnail on clips.<event-id>.<id>.thumb.
const (
	KindMotion = "motion"
	KindEvents = "events"
	// AllEvents matches the events of every camera.
	AllEvents = SubjectPrefix + ".*." + KindEvents
	// AllMotion matches the motion state of every camera.
	AllMotion = SubjectPrefix + ".*." + KindMotion

	// EventsStream keeps every camera's events, for weeks.
	EventsStream = "EVENTS"
	// ClipsStream keeps the frames of every event's clip.
	ClipsStream = "CLIPS"
	// ClipsPrefix starts every subject of the CLIPS stream.
	ClipsPrefix = "clips"
	// AllClips matches every clip's frames.
	AllClips = ClipsPrefix + ".>"
	// KindThumb ends the subject of an event's thumbnail in CLIPS.
	KindThumb = "thumb"
	// MaxThumbWidth is the widest an event's thumbnail is.
	MaxThumbWidth = 640

	// HeaderMsgID is JetStream's de-duplication header.
	HeaderMsgID = "Nats-Msg-Id"
	// HeaderClipSource is the stream sequence a clip's frame had in the
	// replay buffer (CAMS) it was copied from.
	HeaderClipSource = "Clip-Source-Seq"

	// MotionOn and MotionOff are the states of a Motion message.
	MotionOn  = "ON"
	MotionOff = "OFF"
)

// MotionSubject is the subject camera id's motion state goes on.
func MotionSubject(id string) string { return SubjectPrefix + "." + id + "." + KindMotion }

// EventsSubject is the subject camera id's events go on.
func EventsSubject(id string) string { return SubjectPrefix + "." + id + "." + KindEvents }

// ClipFilter matches every message of event eid's clip of camera id (so
// that NATS permissions can grant a camera's clips: clips.*.<id>.>).
func ClipFilter(eid, id string) string { return ClipsPrefix + "." + eid + "." + id + ".>" }

// ClipHeader is the header of a clip's copy of a buffered message with
// header h: the camera's own headers, without JetStream's (Nats-…), which
// describe where the original was stored and which JetStream refuses in a
// published message (a frame a central hub sourced from a site's buffer
// carries Nats-Stream-Source). The caller sets the copy's own message id.
func ClipHeader(h nats.Header) nats.Header {
	c := make(nats.Header, len(h)+2)
	for k, v := range h {
		if strings.HasPrefix(k, "Nats-") {
			continue
		}
		c[k] = append([]string(nil), v...)
	}
	return c
}

// ThumbSubject is where event eid of camera id keeps its thumbnail: a
// JPEG of the picture that started it, at most MaxThumbWidth wide, with
// the message id ThumbMsgID(eid).
func ThumbSubject(eid, id string) string { return ClipsPrefix + "." + eid + "." + id + "." + KindThumb }

// ThumbMsgID is the message id of event eid's thumbnail: storing it again
// stores nothing.
func ThumbMsgID(eid string) string { return eid + "." + KindThumb }

// EventCamera returns the camera of an event id made by EventID.
func EventCamera(eid string) (string, bool) {
	const stamp = len("20060102T150405000Z")
	if len(eid) <= stamp+1 || eid[stamp] != '-' || eid[stamp-1] != 'Z' || ValidateID(eid[stamp+1:]) != nil {
		return "", false
	}
	return eid[stamp+1:], true
}

// ClipSubject is where a clip keeps a message copied from subject (a
// camera's cams.<id>.frames or cams.<id>.video.key|delta): the same subject
// under clips.<event-id> instead of cams.
func ClipSubject(eid, subject string) string {
	return ClipsPrefix + "." + eid + strings.TrimPrefix(subject, SubjectPrefix)
}

// CamsSubject is the inverse of ClipSubject: the subject in the replay
// buffer of a clip's message, or "" if subject is not one of eid's.
func CamsSubject(eid, subject string) string {
	rest, ok := strings.CutPrefix(subject, ClipsPrefix+"."+eid+".")
	if !ok {
		return ""
	}
	return SubjectPrefix + "." + rest
}

// Motion is the JSON document on cams.<id>.motion.
type Motion struct {
	Camera string    `json:"camera"`
	State  string    `json:"state"`           // MotionOn or MotionOff
	Time   time.Time `json:"time"`            // capture time of the frame that decided it
	Event  string    `json:"event,omitempty"` // the event it starts or ends
	Score  float64   `json:"score,omitempty"` // see Event.Score
}

// Box is a rectangle of the picture, in fractions of its width and height
// (0 to 1 from the top left).
type Box struct {
	X float64 `json:"x"`
	Y float64 `json:"y"`
	W float64 `json:"w"`
	H float64 `json:"h"`
}

// Clip says where an event's clip is and what it holds.
type Clip struct {
	Stream  string    `json:"stream"`            // ClipsStream
	Subject string    `json:"subject"`           // ClipFilter of the event and camera
	From    time.Time `json:"from"`              // capture time of the first frame asked for (start - pre-roll)
	To      time.Time `json:"to,omitzero"`       // of the last (end + post-roll); zero while the event lasts
	First   time.Time `json:"first,omitzero"`    // capture time of the first frame copied
	Last    time.Time `json:"last,omitzero"`     // and of the last
	Frames  int       `json:"frames"`            // frames (access units) copied
	Bytes   int64     `json:"bytes"`             // their payload bytes
	Codec   string    `json:"codec,omitempty"`   // CodecJPEG or CodecH264
	Missing string    `json:"missing,omitempty"` // why frames may be missing (the buffer no longer held them)
}

// Event is the JSON document on cams.<id>.events. An event is published
// when it starts (End zero) and again, with the same ID, when it ends and
// its clip is complete; the newest document of an ID is the one that holds.
type Event struct {
	ID     string    `json:"id"`
	Camera string    `json:"camera"`
	Start  time.Time `json:"start"`            // capture time of the first frame with motion
	End    time.Time `json:"end,omitzero"`     // when motion was over (the off-delay after the last); zero while it lasts
	Score  float64   `json:"score"`            // the largest fraction of the picture that moved (0-1)
	Boxes  []Box     `json:"boxes"`            // where it moved, on the frame with the highest score
	Clip   Clip      `json:"clip"`             // the frames kept
	Frames int       `json:"frames"`           // frames analysed with motion
	Source string    `json:"source,omitempty"` // what detected it ("motion")
}

// Open reports whether the event has not ended yet.
func (e *Event) Open() bool { return e.End.IsZero() }

// MaxEventIDLen is the longest event id.
const MaxEventIDLen = 100

// EventID is the id of camera id's event starting at start: its start in
// UTC to the millisecond and the camera, e.g. 20261201T060031123Z-front.
// It sorts by time and is a valid subject token.
func EventID(id string, start time.Time) string {
	u := start.UTC()
	return u.Format("20060102T150405") + fmt.Sprintf("%03dZ", u.Nanosecond()/int(time.Millisecond)) + "-" + id
}

// ValidateEventID checks an event id: 1-100 characters of A-Z a-z 0-9 _ -.
func ValidateEventID(eid string) error {
	ok := len(eid) > 0 && len(eid) <= MaxEventIDLen
	for i := 0; ok && i < len(eid); i++ {
		c := eid[i]
		ok = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
	}
	if !ok {
		return fmt.Errorf("event id %q: 1-%d characters of A-Z a-z 0-9 _ -", eid, MaxEventIDLen)
	}
	return nil
}

// ErrBadEvent is wrapped by every error from ParseEvent and ParseMotion.
var ErrBadEvent = errors.New("bad event")

// ParseEvent decodes and checks an event received on subject (a camera's
// cams.<id>.events).
func ParseEvent(subject string, data []byte) (*Event, error) {
	id, err := eventsCamera(subject, KindEvents)
	if err != nil {
		return nil, err
	}
	var e Event
	if err := json.Unmarshal(data, &e); err != nil {
		return nil, fmt.Errorf("%w on %s: %v", ErrBadEvent, subject, err)
	}
	if e.Camera != id {
		return nil, fmt.Errorf("%w on %s: camera %q does not match the subject", ErrBadEvent, subject, e.Camera)
	}
	if err := ValidateEventID(e.ID); err != nil {
		return nil, fmt.Errorf("%w on %s: %w", ErrBadEvent, subject, err)
	}
	if e.Start.IsZero() || (!e.End.IsZero() && e.End.Before(e.Start)) {
		return nil, fmt.Errorf("%w on %s: start %v, end %v", ErrBadEvent, subject, e.Start, e.End)
	}
	if !(e.Score >= 0 && e.Score <= 1) || e.Frames < 0 || e.Clip.Frames < 0 || e.Clip.Bytes < 0 {
		return nil, fmt.Errorf("%w on %s: a score outside 0-1 or a negative count", ErrBadEvent, subject)
	}
	if e.Clip.Subject != "" && e.Clip.Subject != ClipFilter(e.ID, id) {
		return nil, fmt.Errorf("%w on %s: clip subject %q is not %q", ErrBadEvent, subject, e.Clip.Subject, ClipFilter(e.ID, id))
	}
	for _, b := range e.Boxes {
		if !b.valid() {
			return nil, fmt.Errorf("%w on %s: box %+v is not inside the picture", ErrBadEvent, subject, b)
		}
	}
	return &e, nil
}

func (b Box) valid() bool {
	in := func(v float64) bool { return v >= 0 && v <= 1 && !math.IsNaN(v) }
	return in(b.X) && in(b.Y) && in(b.W) && in(b.H) && b.X+b.W <= 1.0001 && b.Y+b.H <= 1.0001
}

// ParseMotion decodes and checks a motion message received on subject.
func ParseMotion(subject string, data []byte) (*Motion, error) {
	id, err := eventsCamera(subject, KindMotion)
	if err != nil {
		return nil, err
	}
	var m Motion
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%w on %s: %v", ErrBadEvent, subject, err)
	}
	if m.Camera != id || (m.State != MotionOn && m.State != MotionOff) {
		return nil, fmt.Errorf("%w on %s: camera %q, state %q", ErrBadEvent, subject, m.Camera, m.State)
	}
	return &m, nil
}

// eventsCamera checks that subject is cams.<id>.<kind> and returns id.
func eventsCamera(subject, kind string) (string, error) {
	rest, ok := strings.CutPrefix(subject, SubjectPrefix+".")
	id, k, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 || k != kind {
		return "", fmt.Errorf("%w: subject %q is not cams.<id>.%s", ErrBadEvent, subject, kind)
	}
	if err := ValidateID(id); err != nil {
		return "", fmt.Errorf("%w: %w", ErrBadEvent, err)
	}
	return id, nil
}
