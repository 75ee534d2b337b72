package h264

import (
	"fmt"

	mch264 "github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

// MaxSide is the largest width or height ParseSPS accepts: level 6.2's
// largest picture is 139264 macroblocks, 8192x4320 fits in it and no side
// of a conforming picture exceeds 16384.
const MaxSide = 16384

// SPS is what camhub reads from a sequence parameter set.
type SPS struct {
	Profile     uint8 // profile_idc: 66 baseline, 77 main, 100 high
	Constraints uint8 // the byte of constraint_set flags after profile_idc
	Level       uint8 // level_idc: 31 is level 3.1
	Width       int   // the picture's size after cropping, in pixels
	Height      int
}

// Codec returns the RFC 6381 codec string of the stream, as MP4, MSE and
// WebCodecs want it: "avc1." and the profile, constraint and level bytes
// in hexadecimal, e.g. "avc1.42C01E" for constrained baseline at level 3.
func (s SPS) Codec() string {
	return fmt.Sprintf("avc1.%02X%02X%02X", s.Profile, s.Constraints, s.Level)
}

// ParseSPS parses an SPS NAL unit (without its start code).
func ParseSPS(nalu []byte) (SPS, error) {
	if Type(nalu) != TypeSPS {
		return SPS{}, fmt.Errorf("%w: NAL unit of type %d", ErrBadSPS, Type(nalu))
	}
	var p mch264.SPS
	if err := p.Unmarshal(nalu); err != nil {
		return SPS{}, fmt.Errorf("%w: %w", ErrBadSPS, err)
	}
	// mediacommon computes the size in uint32: bound what goes in, so
	// that garbage cannot wrap around to a plausible size
	const maxMBs = MaxSide / 16
	if p.PicWidthInMbsMinus1 >= maxMBs || p.PicHeightInMapUnitsMinus1 >= maxMBs {
		return SPS{}, fmt.Errorf("%w: %dx%d macroblocks", ErrBadSPS, uint64(p.PicWidthInMbsMinus1)+1, uint64(p.PicHeightInMapUnitsMinus1)+1)
	}
	if c := p.FrameCropping; c != nil && (c.LeftOffset > MaxSide || c.RightOffset > MaxSide || c.TopOffset > MaxSide || c.BottomOffset > MaxSide) {
		return SPS{}, fmt.Errorf("%w: cropping %+v", ErrBadSPS, *c)
	}
	w, h := p.Width(), p.Height()
	if w <= 0 || h <= 0 || w > MaxSide || h > MaxSide {
		return SPS{}, fmt.Errorf("%w: picture of %dx%d", ErrBadSPS, w, h)
	}
	// the flags byte as sent (mediacommon keeps only the flags it names);
	// Unmarshal has seen at least these three bytes
	b := mch264.EmulationPreventionRemove(nalu[1:min(len(nalu), 8)])
	if len(b) < 3 {
		return SPS{}, fmt.Errorf("%w: too short", ErrBadSPS)
	}
	return SPS{Profile: b[0], Constraints: b[1], Level: b[2], Width: w, Height: h}, nil
}

// CodecString returns the RFC 6381 codec string of an SPS NAL unit, e.g.
// "avc1.42C01E".
func CodecString(sps []byte) (string, error) {
	s, err := ParseSPS(sps)
	if err != nil {
		return "", err
	}
	return s.Codec(), nil
}
