package avcodec

/*
#include "avcodec.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"camhub/internal/h264"

	"gocv.io/x/gocv"
)

// Encoder names for EncoderConfig.Codec.
const (
	CodecAuto    = "auto"         // the hardware encoder if it opens, else libx264
	CodecX264    = "libx264"      // software, any machine
	CodecV4L2M2M = "h264_v4l2m2m" // the Raspberry Pi 4's hardware encoder
)

// Presets of libx264 that EncoderConfig.Preset accepts: the three fast
// enough for a camera on a small machine.
const (
	PresetUltrafast = "ultrafast"
	PresetSuperfast = "superfast"
	PresetVeryfast  = "veryfast"
)

// Defaults of EncoderConfig.
const (
	// DefaultPreset is superfast: on real footage (OpenCV's vtest clip at
	// 640x480) it matches the SSIM of JPEG at quality 80 with more than 6
	// times fewer bytes, as veryfast does (7 times), for about two thirds
	// of veryfast's CPU; ultrafast manages 5 times fewer
	// (docs/BENCHMARKS-H264.md). Choose ultrafast where CPU, not the link,
	// is short, veryfast where the link is.
	DefaultPreset      = PresetSuperfast
	DefaultKeyInterval = time.Second
)

// DefaultCRF returns the constant rate factor a preset uses in quality
// mode: about the lowest quality at which its SSIM is at least that of
// JPEG at quality 80 on real footage (vtest at 640x480: JPEG 0.9761;
// superfast at 26.7 0.9763, veryfast at 25 0.9762, ultrafast at 26
// 0.9768; TestQualityAgainstJPEG).
func DefaultCRF(preset string) float64 {
	switch preset {
	case PresetUltrafast:
		return 26
	case PresetSuperfast:
		return 26.7
	}
	return 25
}

// EncoderConfig says what an Encoder makes.
type EncoderConfig struct {
	Width, Height int // the picture's size: even, at most h264.MaxSide

	// FPS is the rate pictures are given to Encode at. It sets the
	// stream's time base and the keyframe interval in frames, and rate
	// control assumes it: a source that delivers half as many frames
	// gets about half the Bitrate.
	FPS float64

	// Bitrate is the target in bit/s, capped over one second (VBV); 0
	// encodes at constant quality (libx264's CRF) instead. The hardware
	// encoder has no quality mode: at 0 it gets 0.25 bit per pixel and
	// frame (768 kbit/s for 640x480 at 10 fps).
	Bitrate int
	CRF     float64 // libx264's constant rate factor when Bitrate is 0; 0: DefaultCRF(Preset)

	KeyInterval time.Duration // time between keyframes; 0: DefaultKeyInterval
	Preset      string        // PresetUltrafast, PresetSuperfast or PresetVeryfast (libx264); "": DefaultPreset
	Codec       string        // CodecAuto, CodecX264 or CodecV4L2M2M; "": CodecAuto

	// Threads is the number of threads libx264 uses; 0 is 1, which costs
	// the least CPU per frame and keeps one slice per picture. More
	// threads (sliced) lower the latency of a large picture.
	Threads int
}

func (c EncoderConfig) withDefaults() (EncoderConfig, error) {
	if c.Width <= 0 || c.Height <= 0 || c.Width%2 != 0 || c.Height%2 != 0 || c.Width > h264.MaxSide || c.Height > h264.MaxSide {
		return c, fmt.Errorf("avcodec: cannot encode %dx%d: the sides must be even, 2 to %d", c.Width, c.Height, h264.MaxSide)
	}
	if !(c.FPS > 0 && c.FPS <= 1000) {
		return c, fmt.Errorf("avcodec: fps %v: want more than 0, at most 1000", c.FPS)
	}
	if c.Bitrate < 0 || c.CRF < 0 || c.CRF > 51 || c.KeyInterval < 0 || c.Threads < 0 {
		return c, fmt.Errorf("avcodec: bitrate %d, crf %v, key interval %v, threads %d: none may be negative, crf at most 51",
			c.Bitrate, c.CRF, c.KeyInterval, c.Threads)
	}
	if c.Preset == "" {
		c.Preset = DefaultPreset
	}
	if c.Preset != PresetUltrafast && c.Preset != PresetSuperfast && c.Preset != PresetVeryfast {
		return c, fmt.Errorf("avcodec: preset %q: want %s, %s or %s", c.Preset, PresetUltrafast, PresetSuperfast, PresetVeryfast)
	}
	if c.CRF == 0 {
		c.CRF = DefaultCRF(c.Preset)
	}
	if c.KeyInterval == 0 {
		c.KeyInterval = DefaultKeyInterval
	}
	if c.Codec == "" {
		c.Codec = CodecAuto
	}
	if c.Codec != CodecAuto && c.Codec != CodecX264 && c.Codec != CodecV4L2M2M {
		return c, fmt.Errorf("avcodec: codec %q: want %s, %s or %s", c.Codec, CodecAuto, CodecX264, CodecV4L2M2M)
	}
	if c.Threads == 0 {
		c.Threads = 1
	}
	return c, nil
}

// gop is the keyframe interval in frames, at least 1.
func (c EncoderConfig) gop() int {
	return max(1, int(math.Round(c.KeyInterval.Seconds()*c.FPS)))
}

// Packet is one encoded picture.
type Packet struct {
	Data []byte        // one access unit, Annex B; the caller's to keep
	Key  bool          // an IDR picture, with SPS and PPS in front
	PTS  time.Duration // the time given to Encode with the picture
	DTS  time.Duration // its decoding time: the PTS, as there are no B-frames
}

// ptsRing is how many pictures an encoder may hold back before their
// packets come out (libx264 with zerolatency: none; a hardware encoder: a
// few buffers).
const ptsRing = 64

// Encoder encodes BGR Mats as H.264 access units.
type Encoder struct {
	cfg  EncoderConfig
	name string

	ctx   *C.AVCodecContext
	frame *C.AVFrame // YUV 4:2:0, reused
	pkt   *C.AVPacket

	n        int64 // pictures sent; the next one's pts in the codec's time base
	pts      [ptsRing]time.Duration
	sps, pps []byte // the newest parameter sets the encoder wrote
	key      bool   // the next picture is to be a keyframe
	flushed  bool
}

// NewEncoder opens an encoder. With CodecAuto it tries the hardware
// encoder first and falls back to libx264; Name says which opened. The
// error names every encoder tried and why it did not open.
func NewEncoder(cfg EncoderConfig) (*Encoder, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	quiet()
	names := []string{cfg.Codec}
	if cfg.Codec == CodecAuto {
		names = []string{CodecV4L2M2M, CodecX264}
	}
	var why []string
	for _, name := range names {
		e, err := openEncoder(name, cfg)
		if err == nil {
			return e, nil
		}
		why = append(why, err.Error())
	}
	return nil, fmt.Errorf("%w: %s", ErrNoEncoder, strings.Join(why, "; "))
}

func openEncoder(name string, cfg EncoderConfig) (_ *Encoder, err error) {
	cname := C.CString(name)
	codec := C.avcodec_find_encoder_by_name(cname)
	C.free(unsafe.Pointer(cname))
	if codec == nil {
		return nil, fmt.Errorf("%s: not in this libavcodec", name)
	}
	e := &Encoder{cfg: cfg, name: name}
	defer func() {
		if err != nil {
			e.Close()
			err = fmt.Errorf("%s: %w", name, err)
		}
	}()
	if e.ctx = newContext(codec); e.ctx == nil {
		return nil, errors.New("out of memory")
	}
	c := e.ctx
	c.width, c.height = C.int(cfg.Width), C.int(cfg.Height)
	c.pix_fmt = C.AV_PIX_FMT_YUV420P
	c.framerate = C.av_d2q(C.double(cfg.FPS), 1<<16)
	c.time_base = C.AVRational{num: c.framerate.den, den: c.framerate.num}
	c.gop_size = C.int(cfg.gop())
	c.max_b_frames = 0
	c.thread_count = C.int(cfg.Threads)
	// what camhub_from_bgr makes, said in the stream (VUI)
	c.colorspace = C.AVCOL_SPC_SMPTE170M
	c.color_range = C.AVCOL_RANGE_MPEG
	bitrate := cfg.Bitrate
	if bitrate == 0 && name == CodecV4L2M2M {
		bitrate = int(0.25 * float64(cfg.Width*cfg.Height) * cfg.FPS)
	}
	if bitrate > 0 {
		c.bit_rate = C.int64_t(bitrate)
		c.rc_max_rate = C.int64_t(bitrate)
		c.rc_buffer_size = C.int(min(bitrate, math.MaxInt32))
	}
	switch name {
	case CodecX264:
		x264 := [][2]string{
			{"preset", cfg.Preset},
			{"tune", "zerolatency"},
			{"profile", "baseline"},
			{"forced-idr", "1"},
			// SPS and PPS before every keyframe; keyframes only every
			// gop frames, so that the agent's GOPs are regular
			{"x264-params", "repeat-headers=1:scenecut=0"},
		}
		if cfg.Bitrate == 0 {
			x264 = append(x264, [2]string{"crf", strconv.FormatFloat(cfg.CRF, 'f', -1, 64)})
		}
		for _, o := range x264 {
			if err := setOpt(c.priv_data, o[0], o[1]); err != nil {
				return nil, err
			}
		}
	case CodecV4L2M2M:
		c.profile = C.FF_PROFILE_H264_CONSTRAINED_BASELINE
	}
	if r := C.avcodec_open2(c, codec, nil); r < 0 {
		return nil, fmt.Errorf("opening: %s", avstr(r))
	}

	if e.frame = newFrame(); e.frame == nil {
		return nil, errors.New("out of memory")
	}
	e.frame.format = C.AV_PIX_FMT_YUV420P
	e.frame.width, e.frame.height = c.width, c.height
	if r := C.av_frame_get_buffer(e.frame, 0); r < 0 {
		return nil, fmt.Errorf("allocating a picture: %s", avstr(r))
	}
	if e.pkt = newPacket(); e.pkt == nil {
		return nil, errors.New("out of memory")
	}
	// parameter sets the encoder gives up front (extradata), if any
	if c.extradata != nil && c.extradata_size > 0 {
		e.keepParams(C.GoBytes(unsafe.Pointer(c.extradata), c.extradata_size))
	}
	return e, nil
}

// Name returns the encoder that opened: CodecX264 or CodecV4L2M2M.
func (e *Encoder) Name() string { return e.name }

// Config returns the configuration in use, defaults filled in.
func (e *Encoder) Config() EncoderConfig { return e.cfg }

// ForceKeyframe makes the next picture given to Encode a keyframe, as a
// sender that has just dropped pictures needs to resume.
func (e *Encoder) ForceKeyframe() { e.key = true }

// Encode encodes img, an 8-bit BGR Mat of the configured size, captured
// at pts, and returns the packets the encoder has ready: with libx264 the
// picture's own; a hardware encoder may hold a few pictures back. A
// picture of another size is an error: open a new Encoder for it (its
// first packet is a keyframe with the new SPS).
func (e *Encoder) Encode(img gocv.Mat, pts time.Duration) ([]Packet, error) {
	switch {
	case e.ctx == nil:
		return nil, ErrClosed
	case e.flushed:
		return nil, errors.New("avcodec: encoder flushed")
	case img.Type() != gocv.MatTypeCV8UC3:
		return nil, fmt.Errorf("avcodec: cannot encode a Mat of type %v: want 8-bit BGR", img.Type())
	case img.Cols() != e.cfg.Width || img.Rows() != e.cfg.Height:
		return nil, fmt.Errorf("avcodec: a %dx%d picture to a %dx%d encoder", img.Cols(), img.Rows(), e.cfg.Width, e.cfg.Height)
	case !img.IsContinuous():
		return nil, errors.New("avcodec: the Mat is not continuous")
	}
	pix, err := img.DataPtrUint8() // C memory: fine to hand to C
	if err != nil {
		return nil, err
	}
	// the encoder may still hold the previous picture's buffer
	if r := C.av_frame_make_writable(e.frame); r < 0 {
		return nil, averr(r, "making the picture writable")
	}
	if r := C.camhub_from_bgr((*C.uint8_t)(unsafe.Pointer(&pix[0])), C.int(img.Step()), e.frame); r != 0 {
		return nil, errors.New("avcodec: converting BGR to YUV: libyuv refused the picture")
	}
	e.frame.pts = C.int64_t(e.n)
	e.pts[e.n%ptsRing] = pts
	e.n++
	e.frame.pict_type = C.AV_PICTURE_TYPE_NONE
	if e.key {
		e.frame.pict_type = C.AV_PICTURE_TYPE_I
		e.key = false
	}
	if r := C.avcodec_send_frame(e.ctx, e.frame); r < 0 {
		return nil, averr(r, "encoding")
	}
	return e.receive(nil)
}

// Flush returns the packets of pictures the encoder still holds and ends
// the stream: Encode fails after it.
func (e *Encoder) Flush() ([]Packet, error) {
	if e.ctx == nil {
		return nil, ErrClosed
	}
	if e.flushed {
		return nil, nil
	}
	e.flushed = true
	if r := C.avcodec_send_frame(e.ctx, nil); r < 0 {
		return nil, averr(r, "flushing")
	}
	return e.receive(nil)
}

// receive appends the packets the encoder has ready to out.
func (e *Encoder) receive(out []Packet) ([]Packet, error) {
	for {
		r := C.avcodec_receive_packet(e.ctx, e.pkt)
		if r == C.CAMHUB_EAGAIN || r == C.CAMHUB_EOF {
			return out, nil
		}
		if r < 0 {
			return out, averr(r, "receiving a packet")
		}
		data := C.GoBytes(unsafe.Pointer(e.pkt.data), e.pkt.size)
		pts, dts := e.time(int64(e.pkt.pts)), e.time(int64(e.pkt.dts))
		C.av_packet_unref(e.pkt)

		nalus, err := h264.Split(data)
		if err != nil {
			return out, fmt.Errorf("avcodec: %s wrote an access unit that does not split: %w", e.name, err)
		}
		vcl := false
		for _, n := range nalus {
			vcl = vcl || h264.Type(n) == h264.TypeIDR || h264.Type(n) == h264.TypeNonIDR
		}
		e.keepParams(data)
		if !vcl {
			continue // parameter sets alone (hardware encoders): kept for the keyframe
		}
		key := false
		for _, n := range nalus {
			key = key || h264.Type(n) == h264.TypeIDR
		}
		if key {
			if data, err = h264.EnsureParams(data, e.sps, e.pps); err != nil {
				return out, fmt.Errorf("avcodec: %s: %w", e.name, err)
			}
		}
		out = append(out, Packet{Data: data, Key: key, PTS: pts, DTS: dts})
	}
}

// keepParams remembers the SPS and PPS in au, if any.
func (e *Encoder) keepParams(au []byte) {
	sps, pps, err := h264.Params(au)
	if err != nil {
		return
	}
	if sps != nil {
		e.sps = sps
	}
	if pps != nil {
		e.pps = pps
	}
}

// time maps a timestamp in frames back to the time given to Encode.
func (e *Encoder) time(ts int64) time.Duration {
	if ts >= 0 && ts < e.n && ts >= e.n-ptsRing {
		return e.pts[ts%ptsRing]
	}
	// not a picture of the last ptsRing: as far from the newest as it
	// is in frames
	last := e.pts[(e.n-1+ptsRing)%ptsRing]
	return last - time.Duration(float64(e.n-1-ts)/e.cfg.FPS*float64(time.Second))
}

// Close frees the encoder without flushing it. It may be called more than
// once.
func (e *Encoder) Close() error {
	freePacket(&e.pkt)
	freeFrame(&e.frame)
	freeContext(&e.ctx)
	return nil
}
