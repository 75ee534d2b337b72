// Package mpegts reads H.264 access units from an MPEG-TS byte stream,
// such as the standard output of
//
//	rpicam-vid -t 0 --inline --codec libav --libav-format mpegts -o -
//	ffmpeg ... -c:v libx264 -f mpegts -
//
// without decoding them, with mediacommon's MPEG-TS reader. Other
// elementary streams (audio) are ignored.
//
// The access units are h264.AccessUnit, as from internal/rtsp: the NAL
// units as the encoder wrote them, in Annex B form with 4-byte start
// codes, except the access unit delimiter that MPEG-TS requires before
// each (mediacommon drops it; it carries nothing), SPS and PPS in every
// keyframe. PTS and DTS come from the TS (33-bit wrap-around undone);
// Time is camhub's clock when the TS packet that starts the access unit
// was read (TimeReceive). An access unit is complete, and passed on, when
// the next one begins: a TS reader adds one frame interval of latency.
package mpegts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mcmpegts "github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"

	"camhub/internal/h264"
)

var (
	// ErrNoH264: the stream has no H.264 track (the error names what it has).
	ErrNoH264 = errors.New("mpegts: no H.264 stream")
	// ErrNotTS: no program table in the first MiB (the most mediacommon's
	// reader looks at), or the stream ended before one.
	ErrNotTS = errors.New("mpegts: not an MPEG-TS stream")
	// ErrTooLarge: an access unit grew past h264.MaxAccessUnitSize.
	ErrTooLarge = errors.New("mpegts: access unit too large")
	// ErrClosed is what Read returns after Close.
	ErrClosed = errors.New("mpegts: source closed")
)

// Defaults of Options.
const DefaultQueue = 30

// Options of New and Open; the zero value of a field means its default.
type Options struct {
	// Queue is the number of access units held for a slow reader.
	Queue int
	// Logger gets the few events that are not per access unit; nil
	// discards them.
	Logger *slog.Logger
}

// Stats counts what a Source received and dropped.
type Stats struct {
	h264.QueueStats
	Received uint64 // access units read (AccessUnit.Seq of the last)
	Errors   uint64 // damaged TS packets and access units
}

// Source reads access units from an MPEG-TS stream. Read from one
// goroutine; Stats and Close may be called from any.
type Source struct {
	r     io.ReadCloser
	queue *h264.Queue
	opts  Options
	log   *slog.Logger

	ready    chan struct{} // closed when the H.264 track is found or reading failed
	readyErr error         // set before ready is closed

	// touched only by the reading goroutine
	tap      tap
	sps, pps []byte
	spsInfo  h264.SPS
	clock    mcmpegts.TimeDecoder
	seq      uint64
	waitKey  bool

	received atomic.Uint64
	errs     atomic.Uint64

	closeOnce sync.Once
	closed    atomic.Bool
	done      chan struct{}
}

// New starts reading r on a goroutine of its own. Close closes r (which
// ends a blocked read: a command's standard output, a pipe).
func New(r io.ReadCloser, opts Options) *Source {
	if opts.Queue <= 0 {
		opts.Queue = DefaultQueue
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Source{
		r:       r,
		queue:   h264.NewQueue(opts.Queue),
		opts:    opts,
		log:     opts.Logger,
		ready:   make(chan struct{}),
		waitKey: true,
		done:    make(chan struct{}),
	}
	s.tap = tap{r: r, pid: -1}
	go s.run()
	return s
}

// Open is New, then waits until the stream's H.264 track is found: a
// stream that is not MPEG-TS or has no H.264 fails here.
func Open(ctx context.Context, r io.ReadCloser, opts Options) (*Source, error) {
	s := New(r, opts)
	select {
	case <-s.ready:
		if s.readyErr != nil {
			s.Close()
			return nil, s.readyErr
		}
		return s, nil
	case <-ctx.Done():
		s.Close()
		return nil, ctx.Err()
	}
}

func (s *Source) run() {
	defer close(s.done)
	err := s.demux()
	if s.closed.Load() {
		err = ErrClosed
	}
	if s.readyErr == nil {
		select {
		case <-s.ready:
		default:
			s.readyErr = err
			close(s.ready)
		}
	}
	s.queue.Close(err)
}

// demux reads the stream until it fails. A panic in the demuxer on
// hostile input is an error, not a crash.
func (s *Source) demux() (err error) {
	defer func() {
		if p := recover(); p != nil {
			s.errs.Add(1)
			err = fmt.Errorf("mpegts: damaged stream: demuxer failed: %v", p)
		}
	}()
	rd := &mcmpegts.Reader{R: &s.tap}
	if err := rd.Initialize(); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("%w: the stream ended before its program table", ErrNotTS)
		}
		return fmt.Errorf("%w: no program table: %w", ErrNotTS, err)
	}
	var track *mcmpegts.Track
	var names []string
	for _, t := range rd.Tracks() {
		if _, ok := t.Codec.(*mcmpegts.CodecH264); ok && track == nil {
			track = t
		}
		names = append(names, strings.TrimPrefix(fmt.Sprintf("%T", t.Codec), "*mpegts.Codec"))
	}
	if track == nil {
		if len(names) == 0 {
			names = []string{"no elementary stream"}
		}
		return fmt.Errorf("%w: the stream has %s", ErrNoH264, strings.Join(names, ", "))
	}
	s.tap.setPID(int(track.PID))
	s.log.Info("mpegts stream has H.264", "pid", track.PID, "tracks", strings.Join(names, ", "))
	close(s.ready)

	rd.OnDecodeError(func(error) {
		s.errs.Add(1)
		s.waitKey = true
		s.queue.Break()
	})
	rd.OnDataH264(track, s.onAU)
	for {
		if err := rd.Read(); err != nil {
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("mpegts: the stream ended: %w", io.EOF)
			}
			return fmt.Errorf("mpegts: %w", err)
		}
	}
}

// broken counts a damaged access unit and drops deltas up to the next
// keyframe.
func (s *Source) broken(why error) {
	if s.errs.Add(1) == 1 {
		s.log.Warn("mpegts: damaged access unit dropped, waiting for a keyframe", "err", why)
	}
	s.waitKey = true
	s.queue.Break()
}

// onAU is called by the reader for every access unit of the H.264 track
// (pts and dts as in the TS: 33 bits).
func (s *Source) onAU(pts, dts int64, nalus [][]byte) error {
	s.seq++
	s.received.Store(s.seq)
	recv, complete := s.tap.started(pts)
	if !complete {
		// the stream ended in this access unit
		s.broken(errors.New("the stream ended inside an access unit"))
		return nil
	}
	key := false
	for _, n := range nalus {
		switch h264.Type(n) {
		case h264.TypeSPS:
			if !bytes.Equal(n, s.sps) {
				if info, err := h264.ParseSPS(n); err == nil {
					s.sps, s.spsInfo = bytes.Clone(n), info
				}
			}
		case h264.TypePPS:
			if !bytes.Equal(n, s.pps) {
				s.pps = bytes.Clone(n)
			}
		case h264.TypeIDR:
			key = true
		}
	}
	if !key && s.waitKey {
		s.queue.Skip()
		return nil
	}
	data := h264.Join(nalus)
	if key {
		var err error
		if data, err = h264.EnsureParams(data, s.sps, s.pps); err != nil {
			s.broken(err)
			return nil
		}
		s.waitKey = false
	}
	const wrap = 1 << 33
	d := s.clock.Decode(dts)
	s.queue.Push(h264.AccessUnit{
		Data:       data,
		Key:        key,
		Seq:        s.seq,
		PTS:        d + ((pts - dts) & (wrap - 1)),
		DTS:        d,
		Time:       recv,
		TimeSource: h264.TimeReceive,
		Codec:      s.spsInfo.Codec(),
		Width:      s.spsInfo.Width,
		Height:     s.spsInfo.Height,
	})
	return nil
}

// Read returns the next access unit, waiting until one comes, ctx is done
// or the stream fails (io.EOF wrapped when it ended). The first is a
// keyframe, and so is the first after any gap in AccessUnit.Seq.
func (s *Source) Read(ctx context.Context) (h264.AccessUnit, error) {
	return s.queue.Pop(ctx)
}

// Stats returns the source's counts.
func (s *Source) Stats() Stats {
	return Stats{QueueStats: s.queue.Stats(), Received: s.received.Load(), Errors: s.errs.Load()}
}

// Close closes the stream's reader and waits for the reading goroutine;
// Read then returns ErrClosed. It may be called more than once.
func (s *Source) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.queue.Close(ErrClosed)
		err = s.r.Close()
		<-s.done
	})
	return err
}

// tap passes the stream to the demuxer and notes, for the TS packets that
// start a PES packet on the video PID, when they were read and their PTS:
// the demuxer hands an access unit on only when the next begins, and does
// not say when its first packet came.
type tap struct {
	r   io.Reader
	eof bool

	pid     int // -1 until the video PID is known: note every PID
	pkt     [188]byte
	n       int // bytes in pkt
	starts  []start
	payload int // payload bytes since the last start on pid
}

type start struct {
	pid  int
	pts  int64
	recv time.Time
}

const maxStarts = 64

func (t *tap) setPID(pid int) {
	t.pid = pid
	kept := t.starts[:0]
	for _, s := range t.starts {
		if s.pid == pid {
			kept = append(kept, s)
		}
	}
	t.starts = kept
}

func (t *tap) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if errors.Is(err, io.EOF) {
		t.eof = true
	}
	if n > 0 {
		if perr := t.scan(p[:n], time.Now()); perr != nil {
			return n, perr
		}
	}
	return n, err
}

// scan follows the TS packets in b (resynchronising on the sync byte as
// the demuxer does).
func (t *tap) scan(b []byte, now time.Time) error {
	for len(b) > 0 {
		if t.n == 0 {
			i := bytes.IndexByte(b, 0x47)
			if i < 0 {
				return nil
			}
			b = b[i:]
		}
		c := copy(t.pkt[t.n:], b)
		t.n += c
		b = b[c:]
		if t.n < len(t.pkt) {
			return nil
		}
		t.n = 0
		if err := t.packet(now); err != nil {
			return err
		}
	}
	return nil
}

// packet looks at one TS packet in t.pkt.
func (t *tap) packet(now time.Time) error {
	p := t.pkt[:]
	pid := int(p[1]&0x1F)<<8 | int(p[2])
	if t.pid >= 0 && pid != t.pid {
		return nil
	}
	pusi := p[1]&0x40 != 0
	afc := p[3] >> 4 & 3
	off := 4
	if afc&2 != 0 {
		off += 1 + int(p[4])
	}
	if afc&1 == 0 || off >= len(p) {
		return nil
	}
	pl := p[off:]
	if !pusi {
		if t.pid >= 0 {
			t.payload += len(pl)
			if t.payload > h264.MaxAccessUnitSize {
				return fmt.Errorf("%w: more than %d bytes", ErrTooLarge, h264.MaxAccessUnitSize)
			}
		}
		return nil
	}
	t.payload = len(pl)
	// a PES header: 00 00 01, stream id, length, two flag bytes, header
	// length, then the PTS if the flags say so
	if len(pl) < 14 || pl[0] != 0 || pl[1] != 0 || pl[2] != 1 || pl[7]&0x80 == 0 {
		return nil
	}
	q := pl[9:14]
	pts := int64(q[0]>>1&7)<<30 | int64(q[1])<<22 | int64(q[2]>>1)<<15 | int64(q[3])<<7 | int64(q[4]>>1)
	if len(t.starts) == maxStarts {
		copy(t.starts, t.starts[1:])
		t.starts = t.starts[:maxStarts-1]
	}
	t.starts = append(t.starts, start{pid: pid, pts: pts, recv: now})
	return nil
}

// started returns when the access unit with this PTS began to arrive
// (now if that was not seen) and whether it is complete: the stream went
// on past it (another access unit began), has not ended, or ended after a
// whole TS packet (a writer that exits flushes whole packets; one killed
// mid-write leaves part of one). It forgets the starts up to this one.
func (t *tap) started(pts int64) (time.Time, bool) {
	recv := time.Now()
	for i, s := range t.starts {
		if s.pts == pts {
			t.starts = t.starts[:copy(t.starts, t.starts[i+1:])]
			recv = s.recv
			break
		}
	}
	return recv, !t.eof || len(t.starts) > 0 || t.n == 0
}
