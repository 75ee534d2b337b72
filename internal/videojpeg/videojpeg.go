// Package videojpeg turns a camera's H.264 access units into JPEGs:
// libavcodec decodes, libjpeg-turbo encodes. It implements
// replay.VideoDecoder for the parts of camhub that must build without cgo
// (package web, package replay), which are given New by the program.
package videojpeg

import (
	"errors"
	"image"

	"gocv.io/x/gocv"

	"camhub/internal/avcodec"
	"camhub/internal/replay"
	"camhub/internal/turbojpeg"
)

// Decoder decodes one camera's access units and encodes its newest
// picture. It is not safe for concurrent use. Close frees it.
type Decoder struct {
	dec  *avcodec.Decoder
	enc  *turbojpeg.Encoder
	pic  gocv.Mat
	have bool
}

// New returns a Decoder.
func New() (*Decoder, error) {
	dec, err := avcodec.NewDecoder()
	if err != nil {
		return nil, err
	}
	enc, err := turbojpeg.NewEncoder()
	if err != nil {
		dec.Close()
		return nil, err
	}
	return &Decoder{dec: dec, enc: enc, pic: gocv.NewMat()}, nil
}

// Factory is New as a replay.NewVideoDecoder.
func Factory() (replay.VideoDecoder, error) { return New() }

// Decode decodes au. A damaged picture (parts concealed) counts as a
// picture, with its error.
func (d *Decoder) Decode(au []byte) (bool, error) {
	if d.dec == nil {
		return false, avcodec.ErrClosed
	}
	ok, err := d.dec.Decode(au, &d.pic)
	d.have = d.have || ok
	return ok, err
}

// JPEG encodes the newest picture.
func (d *Decoder) JPEG(quality int, dst []byte) ([]byte, error) {
	if d.enc == nil {
		return dst, avcodec.ErrClosed
	}
	if !d.have {
		return dst, errors.New("videojpeg: no picture decoded yet")
	}
	return d.enc.Encode(d.pic, quality, dst)
}

// Mat is the newest picture (BGR), owned by d: valid until the next Decode
// or Close.
func (d *Decoder) Mat() (gocv.Mat, bool) { return d.pic, d.have }

// Size is the newest picture's size.
func (d *Decoder) Size() image.Point {
	if d.dec == nil {
		return image.Point{}
	}
	return d.dec.Size()
}

// Close frees everything. It may be called more than once.
func (d *Decoder) Close() error {
	if d.dec == nil {
		return nil
	}
	d.dec.Close()
	d.enc.Close()
	d.pic.Close()
	d.dec, d.enc = nil, nil
	return nil
}
