package avcodec

/*
#include "avcodec.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"image"
	"unsafe"

	"camhub/internal/h264"

	"gocv.io/x/gocv"
)

// MaxPixels is the largest picture a Decoder makes (8K UHD; 96 MiB of
// BGR): an SPS says whatever its sender wrote, and one that claims
// 16384x16384 must not make a viewer allocate gigabytes.
const MaxPixels = 1 << 25

// Decoder decodes H.264 access units into BGR Mats.
type Decoder struct {
	ctx         *C.AVCodecContext
	frame, next *C.AVFrame
	pkt         *C.AVPacket
	sws         *C.struct_SwsContext
	swsFor      swsKey // what sws converts from
	size        image.Point
	started     bool // a keyframe has been sent
}

// swsKey is what a converter to BGR depends on.
type swsKey struct {
	w, h, format, rng, space C.int
}

// NewDecoder returns a decoder of H.264 in Annex B form, one thread, no
// frame delay.
func NewDecoder() (_ *Decoder, err error) {
	quiet()
	codec := C.avcodec_find_decoder(C.AV_CODEC_ID_H264)
	if codec == nil {
		return nil, errors.New("avcodec: no H.264 decoder in this libavcodec")
	}
	d := &Decoder{}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	if d.ctx = newContext(codec); d.ctx == nil {
		return nil, errors.New("avcodec: out of memory")
	}
	d.ctx.thread_count = 1 // frame threads would hold pictures back
	d.ctx.flags |= C.AV_CODEC_FLAG_LOW_DELAY
	d.ctx.max_pixels = MaxPixels
	if r := C.avcodec_open2(d.ctx, codec, nil); r < 0 {
		return nil, averr(r, "opening the decoder")
	}
	d.frame, d.next, d.pkt = newFrame(), newFrame(), newPacket()
	if d.frame == nil || d.next == nil || d.pkt == nil {
		return nil, errors.New("avcodec: out of memory")
	}
	return d, nil
}

// Size returns the size of the last picture decoded; zero before the first.
func (d *Decoder) Size() image.Point { return d.size }

// Decode sends one Annex B access unit to the decoder and, if that gives a
// picture, converts it into dst as 8-bit BGR and returns true. dst is
// (re)made the picture's size if it is not, so a stream that changes
// resolution works, and a caller that keeps one Mat allocates nothing per
// picture.
//
// false and no error: the access unit gave no picture (parameter sets
// alone, which are kept for the next keyframe). false and ErrNeedKeyframe: a delta frame before the first
// keyframe, not sent to the decoder. An error that wraps ErrInvalidData:
// the access unit is not Annex B, or libavcodec rejected it; the decoder
// goes on with the next. true and ErrDamaged: a picture, but with parts
// concealed (a truncated slice, a lost reference); show it or not.
func (d *Decoder) Decode(au []byte, dst *gocv.Mat) (bool, error) {
	if d.ctx == nil {
		return false, ErrClosed
	}
	nalus, err := h264.Split(au)
	if err != nil {
		return false, fmt.Errorf("%w: %w", ErrInvalidData, err)
	}
	slices, key, params := false, false, true
	for _, n := range nalus {
		switch t := h264.Type(n); t {
		case h264.TypeSPS, h264.TypePPS, h264.TypeSEI, h264.TypeAUD:
		default:
			params = false
			slices = slices || (t >= h264.TypeNonIDR && t <= h264.TypeIDR)
			key = key || t == h264.TypeIDR
		}
	}
	if slices && !key && !d.started {
		return false, ErrNeedKeyframe
	}
	d.started = d.started || key
	if r := C.camhub_packet_fill(d.pkt, unsafe.Pointer(&au[0]), C.int(len(au))); r < 0 {
		return false, averr(r, "allocating a packet")
	}
	r := C.avcodec_send_packet(d.ctx, d.pkt)
	if r == C.CAMHUB_EAGAIN {
		// a picture not yet taken: take it, then send again
		if _, err := d.receive(); err != nil {
			C.av_packet_unref(d.pkt)
			return false, err
		}
		r = C.avcodec_send_packet(d.ctx, d.pkt)
	}
	C.av_packet_unref(d.pkt)
	if r == C.CAMHUB_INVALIDDATA && params {
		// parameter sets alone, as some cameras send them: taken, but
		// libavcodec says it made no picture of them
		return false, nil
	}
	if r < 0 {
		if r == C.CAMHUB_EINVAL {
			// what h264 says of a slice it cannot place, e.g. a new size
			// without its SPS
			return false, fmt.Errorf("%w: %w", ErrInvalidData, averr(r, "decoding"))
		}
		return false, averr(r, "decoding")
	}
	got, err := d.receive()
	if err != nil || !got {
		return false, err
	}
	defer C.av_frame_unref(d.frame)
	return true, d.convert(dst)
}

// receive takes the pictures the decoder has ready, keeping the newest in
// d.frame.
func (d *Decoder) receive() (bool, error) {
	got := false
	for {
		r := C.avcodec_receive_frame(d.ctx, d.next)
		if r == C.CAMHUB_EAGAIN || r == C.CAMHUB_EOF {
			return got, nil
		}
		if r < 0 {
			return got, averr(r, "decoding")
		}
		C.av_frame_unref(d.frame)
		C.av_frame_move_ref(d.frame, d.next)
		got = true
	}
}

// convert writes d.frame into dst as BGR.
func (d *Decoder) convert(dst *gocv.Mat) error {
	f := d.frame
	w, h := int(f.width), int(f.height)
	if w <= 0 || h <= 0 || w*h > MaxPixels {
		return fmt.Errorf("%w: a picture of %dx%d", ErrInvalidData, w, h)
	}
	key := swsKey{f.width, f.height, f.format, C.int(f.color_range), C.int(f.colorspace)}
	if d.sws == nil || key != d.swsFor {
		freeScaler(&d.sws)
		if d.sws = countScaler(C.camhub_sws_to_bgr(f)); d.sws == nil {
			return fmt.Errorf("avcodec: cannot convert pictures of format %d to BGR", f.format)
		}
		d.swsFor = key
	}
	if dst.Rows() != h || dst.Cols() != w || dst.Type() != gocv.MatTypeCV8UC3 || !dst.IsContinuous() {
		dst.Close()
		*dst = gocv.NewMatWithSize(h, w, gocv.MatTypeCV8UC3)
	}
	pix, err := dst.DataPtrUint8() // C memory: fine to hand to C
	if err != nil {
		return err
	}
	if r := C.camhub_to_bgr(d.sws, f, (*C.uint8_t)(unsafe.Pointer(&pix[0])), C.int(dst.Step())); r < 0 {
		return averr(r, "converting to BGR")
	}
	d.size = image.Pt(w, h)
	if f.decode_error_flags != 0 || f.flags&C.AV_FRAME_FLAG_CORRUPT != 0 {
		return ErrDamaged
	}
	return nil
}

// Close frees the decoder. It may be called more than once.
func (d *Decoder) Close() error {
	freeScaler(&d.sws)
	freePacket(&d.pkt)
	freeFrame(&d.next)
	freeFrame(&d.frame)
	freeContext(&d.ctx)
	return nil
}
