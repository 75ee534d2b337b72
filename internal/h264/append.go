package h264

import "fmt"

// startCode4 is the start code Join and AppendAccessUnit put before every
// NAL unit.
var startCode4 = []byte{0, 0, 0, 1}

// AppendAccessUnit appends nalus to dst as one Annex B access unit, each
// behind a 4-byte start code, and returns the extended slice, as Join does.
// If the NAL units are a keyframe (an IDR slice) that lacks an SPS or a PPS,
// sps or pps (single NAL units without start codes) go before its first
// slice, after an access unit delimiter, as EnsureParams does; added says
// so. It makes one pass over the NAL units and one copy of their bytes: a
// source that receives NAL units (an RTP depacketizer) builds the access
// unit it sends with it.
func AppendAccessUnit(dst []byte, nalus [][]byte, sps, pps []byte) (au []byte, added bool, err error) {
	key, hasSPS, hasPPS := false, false, false
	size := 0
	for _, n := range nalus {
		switch Type(n) {
		case TypeIDR:
			key = true
		case TypeSPS:
			hasSPS = true
		case TypePPS:
			hasPPS = true
		}
		size += len(startCode4) + len(n)
	}
	needSPS, needPPS := key && !hasSPS, key && !hasPPS
	if needSPS {
		if Type(sps) != TypeSPS || len(sps) < 4 {
			return dst, false, fmt.Errorf("%w: a keyframe lacks an SPS and none is given", ErrBadSPS)
		}
		size += len(startCode4) + len(sps)
	}
	if needPPS {
		if Type(pps) != TypePPS || len(pps) < 2 {
			return dst, false, fmt.Errorf("%w: a keyframe lacks a PPS and none is given", ErrBadPPS)
		}
		size += len(startCode4) + len(pps)
	}
	dst = grow(dst, size)
	rest := nalus
	if (needSPS || needPPS) && len(rest) > 0 && Type(rest[0]) == TypeAUD {
		dst = append(append(dst, startCode4...), rest[0]...)
		rest = rest[1:]
	}
	if needSPS {
		dst = append(append(dst, startCode4...), sps...)
	}
	if needPPS {
		dst = append(append(dst, startCode4...), pps...)
	}
	for _, n := range rest {
		dst = append(append(dst, startCode4...), n...)
	}
	return dst, needSPS || needPPS, nil
}

// grow returns b with room for n more bytes.
func grow(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b
	}
	c := make([]byte, len(b), len(b)+n)
	copy(c, b)
	return c
}
