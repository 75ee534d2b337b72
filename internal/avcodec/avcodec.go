// Package avcodec encodes and decodes H.264 with FFmpeg's libavcodec (Debian's
// FFmpeg 5.1), straight from and to 8-bit BGR gocv Mats, converting with
// libyuv (to the encoder) and libswscale (from the decoder, whatever
// format and colour space a camera sends).
//
// The Encoder uses libx264 (baseline profile, no B-frames, zero latency)
// or, where there is one, the V4L2 hardware encoder of a Raspberry Pi 4
// (h264_v4l2m2m). It writes one Annex B access unit per picture, SPS and
// PPS in front of every keyframe, so that any keyframe on the wire starts
// a decoder. The Decoder takes such access units from any H.264 source.
//
// An Encoder or a Decoder is not safe for concurrent use: give each
// goroutine its own, and Close it when done. Every native object they make
// is counted by Live, so that tests can assert that all were freed.
//
// libavcodec's own log messages are silenced (a damaged stream would log
// on every frame); every failure is returned as an error instead.
package avcodec

/*
#cgo pkg-config: libavcodec libswscale libavutil
#cgo LDFLAGS: -l:libyuv.a -lstdc++
#include "avcodec.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"
)

var (
	// ErrClosed is returned by an Encoder or a Decoder used after Close.
	ErrClosed = errors.New("avcodec: closed")
	// ErrInvalidData wraps what libavcodec (or the Annex B framing) finds
	// wrong in an access unit: garbage, a truncated slice, a broken SPS.
	ErrInvalidData = errors.New("avcodec: invalid data")
	// ErrNeedKeyframe is returned by a Decoder given a delta frame before
	// its first keyframe: there is nothing to predict it from.
	ErrNeedKeyframe = errors.New("avcodec: no keyframe yet")
	// ErrDamaged comes with a picture that was decoded, but with parts
	// missing or concealed (a truncated access unit, a lost reference).
	ErrDamaged = errors.New("avcodec: damaged picture")
	// ErrNoEncoder is returned by NewEncoder when no encoder of the kind
	// asked for is in the library or none would open.
	ErrNoEncoder = errors.New("avcodec: no H.264 encoder")
)

// live counts the native objects this package has made and not freed.
var live struct {
	contexts, frames, packets, scalers atomic.Int64
}

// Live returns how many native objects (codec contexts, frames, packets,
// swscale contexts) Encoders and Decoders hold now: 0 once every one is
// closed.
func Live() int {
	return int(live.contexts.Load() + live.frames.Load() + live.packets.Load() + live.scalers.Load())
}

// LiveString says what Live counts, for a test's failure message.
func LiveString() string {
	return fmt.Sprintf("%d codec contexts, %d frames, %d packets, %d swscale contexts",
		live.contexts.Load(), live.frames.Load(), live.packets.Load(), live.scalers.Load())
}

var quietOnce sync.Once

func quiet() { quietOnce.Do(func() { C.av_log_set_level(C.AV_LOG_QUIET) }) }

// averr is a libavcodec error code as an error; INVALIDDATA wraps
// ErrInvalidData.
func averr(code C.int, what string) error {
	msg := avstr(code)
	if code == C.CAMHUB_INVALIDDATA {
		return fmt.Errorf("%w: %s: %s", ErrInvalidData, what, msg)
	}
	return fmt.Errorf("avcodec: %s: %s", what, msg)
}

// avstr is libavutil's text for an error code.
func avstr(code C.int) string {
	var buf [128]C.char
	C.camhub_strerror(code, &buf[0], C.size_t(len(buf)))
	return C.GoString(&buf[0])
}

func newContext(codec *C.AVCodec) *C.AVCodecContext {
	c := C.avcodec_alloc_context3(codec)
	if c != nil {
		live.contexts.Add(1)
	}
	return c
}

func freeContext(c **C.AVCodecContext) {
	if *c != nil {
		x := *c // a C pointer in Go memory of its own, for cgo's checks
		C.avcodec_free_context(&x)
		*c = nil
		live.contexts.Add(-1)
	}
}

func newFrame() *C.AVFrame {
	f := C.av_frame_alloc()
	if f != nil {
		live.frames.Add(1)
	}
	return f
}

func freeFrame(f **C.AVFrame) {
	if *f != nil {
		x := *f // a C pointer in Go memory of its own, for cgo's checks
		C.av_frame_free(&x)
		*f = nil
		live.frames.Add(-1)
	}
}

func newPacket() *C.AVPacket {
	p := C.av_packet_alloc()
	if p != nil {
		live.packets.Add(1)
	}
	return p
}

func freePacket(p **C.AVPacket) {
	if *p != nil {
		x := *p // a C pointer in Go memory of its own, for cgo's checks
		C.av_packet_free(&x)
		*p = nil
		live.packets.Add(-1)
	}
}

func countScaler(s *C.struct_SwsContext) *C.struct_SwsContext {
	if s != nil {
		live.scalers.Add(1)
	}
	return s
}

func freeScaler(s **C.struct_SwsContext) {
	if *s != nil {
		C.sws_freeContext(*s)
		*s = nil
		live.scalers.Add(-1)
	}
}

// setOpt sets an option of a libavcodec object (a codec's private
// options, for libx264 its preset, tune, profile...).
func setOpt(obj unsafe.Pointer, key, val string) error {
	k, v := C.CString(key), C.CString(val)
	defer C.free(unsafe.Pointer(k))
	defer C.free(unsafe.Pointer(v))
	if r := C.camhub_opt(obj, k, v); r < 0 {
		return fmt.Errorf("setting %s=%s: %s", key, val, avstr(r))
	}
	return nil
}
