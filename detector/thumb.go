//go:build cgo

package detector

import (
	"context"
	"errors"
	"image"
	"strconv"

	"github.com/nats-io/nats.go"
	"gocv.io/x/gocv"

	"camhub/internal/turbojpeg"
	"camhub/internal/wire"
)

// An event's thumbnail is the picture on which the detector decided that
// the event started (the last of the on-frames), as a JPEG at most
// wire.MaxThumbWidth wide, stored in CLIPS on clips.<event-id>.<id>.thumb
// with the message id <event-id>.thumb: a detector that stores it again
// (its publish retried after a hub restart) stores nothing. A JPEG
// camera's frame that is small enough is stored as it came; a larger one
// is decoded smaller and encoded again, as is an H.264 camera's decoded
// picture. It is stored before the event's first document, so that a
// reader of the event (a notifier) finds it.

// thumbQuality is the JPEG quality of a thumbnail encoded here.
const thumbQuality = 80

// thumbMaker makes a camera's thumbnails; it belongs to the camera's
// goroutine, which closes it.
type thumbMaker struct {
	dec   *turbojpeg.Decoder
	enc   *turbojpeg.Encoder
	big   gocv.Mat // a JPEG frame decoded at a reduced scale
	small gocv.Mat // the picture at the thumbnail's size
	open  bool
}

func (tm *thumbMaker) init() error {
	if tm.open {
		return nil
	}
	var err error
	if tm.dec, err = turbojpeg.NewDecoder(false); err != nil {
		return err
	}
	if tm.enc, err = turbojpeg.NewEncoder(); err != nil {
		tm.dec.Close()
		return err
	}
	tm.big, tm.small = gocv.NewMat(), gocv.NewMat()
	tm.open = true
	return nil
}

// close frees what the maker holds; it may be called more than once.
func (tm *thumbMaker) close() {
	if !tm.open {
		return
	}
	tm.dec.Close()
	tm.enc.Close()
	tm.big.Close()
	tm.small.Close()
	tm.open = false
}

// thumbSize is the size of a thumbnail of a w x h picture: as it is if
// it is at most wire.MaxThumbWidth wide, else that wide.
func thumbSize(w, h int) image.Point {
	if w <= wire.MaxThumbWidth {
		return image.Pt(w, h)
	}
	return image.Pt(wire.MaxThumbWidth, max(1, (h*wire.MaxThumbWidth+w/2)/w))
}

// make returns the thumbnail of a picture: jpeg, a JPEG camera's frame,
// if not nil, else pic, a decoded BGR picture. The result is the caller's.
func (tm *thumbMaker) make(jpeg []byte, pic gocv.Mat) ([]byte, image.Point, error) {
	if err := tm.init(); err != nil {
		return nil, image.Point{}, err
	}
	src := pic
	if jpeg != nil {
		size, err := tm.dec.Size(jpeg)
		if err != nil {
			return nil, image.Point{}, err
		}
		if size.X <= wire.MaxThumbWidth {
			return append([]byte(nil), jpeg...), size, nil
		}
		// decoded at the smallest fast scale still as wide, then shrunk
		if _, err := tm.dec.Decode(jpeg, thumbSize(size.X, size.Y), &tm.big); err != nil && tm.big.Empty() {
			return nil, image.Point{}, err
		}
		src = tm.big
	}
	if src.Empty() {
		return nil, image.Point{}, errors.New("no picture")
	}
	out := thumbSize(src.Cols(), src.Rows())
	if out.X != src.Cols() {
		gocv.Resize(src, &tm.small, out, 0, 0, gocv.InterpolationArea)
		src = tm.small
	}
	b, err := tm.enc.Encode(src, thumbQuality, nil)
	if err != nil {
		return nil, image.Point{}, err
	}
	return b, out, nil
}

// thumb stores the thumbnail of the event that has just started, made of
// the picture being analysed (or of the JPEG frame c.thumbSrc).
func (c *camera) thumb(ctx context.Context) {
	if c.ev == nil {
		return
	}
	b, size, err := c.th.make(c.thumbSrc, c.thumbPic)
	if err != nil {
		c.d.bad.Add(1)
		c.d.log.Warn("event thumbnail", "camera", c.id, "event", c.ev.ID, "error", err)
		return
	}
	eid := c.ev.ID
	msg := &nats.Msg{Subject: wire.ThumbSubject(eid, c.id), Data: b, Header: nats.Header{}}
	msg.Header.Set(wire.HeaderMsgID, wire.ThumbMsgID(eid))
	msg.Header.Set(wire.HeaderContentType, wire.ContentTypeJPEG)
	msg.Header.Set(wire.HeaderTime, wire.FormatTime(c.thumbTime))
	msg.Header.Set(wire.HeaderWidth, strconv.Itoa(size.X))
	msg.Header.Set(wire.HeaderHeight, strconv.Itoa(size.Y))
	if err := c.d.storeThumb(ctx, msg); err != nil && ctx.Err() == nil {
		c.d.log.Warn("event thumbnail", "camera", c.id, "event", eid, "error", err)
	}
}

// storeThumb stores a thumbnail in CLIPS, retrying while the hub starts.
func (d *Detector) storeThumb(ctx context.Context, msg *nats.Msg) error {
	return d.storeClip(ctx, msg, &d.thumbs, "the thumbnail")
}
