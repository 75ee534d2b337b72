// Package rtsp reads H.264 from an RTSP camera without decoding it: the
// camera's access units are passed through as it sent them, in Annex B
// form, with SPS and PPS from the SDP put in every keyframe that lacks
// them. It uses gortsplib (a pure-Go RTSP client).
//
// AccessUnit.Time is the camera's clock, through its RTCP sender reports,
// while that is within Options.MaxClockSkew of camhub's; before the first
// report (gortsplib maps the first a few seconds in), and for a camera whose
// clock is off, it is the time the access unit's first packet came. It
// can therefore step once, by less than MaxClockSkew, when the first
// report arrives; TimeSource says which each access unit has.
//
// A Source has one goroutine of its own and gortsplib's, all stopped by
// Close. Between them and the reader is an h264.Queue: a reader that falls
// behind loses whole GOPs (counted), never a delta without its keyframe.
package rtsp

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"
	mch264 "github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/rtp"

	"camhub/internal/h264"
)

var (
	// ErrUnsupportedCodec: the camera offers no H.264 video stream (the
	// error names what it offers).
	ErrUnsupportedCodec = errors.New("rtsp: the camera sends no H.264")
	// ErrUnauthorized: the camera refused the URL's credentials (or asked
	// for some and the URL has none).
	ErrUnauthorized = errors.New("rtsp: the camera refused the credentials")
	// ErrClosed is what Read returns after Close.
	ErrClosed = errors.New("rtsp: source closed")
)

// Defaults of Options.
const (
	DefaultTransport    = "tcp"
	DefaultOpenTimeout  = 5 * time.Second
	DefaultReadTimeout  = 10 * time.Second
	DefaultQueue        = 30
	DefaultMaxClockSkew = 2 * time.Second
)

// Options of Open; the zero value of a field means its default.
type Options struct {
	// Transport of the RTP packets: "tcp" (interleaved in the RTSP
	// connection, the default: it crosses NAT and loses nothing), "udp",
	// or "auto" (UDP, then TCP if no packet comes).
	Transport string
	// OpenTimeout bounds connecting, DESCRIBE, SETUP and PLAY together.
	OpenTimeout time.Duration
	// ReadTimeout: the stream fails when the camera sends nothing for so
	// long.
	ReadTimeout time.Duration
	// Queue is the number of access units held for a slow reader (about
	// two seconds at 15 fps by default).
	Queue int
	// MaxClockSkew: the camera's RTCP clock gives AccessUnit.Time only
	// while it is within this of camhub's clock (a camera whose clock was
	// never set would otherwise date its pictures wrongly).
	MaxClockSkew time.Duration
	// Logger gets the few events that are not per access unit; nil
	// discards them.
	Logger *slog.Logger
	// Deliver, when set, is given every access unit on the source's
	// receiving goroutine instead of the queue Read takes them from:
	// one goroutine hand-off a frame fewer for a reader that has a
	// queue of its own (Read then only waits for the stream to end and
	// returns why). It must not block, and owns the access unit.
	Deliver func(h264.AccessUnit)
}

func (o *Options) fill() error {
	switch o.Transport {
	case "":
		o.Transport = DefaultTransport
	case "tcp", "udp", "auto":
	default:
		return fmt.Errorf("rtsp: transport %q: want tcp, udp or auto", o.Transport)
	}
	if o.OpenTimeout <= 0 {
		o.OpenTimeout = DefaultOpenTimeout
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = DefaultReadTimeout
	}
	if o.Queue <= 0 {
		o.Queue = DefaultQueue
	}
	if o.MaxClockSkew <= 0 {
		o.MaxClockSkew = DefaultMaxClockSkew
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Stats counts what a Source received and dropped.
type Stats struct {
	h264.QueueStats
	Received uint64 // access units received (AccessUnit.Seq of the last)
	Lost     uint64 // RTP packets lost on the way
	Errors   uint64 // damaged packets and access units dropped
	// ParamsAdded counts keyframes that lacked SPS or PPS and got those
	// of the SDP (or of an earlier keyframe).
	ParamsAdded uint64
}

// Source is an open RTSP stream. Read from one goroutine; Stats and
// Close may be called from any.
type Source struct {
	name   string // the URL without credentials, for errors and logs
	client *gortsplib.Client
	media  *description.Media
	dec    *rtph264.Decoder
	queue  *h264.Queue
	opts   Options
	log    *slog.Logger

	// touched only by gortsplib's reading goroutine (onRTP)
	cur, prev auMeta
	buffered  bool // the decoder holds part of an access unit
	sps, pps  []byte
	spsInfo   h264.SPS
	codec     string // spsInfo.Codec()
	dts       mch264.DTSExtractor
	dtsReady  bool // dts has seen a keyframe since its last reset
	seq       uint64

	waitKey  atomic.Bool // drop deltas until a keyframe (after a loss)
	received atomic.Uint64
	lost     atomic.Uint64
	errs     atomic.Uint64
	added    atomic.Uint64

	closeOnce sync.Once
	done      chan struct{} // closed when the waiting goroutine ends
}

// auMeta is what is known of an access unit from its first packet.
type auMeta struct {
	ts     uint32
	pts    int64
	ptsOK  bool
	recv   time.Time
	ntp    time.Time
	ntpOK  bool
	active bool
}

// Redact returns rawURL without its user information, for logs and
// errors. It does not rely on the URL parsing (a password may hold
// characters that make it invalid): everything between the scheme and the
// last '@' goes, even an '@' in the path.
func Redact(rawURL string) string {
	prefix, rest := "", rawURL
	if i := strings.Index(rawURL, "://"); i >= 0 {
		prefix, rest = rawURL[:i+3], rawURL[i+3:]
	}
	if k := strings.LastIndexByte(rest, '@'); k >= 0 {
		return prefix + "REDACTED" + rest[k:]
	}
	return rawURL
}

// Open connects to an RTSP camera, finds its H.264 stream and starts
// playing it. ctx bounds the opening only; the stream runs until Close or
// until it fails (Read then returns the error).
func Open(ctx context.Context, rawURL string, opts Options) (*Source, error) {
	if err := opts.fill(); err != nil {
		return nil, err
	}
	name := Redact(rawURL)
	u, err := base.ParseURL(rawURL)
	if err != nil {
		// url.Parse's errors quote the URL: do not pass them on
		return nil, fmt.Errorf("rtsp: invalid URL %s", name)
	}
	s := &Source{
		name:  name,
		queue: h264.NewQueue(opts.Queue),
		opts:  opts,
		log:   opts.Logger.With("url", name),
		done:  make(chan struct{}),
	}
	s.waitKey.Store(true)
	c := &gortsplib.Client{
		Scheme:       u.Scheme,
		Host:         u.Host,
		ReadTimeout:  opts.ReadTimeout,
		WriteTimeout: opts.OpenTimeout,
		OnPacketsLost: func(n uint64) {
			s.lost.Add(n)
			s.waitKey.Store(true)
			s.queue.Break()
		},
		OnDecodeError: func(error) { s.errs.Add(1) },
		OnTransportSwitch: func(err error) {
			s.log.Info("rtsp transport switched", "why", err)
		},
	}
	c.DialContext = dialBuffered
	switch opts.Transport {
	case "tcp":
		t := gortsplib.TransportTCP
		c.Transport = &t
	case "udp":
		t := gortsplib.TransportUDP
		c.Transport = &t
	}
	if err := c.Start2(); err != nil {
		return nil, fmt.Errorf("rtsp %s: %w", name, err)
	}
	s.client = c

	octx, cancel := context.WithTimeout(ctx, opts.OpenTimeout)
	defer cancel()
	stop := context.AfterFunc(octx, c.Close) // unblocks a request without an answer
	err = s.open(u)
	if !stop() {
		switch {
		case ctx.Err() != nil:
			err = fmt.Errorf("rtsp %s: %w", name, ctx.Err())
		default:
			err = fmt.Errorf("rtsp %s: not playing within %v: %w", name, opts.OpenTimeout, context.DeadlineExceeded)
		}
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	go s.wait()
	return s, nil
}

// open describes the stream, sets up its H.264 media and plays it.
func (s *Source) open(u *base.URL) error {
	c := s.client
	desc, _, err := c.Describe(u)
	var status liberrors.ErrClientBadStatusCode
	if errors.As(err, &status) && status.Code == base.StatusUnauthorized {
		return fmt.Errorf("%w: %s: %w", ErrUnauthorized, s.name, err)
	}
	if err != nil {
		return fmt.Errorf("rtsp %s: describe: %w", s.name, err)
	}
	var forma *format.H264
	medi := desc.FindFormat(&forma)
	if medi == nil {
		return fmt.Errorf("%w: %s offers %s", ErrUnsupportedCodec, s.name, offers(desc))
	}
	if s.dec, err = forma.CreateDecoder(); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrUnsupportedCodec, s.name, err)
	}
	sps, pps := forma.SafeParams()
	s.setParams(sps, pps)
	s.dts.Initialize()
	if _, err := c.Setup(desc.BaseURL, medi, 0, 0); err != nil {
		return fmt.Errorf("rtsp %s: setup: %w", s.name, err)
	}
	s.media = medi
	c.OnPacketRTP(medi, forma, s.onRTP)
	if _, err := c.Play(nil); err != nil {
		return fmt.Errorf("rtsp %s: play: %w", s.name, err)
	}
	s.log.Info("rtsp stream playing", "transport", s.opts.Transport, "codec", s.spsInfo.Codec(),
		"width", s.spsInfo.Width, "height", s.spsInfo.Height, "sdp_params", sps != nil && pps != nil)
	return nil
}

// offers names the formats of a session description, e.g. "H265, MPEG-4 Audio".
func offers(desc *description.Session) string {
	var names []string
	for _, m := range desc.Medias {
		for _, f := range m.Formats {
			names = append(names, f.Codec())
		}
	}
	if len(names) == 0 {
		return "no media"
	}
	return strings.Join(names, ", ")
}

// setParams keeps copies of the newest SPS and PPS (from the SDP or in
// band); a bad SPS is ignored.
func (s *Source) setParams(sps, pps []byte) {
	if sps != nil && !bytes.Equal(sps, s.sps) {
		if info, err := h264.ParseSPS(sps); err == nil {
			s.sps, s.spsInfo, s.codec = bytes.Clone(sps), info, info.Codec()
		}
	}
	if pps != nil && !bytes.Equal(pps, s.pps) {
		s.pps = bytes.Clone(pps)
	}
}

// wait ends the queue with the client's error.
func (s *Source) wait() {
	defer close(s.done)
	err := s.client.Wait()
	s.queue.Close(fmt.Errorf("rtsp %s: %w", s.name, err))
}

// onRTP is called by gortsplib for every RTP packet of the H.264 media,
// on its reading goroutine.
func (s *Source) onRTP(pkt *rtp.Packet) {
	newAU := !s.cur.active || pkt.Timestamp != s.cur.ts
	if newAU {
		// the first packet of an access unit
		s.prev = s.cur
		s.cur = auMeta{ts: pkt.Timestamp, recv: time.Now(), active: true}
		s.cur.pts, s.cur.ptsOK = s.client.PacketPTS2(s.media, pkt)
		s.cur.ntp, s.cur.ntpOK = s.client.PacketNTP(s.media, pkt)
	} else if !s.cur.ptsOK {
		// gortsplib starts its clock at a packet that holds an IDR slice
		// or a parameter set, which may not be the access unit's first
		// (an SEI); every packet of an access unit has its timestamp
		s.cur.pts, s.cur.ptsOK = s.client.PacketPTS2(s.media, pkt)
	}
	nalus, err := s.dec.Decode(pkt)
	switch {
	case errors.Is(err, rtph264.ErrMorePacketsNeeded):
		s.buffered = true
		return
	case errors.Is(err, rtph264.ErrNonStartingPacketAndNoPrevious):
		return
	case err != nil:
		s.buffered = false
		s.broken(err)
		return
	}
	meta := s.cur
	// a decoder that splits access units by timestamp (cameras that do not
	// set the marker bit) returns the previous one on a new one's first packet
	if newAU && s.buffered && s.prev.active {
		meta = s.prev
	} else {
		s.buffered = false
	}
	s.handle(nalus, meta)
}

// broken counts a damaged access unit and drops deltas up to the next
// keyframe.
func (s *Source) broken(why error) {
	if s.errs.Add(1) == 1 {
		s.log.Warn("rtsp: damaged access unit dropped, waiting for a keyframe", "err", why)
	} else {
		s.log.Debug("rtsp: damaged access unit dropped, waiting for a keyframe", "err", why)
	}
	s.waitKey.Store(true)
	s.queue.Break()
}

// handle passes one access unit on.
func (s *Source) handle(nalus [][]byte, m auMeta) {
	s.seq++
	s.received.Store(s.seq)
	if !m.ptsOK {
		s.broken(errors.New("no timestamp yet"))
		return
	}
	key := false
	for _, n := range nalus {
		switch h264.Type(n) {
		case h264.TypeSPS:
			s.setParams(n, nil)
		case h264.TypePPS:
			s.setParams(nil, n)
		case h264.TypeIDR:
			key = true
		}
	}
	if !key && s.waitKey.Load() {
		s.queue.Skip()
		return
	}
	// one copy of the NAL units, with the parameter sets put in a
	// keyframe that lacks them
	size := len(s.sps) + len(s.pps) + 8
	for _, n := range nalus {
		size += 4 + len(n)
	}
	data, added, err := h264.AppendAccessUnit(make([]byte, 0, size), nalus, s.sps, s.pps)
	if err != nil {
		s.broken(err)
		return
	}
	if added {
		s.added.Add(1)
	}
	forDTS := nalus
	if key && !s.dtsReady {
		forDTS = append([][]byte{s.sps}, nalus...)
	}
	dts, err := s.dts.Extract(forDTS, m.pts)
	if err != nil {
		s.dts = mch264.DTSExtractor{}
		s.dts.Initialize()
		s.dtsReady = false
		s.broken(fmt.Errorf("decoding time: %w", err))
		return
	}
	s.dtsReady = true
	if key {
		s.waitKey.Store(false)
	}
	t, src := m.recv, h264.TimeReceive
	if m.ntpOK && m.ntp.Sub(m.recv).Abs() <= s.opts.MaxClockSkew {
		t, src = m.ntp, h264.TimeRTCP
	}
	au := h264.AccessUnit{
		Data:       data,
		Key:        key,
		Seq:        s.seq,
		PTS:        m.pts,
		DTS:        dts,
		Time:       t,
		TimeSource: src,
		Codec:      s.codec,
		Width:      s.spsInfo.Width,
		Height:     s.spsInfo.Height,
	}
	if s.opts.Deliver != nil {
		s.opts.Deliver(au)
		return
	}
	s.queue.Push(au)
}

// Read returns the next access unit, waiting until one comes, ctx is done
// or the stream fails. The first is a keyframe, and so is the first after
// any gap in AccessUnit.Seq. The access unit's Data is the reader's. With
// Options.Deliver, Read returns only the error that ends the stream.
func (s *Source) Read(ctx context.Context) (h264.AccessUnit, error) {
	return s.queue.Pop(ctx)
}

// Stats returns the source's counts.
func (s *Source) Stats() Stats {
	return Stats{
		QueueStats:  s.queue.Stats(),
		Received:    s.received.Load(),
		Lost:        s.lost.Load(),
		Errors:      s.errs.Load(),
		ParamsAdded: s.added.Load(),
	}
}

// Name returns the camera's URL without credentials.
func (s *Source) Name() string { return s.name }

// Close stops the stream and waits for its goroutines; Read then returns
// ErrClosed. It may be called more than once.
func (s *Source) Close() error {
	s.closeOnce.Do(func() {
		s.queue.Close(ErrClosed)
		s.client.Close()
		<-s.done
	})
	return nil
}

// readBuffer is how much one read of the RTSP connection can take: the
// packets of a whole 2 Mbit/s frame, where gortsplib's own 4 KiB buffer
// takes three. With RTP interleaved in the connection (TCP), that is one
// system call a frame instead of one per few packets.
const readBuffer = 64 << 10

// bufferedConn reads its connection through a readBuffer-sized buffer.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// dialBuffered dials as gortsplib does, with a larger read buffer.
func dialBuffered(ctx context.Context, network, address string) (net.Conn, error) {
	conn, err := (&net.Dialer{}).DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	return &bufferedConn{Conn: conn, r: bufio.NewReaderSize(conn, readBuffer)}, nil
}
