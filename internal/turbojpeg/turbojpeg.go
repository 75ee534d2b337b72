// Package turbojpeg encodes and decodes JPEGs with libjpeg-turbo's TurboJPEG
// API, straight to and from gocv Mats.
//
// OpenCV 4.6's imencode and imdecode go through libjpeg one scan line at a
// time with their own colour conversion; measured here they take about 1.4×
// (encode) and 3× (decode) the time libjpeg-turbo itself needs for the same
// picture. TurboJPEG converts to and from BGR with SIMD and decodes at 1/2,
// 1/4 or 1/8 of the size in one call, so a grid tile is decoded at about
// its own size instead of at full size and then shrunk.
//
// An Encoder or a Decoder is not safe for concurrent use: give each
// goroutine its own, and Close it when done.
package turbojpeg

/*
#cgo pkg-config: libturbojpeg
#include <stdlib.h>
#include <turbojpeg.h>
*/
import "C"

import (
	"errors"
	"fmt"
	"image"
	"sync"
	"unsafe"

	"gocv.io/x/gocv"
)

// ErrClosed is returned by an Encoder or a Decoder used after Close.
var ErrClosed = errors.New("turbojpeg: closed")

// handleError is the error of the handle's last call.
func handleError(h C.tjhandle, what string) error {
	return fmt.Errorf("turbojpeg: %s: %s", what, C.GoString(C.tjGetErrorStr2(h)))
}

// Scale is a decoding scale: Num/Denom of the picture's size.
type Scale struct{ Num, Denom int }

// Apply returns the size of a w x h picture decoded at s, rounded up as
// libjpeg-turbo does.
func (s Scale) Apply(w, h int) image.Point {
	return image.Pt((w*s.Num+s.Denom-1)/s.Denom, (h*s.Num+s.Denom-1)/s.Denom)
}

func (s Scale) String() string { return fmt.Sprintf("%d/%d", s.Num, s.Denom) }

var (
	scalesOnce sync.Once
	scales     []Scale // the library's scales of at most 1, largest first
)

// Scales returns the scales at most 1/1 the library decodes at, largest
// first (libjpeg-turbo 2.x: 8/8, 7/8, ..., 1/8).
func Scales() []Scale {
	scalesOnce.Do(func() {
		var n C.int
		sf := C.tjGetScalingFactors(&n)
		for _, f := range unsafe.Slice(sf, int(n)) {
			s := Scale{int(f.num), int(f.denom)}
			if s.Num > 0 && s.Num <= s.Denom {
				scales = append(scales, s)
			}
		}
		if len(scales) == 0 {
			scales = []Scale{{1, 1}}
		}
		// the library lists them largest first; keep that order
	})
	return scales
}

// FastScales are the scales libjpeg-turbo decodes with SIMD: 1/1, 1/2,
// 1/4 and 1/8. The others cost as much as the next larger of these or
// more, 7/8 to 5/8 more than full size (measured
// on a 640x480 frame, quality 80: 1/1 0.63 ms, 7/8 1.31, 3/4 0.99, 5/8
// 0.88, 1/2 0.58, 3/8 0.58, 1/4 0.46, 1/8 0.38).
var FastScales = []Scale{{1, 1}, {1, 2}, {1, 4}, {1, 8}}

// ScaleFor returns the smallest of FastScales at which a picture of size
// frame is at least fit in both dimensions, so that it is only ever
// shrunk after decoding; 1/1 if fit is empty or not smaller than frame.
func ScaleFor(frame, fit image.Point) Scale {
	best := Scale{1, 1}
	if fit.X <= 0 || fit.Y <= 0 {
		return best
	}
	for _, s := range FastScales {
		got := s.Apply(frame.X, frame.Y)
		if got.X >= fit.X && got.Y >= fit.Y {
			best = s
		}
	}
	return best
}

// MaxPixels is the largest picture a Decoder makes (48 MiB of BGR): a
// JPEG's header is whatever its sender wrote, and a frame that claims to
// be 65535x65535 must not make a viewer allocate 12 GiB.
const MaxPixels = 1 << 24

// Decoder decodes JPEGs into BGR Mats.
type Decoder struct {
	h     C.tjhandle
	flags C.int
}

// NewDecoder returns a decoder. fast trades a little accuracy for speed
// (TurboJPEG's fast DCT and upsampling), which a small tile does not show.
func NewDecoder(fast bool) (*Decoder, error) {
	h := C.tjInitDecompress()
	if h == nil {
		return nil, errors.New("turbojpeg: cannot start a decompressor")
	}
	d := &Decoder{h: h}
	if fast {
		d.flags = C.TJFLAG_FASTDCT | C.TJFLAG_FASTUPSAMPLE
	}
	return d, nil
}

// Close frees the decoder.
func (d *Decoder) Close() error {
	if d.h == nil {
		return nil
	}
	C.tjDestroy(d.h)
	d.h = nil
	return nil
}

// Size returns the size of the picture jpeg holds, from its header.
func (d *Decoder) Size(jpeg []byte) (image.Point, error) {
	if d.h == nil {
		return image.Point{}, ErrClosed
	}
	if len(jpeg) == 0 {
		return image.Point{}, errors.New("turbojpeg: empty JPEG")
	}
	var w, h, subsamp, colorspace C.int
	if C.tjDecompressHeader3(d.h, (*C.uchar)(unsafe.Pointer(&jpeg[0])), C.ulong(len(jpeg)),
		&w, &h, &subsamp, &colorspace) != 0 {
		return image.Point{}, handleError(d.h, "reading the header")
	}
	if w <= 0 || h <= 0 {
		return image.Point{}, fmt.Errorf("turbojpeg: the header says %dx%d", w, h)
	}
	return image.Pt(int(w), int(h)), nil
}

// Decode decodes jpeg into dst as 8-bit BGR at the smallest fast scale at
// which the picture is at least fit (see ScaleFor), and returns the scale. dst is
// (re)made the decoded size if it is not, so a caller that keeps one Mat
// allocates nothing per frame. A picture that is damaged but decodable is
// decoded as far as it goes; the error then says so.
func (d *Decoder) Decode(jpeg []byte, fit image.Point, dst *gocv.Mat) (Scale, error) {
	size, err := d.Size(jpeg)
	if err != nil {
		return Scale{}, err
	}
	s := ScaleFor(size, fit)
	return s, d.decode(jpeg, size, s, dst)
}

// DecodeAt decodes jpeg into dst as 8-bit BGR at scale s.
func (d *Decoder) DecodeAt(jpeg []byte, s Scale, dst *gocv.Mat) error {
	size, err := d.Size(jpeg)
	if err != nil {
		return err
	}
	return d.decode(jpeg, size, s, dst)
}

func (d *Decoder) decode(jpeg []byte, size image.Point, s Scale, dst *gocv.Mat) error {
	out := s.Apply(size.X, size.Y)
	if out.X*out.Y > MaxPixels {
		return fmt.Errorf("turbojpeg: a %dx%d picture at %v is larger than %d pixels", size.X, size.Y, s, MaxPixels)
	}
	if dst.Rows() != out.Y || dst.Cols() != out.X || dst.Type() != gocv.MatTypeCV8UC3 || !dst.IsContinuous() {
		dst.Close()
		*dst = gocv.NewMatWithSize(out.Y, out.X, gocv.MatTypeCV8UC3)
	}
	pix, err := dst.DataPtrUint8() // C memory: fine to hand to C
	if err != nil {
		return err
	}
	if C.tjDecompress2(d.h, (*C.uchar)(unsafe.Pointer(&jpeg[0])), C.ulong(len(jpeg)),
		(*C.uchar)(unsafe.Pointer(&pix[0])), C.int(out.X), C.int(dst.Step()), C.int(out.Y),
		C.TJPF_BGR, d.flags) != 0 {
		return handleError(d.h, "decoding")
	}
	return nil
}

// Encoder encodes BGR (or grey) Mats as JPEGs with 4:2:0 chroma
// subsampling, as OpenCV does by default.
type Encoder struct {
	h   C.tjhandle
	buf *C.uchar // the output buffer, reused; tjBufSize of the largest picture yet
	cap C.ulong
}

// NewEncoder returns an encoder.
func NewEncoder() (*Encoder, error) {
	h := C.tjInitCompress()
	if h == nil {
		return nil, errors.New("turbojpeg: cannot start a compressor")
	}
	return &Encoder{h: h}, nil
}

// Close frees the encoder and its buffer.
func (e *Encoder) Close() error {
	if e.h == nil {
		return nil
	}
	if e.buf != nil {
		C.tjFree(e.buf)
		e.buf = nil
	}
	C.tjDestroy(e.h)
	e.h = nil
	return nil
}

// Encode encodes img (8-bit BGR, BGRA or grey) at quality (1-100) and
// appends the JPEG to dst[:0], returning it.
func (e *Encoder) Encode(img gocv.Mat, quality int, dst []byte) ([]byte, error) {
	if e.h == nil {
		return dst, ErrClosed
	}
	var pf, samp C.int
	switch img.Type() {
	case gocv.MatTypeCV8UC3:
		pf, samp = C.TJPF_BGR, C.TJSAMP_420
	case gocv.MatTypeCV8UC4:
		pf, samp = C.TJPF_BGRX, C.TJSAMP_420
	case gocv.MatTypeCV8UC1:
		pf, samp = C.TJPF_GRAY, C.TJSAMP_GRAY
	default:
		return dst, fmt.Errorf("turbojpeg: cannot encode a Mat of type %v", img.Type())
	}
	w, h := img.Cols(), img.Rows()
	if w <= 0 || h <= 0 {
		return dst, errors.New("turbojpeg: empty picture")
	}
	if quality < 1 || quality > 100 {
		return dst, fmt.Errorf("turbojpeg: quality %d: want 1 to 100", quality)
	}
	if !img.IsContinuous() {
		return dst, errors.New("turbojpeg: the Mat is not continuous")
	}
	need := C.tjBufSize(C.int(w), C.int(h), samp)
	if need == C.ulong(^C.ulong(0)) {
		return dst, handleError(e.h, "sizing the buffer")
	}
	if need > e.cap {
		if e.buf != nil {
			C.tjFree(e.buf)
		}
		e.buf = C.tjAlloc(C.int(need))
		if e.buf == nil {
			e.cap = 0
			return dst, errors.New("turbojpeg: out of memory")
		}
		e.cap = need
	}
	pix, err := img.DataPtrUint8()
	if err != nil {
		return dst, err
	}
	size := e.cap
	if C.tjCompress2(e.h, (*C.uchar)(unsafe.Pointer(&pix[0])), C.int(w), C.int(img.Step()), C.int(h), pf,
		&e.buf, &size, samp, C.int(quality), C.TJFLAG_NOREALLOC) != 0 {
		return dst, handleError(e.h, "encoding")
	}
	return append(dst[:0], unsafe.Slice((*byte)(unsafe.Pointer(e.buf)), int(size))...), nil
}
