package mp4

import (
	"bytes"
	"fmt"
	"time"

	"camhub/internal/h264"
)

// au is what the muxer keeps of an access unit: its NAL units in AVCC
// form (each behind a 4-byte big-endian length) at payload[off:off+n] of
// a buffer that may move, and what it learnt on the way.
type au struct {
	off, n   int
	key      bool   // it holds an IDR slice
	sps      []byte // its first SPS, a sub-slice of the Annex B input, or nil
	pts, dts time.Duration
}

// appendAVCC appends the NAL units of the Annex B access unit b to dst
// in AVCC form. It reads b as internal/h264.Split does, with the same
// errors and limits, in one pass and without allocating (bytes.Index
// finds the start codes): the NAL units are what lies between start
// codes, without trailing zero bytes, empty ones dropped.
func appendAVCC(dst, b []byte) ([]byte, au, error) {
	a := au{off: len(dst)}
	switch {
	case len(b) == 0:
		return dst, a, h264.ErrEmpty
	case len(b) > h264.MaxAccessUnitSize:
		return dst, a, fmt.Errorf("%w: %d bytes, at most %d", h264.ErrTooLarge, len(b), h264.MaxAccessUnitSize)
	}
	i := 0
	for i < len(b) && b[i] == 0 {
		i++
	}
	if i < 2 || i >= len(b) || b[i] != 1 {
		return dst, a, h264.ErrNoStartCode
	}
	count := 0
	for rest := b[i+1:]; ; {
		next := bytes.Index(rest, startCode)
		nalu := rest
		if next >= 0 {
			nalu = rest[:next]
		}
		for len(nalu) > 0 && nalu[len(nalu)-1] == 0 {
			nalu = nalu[:len(nalu)-1]
		}
		if len(nalu) > 0 {
			if count++; count > h264.MaxNALUs {
				return dst[:a.off], a, fmt.Errorf("%w: more than %d NAL units", h264.ErrTooLarge, h264.MaxNALUs)
			}
			switch h264.Type(nalu) {
			case h264.TypeIDR:
				a.key = true
			case h264.TypeSPS:
				if a.sps == nil {
					a.sps = nalu
				}
			}
			l := len(nalu)
			dst = append(dst, byte(l>>24), byte(l>>16), byte(l>>8), byte(l))
			dst = append(dst, nalu...)
		}
		if next < 0 {
			break
		}
		rest = rest[next+3:]
	}
	if count == 0 {
		return dst, a, fmt.Errorf("%w: no NAL unit", h264.ErrEmpty)
	}
	a.n = len(dst) - a.off
	return dst, a, nil
}

var startCode = []byte{0, 0, 1}
