package mp4

import (
	"encoding/binary"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
)

// Flags of a track run (ISO/IEC 14496-12 8.8.8) and a sample's flags.
const (
	trunDataOffset      = 0x001
	trunSampleDuration  = 0x100
	trunSampleSize      = 0x200
	trunSampleFlags     = 0x400
	trunCompositionTime = 0x800

	sampleIsNonSync = 1 << 16

	tfhdDefaultBaseIsMoof = 0x020000
)

// appendPart appends to dst what mediacommon's fmp4.Part.Marshal writes
// for one track, byte for byte (a test compares them): moof (mfhd; traf
// with tfhd, tfdt version 1 and trun version 1) and mdat. It writes the
// boxes directly instead of through go-mp4's reflection, which costs
// about 250 allocations a fragment.
func appendPart(dst []byte, seq uint32, id int, base uint64, samples []fmp4.Sample) []byte {
	flags := uint32(trunDataOffset | trunSampleDuration | trunSampleSize)
	data := 0
	for i := range samples {
		if samples[i].IsNonSyncSample {
			flags |= trunSampleFlags
		}
		if samples[i].PTSOffset != 0 {
			flags |= trunCompositionTime
		}
		data += len(samples[i].Payload)
	}
	entry := 8
	if flags&trunSampleFlags != 0 {
		entry += 4
	}
	if flags&trunCompositionTime != 0 {
		entry += 4
	}
	const mfhd, tfhd, tfdt = 16, 16, 20
	trun := 20 + entry*len(samples)
	traf := 8 + tfhd + tfdt + trun
	moof := 8 + mfhd + traf

	be := binary.BigEndian
	box := func(size int, typ string) {
		dst = be.AppendUint32(dst, uint32(size))
		dst = append(dst, typ...)
	}
	box(moof, "moof")
	box(mfhd, "mfhd")
	dst = be.AppendUint32(dst, 0) // version, flags
	dst = be.AppendUint32(dst, seq)
	box(traf, "traf")
	box(tfhd, "tfhd")
	dst = be.AppendUint32(dst, tfhdDefaultBaseIsMoof) // version 0
	dst = be.AppendUint32(dst, uint32(id))
	box(tfdt, "tfdt")
	dst = be.AppendUint32(dst, 1<<24) // version 1
	dst = be.AppendUint64(dst, base)
	box(trun, "trun")
	dst = be.AppendUint32(dst, 1<<24|flags) // version 1
	dst = be.AppendUint32(dst, uint32(len(samples)))
	dst = be.AppendUint32(dst, uint32(moof+8)) // data offset: the mdat's payload
	for i := range samples {
		s := &samples[i]
		dst = be.AppendUint32(dst, s.Duration)
		dst = be.AppendUint32(dst, uint32(len(s.Payload)))
		if flags&trunSampleFlags != 0 {
			var f uint32
			if s.IsNonSyncSample {
				f = sampleIsNonSync
			}
			dst = be.AppendUint32(dst, f)
		}
		if flags&trunCompositionTime != 0 {
			dst = be.AppendUint32(dst, uint32(s.PTSOffset))
		}
	}
	box(8+data, "mdat")
	for i := range samples {
		dst = append(dst, samples[i].Payload...)
	}
	return dst
}
