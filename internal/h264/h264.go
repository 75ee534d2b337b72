// Package h264 reads and writes H.264 access units in Annex B form, the
// form camhub carries on the wire: one access unit per message, NAL units
// each behind a start code, SPS and PPS in every keyframe.
//
// It is pure Go over mediacommon's pkg/codecs/h264 (Annex B framing, SPS
// parsing) and never panics on its input: an access unit comes from a
// camera or from the network, and a damaged one is an error to count.
package h264

import (
	"bytes"
	"errors"
	"fmt"

	mch264 "github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

// Limits on what Split accepts. An access unit of a 50 Mbit/s 2160p
// stream stays under 8 MiB; x264 writes fewer than 25 NAL units per
// access unit even at 4K with sliced threads, and cameras fewer still.
const (
	MaxAccessUnitSize = mch264.MaxAccessUnitSize
	MaxNALUs          = 256
)

// Errors of Split and the functions built on it; each returned error
// wraps one of these.
var (
	ErrEmpty       = errors.New("h264: empty access unit")
	ErrNoStartCode = errors.New("h264: access unit does not begin with a start code")
	ErrTooLarge    = errors.New("h264: access unit too large")
	ErrBadSPS      = errors.New("h264: bad SPS")
	ErrBadPPS      = errors.New("h264: bad PPS")
)

// NAL unit types camhub looks at (ITU-T H.264 Table 7-1).
const (
	TypeNonIDR = mch264.NALUTypeNonIDR
	TypeIDR    = mch264.NALUTypeIDR
	TypeSEI    = mch264.NALUTypeSEI
	TypeSPS    = mch264.NALUTypeSPS
	TypePPS    = mch264.NALUTypePPS
	TypeAUD    = mch264.NALUTypeAccessUnitDelimiter
)

// Type returns the type of a NAL unit; 0 (unspecified) for an empty one.
func Type(nalu []byte) mch264.NALUType {
	if len(nalu) == 0 {
		return 0
	}
	return mch264.NALUType(nalu[0] & 0x1F)
}

// startCode returns the index of the three-byte start code (00 00 01)
// that b begins with after any number of leading zero bytes, or -1.
func startCode(b []byte) int {
	i := 0
	for i < len(b) && b[i] == 0 {
		i++
	}
	if i >= 2 && i < len(b) && b[i] == 1 {
		return i - 2
	}
	return -1
}

// Split returns the NAL units of an Annex B access unit, without their
// start codes. The NAL units are sub-slices of au (copy what you keep
// beyond au's life). Trailing zero bytes, which belong to the byte stream
// and not to a NAL unit, are dropped, and so are NAL units left empty.
func Split(au []byte) ([][]byte, error) {
	switch {
	case len(au) == 0:
		return nil, ErrEmpty
	case len(au) > MaxAccessUnitSize:
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, len(au), MaxAccessUnitSize)
	}
	sc := startCode(au)
	if sc < 0 {
		return nil, ErrNoStartCode
	}
	var a mch264.AnnexB
	if err := a.Unmarshal(au[sc:]); errors.Is(err, mch264.ErrAnnexBNoNALUs) {
		return nil, fmt.Errorf("%w: no NAL unit", ErrEmpty)
	} else if err != nil {
		return nil, fmt.Errorf("h264: %w", err)
	}
	out := a[:0]
	for _, n := range a {
		n = bytes.TrimRight(n, "\x00")
		if len(n) > 0 {
			out = append(out, n)
		}
	}
	switch {
	case len(out) == 0:
		return nil, fmt.Errorf("%w: no NAL unit", ErrEmpty)
	case len(out) > MaxNALUs:
		return nil, fmt.Errorf("%w: %d NAL units, at most %d", ErrTooLarge, len(out), MaxNALUs)
	}
	return out, nil
}

// Join writes NAL units as one Annex B access unit, each behind a 4-byte
// start code, into a new slice.
func Join(nalus [][]byte) []byte {
	b, _ := mch264.AnnexB(nalus).Marshal() // never fails
	return b
}

// IsKeyframe reports whether au is a random access point: it holds an IDR
// slice, so a decoder given SPS and PPS can start from it. Damaged input
// is not a keyframe.
func IsKeyframe(au []byte) bool {
	nalus, err := Split(au)
	return err == nil && hasType(nalus, TypeIDR)
}

func hasType(nalus [][]byte, t mch264.NALUType) bool {
	for _, n := range nalus {
		if Type(n) == t {
			return true
		}
	}
	return false
}

// Params returns copies of the first SPS and PPS in au; either is nil when
// au has none.
func Params(au []byte) (sps, pps []byte, err error) {
	nalus, err := Split(au)
	if err != nil {
		return nil, nil, err
	}
	for _, n := range nalus {
		switch Type(n) {
		case TypeSPS:
			if sps == nil {
				sps = bytes.Clone(n)
			}
		case TypePPS:
			if pps == nil {
				pps = bytes.Clone(n)
			}
		}
	}
	return sps, pps, nil
}

// EnsureParams returns au with sps and pps before its first slice if au is
// a keyframe that lacks them (as cameras that send parameter sets out of
// band, in the SDP, do), so that every keyframe on the wire can start a
// decoder. An access unit delimiter stays first. Anything else, and a
// keyframe that already has both, is returned as it is (the same slice);
// a new slice otherwise. sps and pps must be a single SPS and PPS NAL unit
// without start codes.
func EnsureParams(au, sps, pps []byte) ([]byte, error) {
	nalus, err := Split(au)
	if err != nil {
		return nil, err
	}
	if !hasType(nalus, TypeIDR) {
		return au, nil
	}
	needSPS, needPPS := !hasType(nalus, TypeSPS), !hasType(nalus, TypePPS)
	if !needSPS && !needPPS {
		return au, nil
	}
	if needSPS && (Type(sps) != TypeSPS || len(sps) < 4) {
		return nil, fmt.Errorf("%w: a keyframe lacks an SPS and none is given", ErrBadSPS)
	}
	if needPPS && (Type(pps) != TypePPS || len(pps) < 2) {
		return nil, fmt.Errorf("%w: a keyframe lacks a PPS and none is given", ErrBadPPS)
	}
	out := make([][]byte, 0, len(nalus)+2)
	rest := nalus
	if Type(rest[0]) == TypeAUD {
		out, rest = append(out, rest[0]), rest[1:]
	}
	if needSPS {
		out = append(out, sps)
	}
	if needPPS {
		out = append(out, pps)
	}
	return Join(append(out, rest...)), nil
}

// AccessUnits splits an Annex B elementary stream (a .h264 file, the
// output of `ffmpeg -f h264`) into access units, each a sub-slice of
// stream starting with its start code. A new access unit begins at an
// access unit delimiter, SPS, PPS or SEI after a slice, and at a slice
// whose first_mb_in_slice is 0 after a slice (ITU-T H.264 7.4.1.2.3; not
// for arbitrary slice order).
func AccessUnits(stream []byte) ([][]byte, error) {
	if len(stream) == 0 {
		return nil, ErrEmpty
	}
	if startCode(stream) < 0 {
		return nil, ErrNoStartCode
	}
	var aus [][]byte
	start, sawSlice := 0, false
	for i := 0; i < len(stream); {
		// the start code at i: zeros then a one
		j := i
		for j < len(stream) && stream[j] == 0 {
			j++
		}
		if j >= len(stream) {
			break
		}
		nal := j + 1 // first byte of the NAL unit
		next := bytes.Index(stream[nal:], []byte{0, 0, 1})
		end := len(stream)
		if next >= 0 {
			end = nal + next
		}
		// the zero before 00 00 01 of a 4-byte start code is the next one's
		for end > nal && end < len(stream) && stream[end-1] == 0 {
			end--
		}
		if nal < end {
			switch t := Type(stream[nal:end]); {
			case t == TypeAUD || t == TypeSPS || t == TypePPS || t == TypeSEI || (t >= 14 && t <= 18):
				if sawSlice {
					aus, start, sawSlice = append(aus, stream[start:i]), i, false
				}
			case t == TypeNonIDR || t == TypeIDR:
				// first_mb_in_slice is ue(v): 0 is the single bit 1
				if sawSlice && end > nal+1 && stream[nal+1]&0x80 != 0 {
					aus, start = append(aus, stream[start:i]), i
				}
				sawSlice = true
			case t > TypeNonIDR && t < TypeIDR: // data partitions
				sawSlice = true
			}
		}
		i = end
	}
	if start < len(stream) {
		aus = append(aus, stream[start:])
	}
	return aus, nil
}
