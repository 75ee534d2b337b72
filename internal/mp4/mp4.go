// Package mp4 puts H.264 access units, as camhub carries them (Annex B,
// SPS and PPS in every keyframe), into fragmented MP4 without re-encoding.
// One muxer serves two uses:
//
//   - a browser's Media Source Extensions: a Muxer gives the init segment
//     (ftyp and moov, from a keyframe's SPS and PPS) and then one fragment
//     (moof and mdat) per run of access units, a GOP or a single frame;
//   - export to a file: a Writer takes access units one by one and writes
//     an init segment and a fragment per GOP to any io.Writer, streaming,
//     with memory bounded by one GOP and no 4 GiB limit.
//
// Both write what mediacommon's pkg/formats/fmp4 writes: its Init makes
// the init segment, and fragments are byte for byte what its Part.Marshal
// makes (a test compares them), written directly rather than through
// go-mp4's reflection, which cost about 250 allocations and 15 µs a
// fragment. One video track, timescale 90 kHz, samples in decode order,
// length-prefixed (AVCC) NAL units, version 1 track runs with signed
// composition offsets when the presentation and decode times differ
// (B-frames from a camera). The NAL units are kept as they came, SPS and
// PPS included, so a decoder can also start from the samples themselves.
//
// Times: each sample's decode time is its DTS minus the first sample's,
// and its presentation time its PTS minus the first sample's PTS, so the
// file starts at 0 even when the first keyframe is shown after it is
// decoded. A sample lasts until the next one's DTS; how long the last one
// lasts is said by the caller (Muxer.Fragment's end, Writer's
// Options.FrameInterval).
package mp4

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
	mcmp4 "github.com/bluenviron/mediacommon/v2/pkg/formats/mp4"

	"camhub/internal/h264"
)

// TimeScale is the media timescale of the track: 90 kHz, the clock of RTP
// and of camhub's Frame-PTS header, so those times are kept exactly.
const TimeScale = 90000

// trackID is the ID of the one track.
const trackID = 1

// Errors; each returned error wraps one of these (or one of
// internal/h264's for a damaged access unit).
var (
	// ErrNeedKeyframe: the first sample after the init segment is not a
	// keyframe.
	ErrNeedKeyframe = errors.New("mp4: the first sample must be a keyframe")
	// ErrNoParams: a keyframe without an SPS or a PPS cannot start a track.
	ErrNoParams = errors.New("mp4: keyframe without SPS and PPS")
	// ErrParamsChanged: a keyframe's SPS differs from the track's (the
	// resolution or profile changed); a new track, or file, is needed.
	ErrParamsChanged = errors.New("mp4: SPS changed")
	// ErrTimestamp: decode times must increase from sample to sample by
	// at least a 90 kHz tick and less than an hour, and PTS stay within
	// hours of DTS.
	ErrTimestamp = errors.New("mp4: bad timestamp")
	// ErrEmpty: no samples (a fragment of none, or a file without a
	// keyframe).
	ErrEmpty = errors.New("mp4: no samples")
	// ErrClosed: the Writer is closed.
	ErrClosed = errors.New("mp4: writer closed")
)

// Bounds from mediacommon's 32-bit fields: a composition offset (PTS −
// DTS) is int32 ticks, 6.6 hours at 90 kHz, and a sample's duration
// uint32 ticks; a gap of an hour between samples is an error rather than
// a frame shown for an hour. Decode times themselves are 64-bit: a track
// can be days long.
const (
	maxOffset = 1<<31 - 1
	maxGap    = time.Hour
)

// ticks converts d to 90 kHz ticks, rounding to the nearest.
func ticks(d time.Duration) int64 {
	t := d.Nanoseconds() * 9 / 100000 // ns * 90000 / 1e9, exact for |d| < 32 years
	if r := d.Nanoseconds()*9 - t*100000; r*2 >= 100000 {
		t++
	} else if r*2 <= -100000 {
		t--
	}
	return t
}

// Sample is one access unit and its times. PTS and DTS can have any
// origin (capture time minus the export's start, or Frame-PTS ticks as a
// Duration) as long as it is the same for every sample of a track; DTS
// equals PTS for streams without B-frames.
type Sample struct {
	AU  []byte // Annex B access unit
	PTS time.Duration
	DTS time.Duration
}

// Muxer makes the init segment and the fragments of one H.264 track. It
// is not safe for concurrent use.
type Muxer struct {
	sps, pps []byte
	info     h264.SPS
	init     []byte

	seq       uint32
	started   bool          // a fragment was made: the origins are set
	originDTS time.Duration // the first sample's DTS and PTS
	originPTS time.Duration
	lastDTS   time.Duration
	lastTicks int64 // lastDTS in ticks from originDTS

	// reused from fragment to fragment
	payload []byte // AVCC of Fragment's samples
	aus     []au
	samples []fmp4.Sample
	frag    []byte
}

// NewMuxer returns a muxer for the stream that keyframe (an Annex B
// access unit with an IDR slice, SPS and PPS) begins.
func NewMuxer(keyframe []byte) (*Muxer, error) {
	nalus, err := h264.Split(keyframe)
	if err != nil {
		return nil, err
	}
	if !isKey(nalus) {
		return nil, ErrNeedKeyframe
	}
	var sps, pps []byte
	for _, n := range nalus {
		switch h264.Type(n) {
		case h264.TypeSPS:
			if sps == nil {
				sps = bytes.Clone(n)
			}
		case h264.TypePPS:
			if pps == nil {
				pps = bytes.Clone(n)
			}
		}
	}
	if sps == nil || pps == nil {
		return nil, ErrNoParams
	}
	info, err := h264.ParseSPS(sps)
	if err != nil {
		return nil, err
	}
	m := &Muxer{sps: sps, pps: pps, info: info}
	init := fmp4.Init{Tracks: []*fmp4.InitTrack{{
		ID:        trackID,
		TimeScale: TimeScale,
		Codec:     &mcmp4.CodecH264{SPS: sps, PPS: pps},
	}}}
	var buf seekablebuffer.Buffer
	if err := init.Marshal(&buf); err != nil {
		return nil, fmt.Errorf("mp4: init segment: %w", err)
	}
	m.init = buf.Bytes()
	return m, nil
}

// Init returns the init segment: ftyp and a moov with the track's avcC
// (SPS and PPS) and an mvex, as MSE's SourceBuffer and a file's start
// want it. The slice is shared: do not modify it.
func (m *Muxer) Init() []byte { return m.init }

// Codec returns the RFC 6381 codec string of the track, e.g.
// "avc1.64001E", for MediaSource.addSourceBuffer('video/mp4; codecs="…"').
func (m *Muxer) Codec() string { return m.info.Codec() }

// SPS returns what the track's SPS says (size, profile, level).
func (m *Muxer) SPS() h264.SPS { return m.info }

// MIME returns the MIME type of the track for MSE, e.g.
// `video/mp4; codecs="avc1.42C01E"`.
func (m *Muxer) MIME() string { return `video/mp4; codecs="` + m.Codec() + `"` }

// Fragment returns a moof and mdat holding samples, which must be in
// decode order, DTS strictly increasing, also from the previous
// fragment's last sample; end is the DTS at which the last sample ends
// (the next sample's DTS when known, else the last DTS plus a frame
// interval) and must be after it. The first fragment of a Muxer must
// begin with a keyframe, later ones need not (a GOP per fragment is
// what a player seeks best in; a frame per fragment is lowest latency).
// A keyframe whose SPS differs from the track's is ErrParamsChanged. On
// an error nothing is made and the Muxer is as before. The returned
// slice is the caller's.
func (m *Muxer) Fragment(samples []Sample, end time.Duration) ([]byte, error) {
	m.payload, m.aus = m.payload[:0], m.aus[:0]
	for i, s := range samples {
		var a au
		var err error
		if m.payload, a, err = appendAVCC(m.payload, s.AU); err != nil {
			return nil, fmt.Errorf("mp4: sample %d: %w", i, err)
		}
		a.pts, a.dts = s.PTS, s.DTS
		m.aus = append(m.aus, a)
	}
	frag, err := m.fragment(m.payload, m.aus, end)
	return bytes.Clone(frag), err
}

// fragment makes a fragment of access units already in AVCC form in
// payload; see Fragment. The fragment is valid until the next call.
func (m *Muxer) fragment(payload []byte, aus []au, end time.Duration) ([]byte, error) {
	if len(aus) == 0 {
		return nil, ErrEmpty
	}
	originDTS, originPTS := m.originDTS, m.originPTS
	if !m.started {
		if !aus[0].key {
			return nil, ErrNeedKeyframe
		}
		originDTS, originPTS = aus[0].dts, aus[0].pts
	}
	m.samples = m.samples[:0]
	prev, havePrev := m.lastDTS, m.started
	var base int64
	prevTicks := m.lastTicks
	for i, a := range aus {
		if a.key && a.sps != nil && !bytes.Equal(a.sps, m.sps) {
			return nil, m.changed(a.sps)
		}
		if havePrev && (a.dts <= prev || a.dts-prev > maxGap) {
			return nil, fmt.Errorf("%w: DTS %v after %v", ErrTimestamp, a.dts, prev)
		}
		prev, havePrev = a.dts, true
		dts, pts := ticks(a.dts-originDTS), ticks(a.pts-originPTS)
		if dts < 0 || (i > 0 || m.started) && dts <= prevTicks || pts-dts < -maxOffset || pts-dts > maxOffset {
			return nil, fmt.Errorf("%w: PTS %v DTS %v, track started at %v", ErrTimestamp, a.pts, a.dts, originDTS)
		}
		if i == 0 {
			base = dts
		} else {
			// the previous sample lasts until this one: durations from
			// rounded times, so they never drift from the timestamps
			m.samples[i-1].Duration = uint32(dts - prevTicks)
		}
		prevTicks = dts
		m.samples = append(m.samples, fmp4.Sample{
			PTSOffset:       int32(pts - dts),
			IsNonSyncSample: !a.key,
			Payload:         payload[a.off : a.off+a.n : a.off+a.n],
		})
	}
	if end <= prev || end-prev > maxGap {
		return nil, fmt.Errorf("%w: end %v, the last DTS %v", ErrTimestamp, end, prev)
	}
	m.samples[len(m.samples)-1].Duration = uint32(max(1, ticks(end-originDTS)-prevTicks))
	m.frag = appendPart(m.frag[:0], m.seq+1, trackID, uint64(base), m.samples)
	m.seq++
	m.started, m.originDTS, m.originPTS = true, originDTS, originPTS
	m.lastDTS, m.lastTicks = prev, prevTicks
	return m.frag, nil
}

// changed describes a new SPS: its size when it parses.
func (m *Muxer) changed(sps []byte) error {
	if s, err := h264.ParseSPS(sps); err == nil {
		return fmt.Errorf("%w: %dx%d %s, the track is %dx%d %s", ErrParamsChanged,
			s.Width, s.Height, s.Codec(), m.info.Width, m.info.Height, m.info.Codec())
	}
	return fmt.Errorf("%w: an unreadable SPS", ErrParamsChanged)
}

// isKey reports whether an access unit's NAL units hold an IDR slice.
func isKey(nalus [][]byte) bool {
	for _, n := range nalus {
		if h264.Type(n) == h264.TypeIDR {
			return true
		}
	}
	return false
}
