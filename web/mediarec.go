package web

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"camhub/internal/wire"
)

// MediaContentType is the type of GET /api/media: every camera's pictures
// on one connection as length-prefixed binary records (MediaRecord), H.264
// cameras as fragmented MP4 for the browser's Media Source Extensions and
// JPEG cameras as JPEG. docs/PROTOCOL.md describes the framing.
const MediaContentType = "application/x-camhub-media"

// Kinds of MediaRecord.
const (
	// RecordInit is an H.264 camera's MP4 init segment (ftyp, moov);
	// Type is its MIME type with the codec. Every fragment after it, up
	// to the camera's next init, continues its track.
	RecordInit byte = 1
	// RecordFragment is one MP4 fragment (moof, mdat) of access units.
	RecordFragment byte = 2
	// RecordJPEG is one JPEG frame.
	RecordJPEG byte = 3
)

// Limits of a record.
const (
	// MaxRecordSize bounds a record's length field: a record is at most
	// one GOP of access units (gopqueue's limit) or one JPEG.
	MaxRecordSize = 64 << 20
	// recordFixed is the bytes of a record's header besides the camera
	// id and the type: length, kind, id length, times, seq, size, type
	// length.
	recordFixed = 4 + 1 + 1 + 8 + 8 + 8 + 8 + 2 + 2 + 2
)

// ErrBadRecord is wrapped by ReadMediaRecord's errors about a record
// that is not one.
var ErrBadRecord = errors.New("bad media record")

// MediaRecord is one record of GET /api/media. On the wire, big-endian:
//
//	u32  length of what follows
//	u8   kind: 1 init, 2 fragment, 3 JPEG
//	u8   n, then n bytes: the camera id
//	i64  capture time (Frame-Time) of the newest picture in the record, µs since the Unix epoch; 0 in an init
//	i64  media time: a fragment's newest access unit's presentation time on its track, µs; 0 otherwise
//	i64  sent: the server's clock when it wrote the record, µs since the Unix epoch
//	u64  Frame-Seq of the newest picture in the record
//	u16  width, u16 height (0 if unknown)
//	u16  m, then m bytes: the type (init: the MIME type with codecs; JPEG: image/jpeg; fragment: empty)
//	...  the payload: the rest of the length
type MediaRecord struct {
	Kind          byte
	ID            string
	Time          time.Time     // capture time; zero in an init
	MediaTime     time.Duration // a fragment's newest presentation time on its track
	Sent          time.Time
	Seq           uint64
	Width, Height int
	Type          string
	Payload       []byte
}

// appendRecordHead appends the header of a record of r's fields with a
// payload of n bytes.
func appendRecordHead(b []byte, r *MediaRecord, n int) []byte {
	size := recordFixed - 4 + len(r.ID) + len(r.Type) + n
	b = binary.BigEndian.AppendUint32(b, uint32(size))
	b = append(b, r.Kind, byte(len(r.ID)))
	b = append(b, r.ID...)
	var capture int64
	if !r.Time.IsZero() {
		capture = r.Time.UnixMicro()
	}
	b = binary.BigEndian.AppendUint64(b, uint64(capture))
	b = binary.BigEndian.AppendUint64(b, uint64(r.MediaTime.Microseconds()))
	b = binary.BigEndian.AppendUint64(b, uint64(r.Sent.UnixMicro()))
	b = binary.BigEndian.AppendUint64(b, r.Seq)
	b = binary.BigEndian.AppendUint16(b, uint16(min(max(r.Width, 0), 0xffff)))
	b = binary.BigEndian.AppendUint16(b, uint16(min(max(r.Height, 0), 0xffff)))
	b = binary.BigEndian.AppendUint16(b, uint16(len(r.Type)))
	return append(b, r.Type...)
}

// ReadMediaRecord reads one record from r, for Go clients of GET
// /api/media. buf is reused for the record (its Payload aliases it) and
// returned. A record that breaks the framing is an error wrapping
// ErrBadRecord; io.EOF means the stream ended between records.
func ReadMediaRecord(r io.Reader, buf []byte) (MediaRecord, []byte, error) {
	var rec MediaRecord
	var lenb [4]byte
	if _, err := io.ReadFull(r, lenb[:]); err != nil {
		return rec, buf, err
	}
	size := int(binary.BigEndian.Uint32(lenb[:]))
	if size < recordFixed-4 || size > MaxRecordSize {
		return rec, buf, fmt.Errorf("%w: length %d", ErrBadRecord, size)
	}
	if cap(buf) < size {
		buf = make([]byte, size)
	}
	buf = buf[:size]
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return rec, buf, err
	}
	rec, err := parseRecord(buf)
	return rec, buf, err
}

// parseRecord parses a record's bytes after the length field.
func parseRecord(b []byte) (MediaRecord, error) {
	var rec MediaRecord
	rec.Kind = b[0]
	if rec.Kind < RecordInit || rec.Kind > RecordJPEG {
		return rec, fmt.Errorf("%w: kind %d", ErrBadRecord, rec.Kind)
	}
	n := int(b[1])
	if len(b) < recordFixed-4+n {
		return rec, fmt.Errorf("%w: a camera id of %d bytes in a record of %d", ErrBadRecord, n, len(b))
	}
	rec.ID = string(b[2 : 2+n])
	if err := wire.ValidateID(rec.ID); err != nil {
		return rec, fmt.Errorf("%w: %w", ErrBadRecord, err)
	}
	p := b[2+n:]
	be := binary.BigEndian
	if us := int64(be.Uint64(p)); us != 0 {
		rec.Time = time.UnixMicro(us)
	}
	media := int64(be.Uint64(p[8:]))
	if media > math.MaxInt64/1000 || media < math.MinInt64/1000 {
		return rec, fmt.Errorf("%w: media time %d µs", ErrBadRecord, media)
	}
	rec.MediaTime = time.Duration(media) * time.Microsecond
	rec.Sent = time.UnixMicro(int64(be.Uint64(p[16:])))
	rec.Seq = be.Uint64(p[24:])
	rec.Width, rec.Height = int(be.Uint16(p[32:])), int(be.Uint16(p[34:]))
	m := int(be.Uint16(p[36:]))
	p = p[38:]
	if m > len(p) {
		return rec, fmt.Errorf("%w: a type of %d bytes with %d left", ErrBadRecord, m, len(p))
	}
	rec.Type, rec.Payload = string(p[:m]), p[m:]
	return rec, nil
}
