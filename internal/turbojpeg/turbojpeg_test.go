package turbojpeg

import (
	"fmt"
	"image"
	"image/color"
	"math"
	"testing"

	"gocv.io/x/gocv"
)

// picture draws a w x h BGR test picture with edges, gradients and texture,
// so that encoders and decoders have detail to get wrong.
func picture(t testing.TB, w, h int) gocv.Mat {
	t.Helper()
	m := gocv.NewMatWithSize(h, w, gocv.MatTypeCV8UC3)
	pix, err := m.DataPtrUint8()
	if err != nil {
		t.Fatal(err)
	}
	for y := range h {
		for x := range w {
			i := (y*w + x) * 3
			pix[i] = uint8(x * 255 / w)
			pix[i+1] = uint8(y * 255 / h)
			pix[i+2] = uint8((x*x + y*y) / 64)
		}
	}
	gocv.Circle(&m, image.Pt(w/3, h/2), h/4, color.RGBA{255, 0, 0, 0}, -1)
	gocv.Rectangle(&m, image.Rect(w/2, h/4, w*3/4, h*3/4), color.RGBA{0, 0, 255, 0}, -1)
	gocv.PutText(&m, "camhub", image.Pt(w/10, h/5), gocv.FontHersheySimplex, float64(h)/200, color.RGBA{255, 255, 255, 0}, 2)
	return m
}

// psnr is the peak signal-to-noise ratio of b against a, in dB.
func psnr(t testing.TB, a, b gocv.Mat) float64 {
	t.Helper()
	if a.Rows() != b.Rows() || a.Cols() != b.Cols() {
		t.Fatalf("sizes differ: %dx%d and %dx%d", a.Cols(), a.Rows(), b.Cols(), b.Rows())
	}
	pa, err := a.DataPtrUint8()
	if err != nil {
		t.Fatal(err)
	}
	pb, err := b.DataPtrUint8()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for i := range pa {
		d := float64(pa[i]) - float64(pb[i])
		sum += d * d
	}
	mse := sum / float64(len(pa))
	if mse == 0 {
		return math.Inf(1)
	}
	return 10 * math.Log10(255*255/mse)
}

func opencvEncode(t testing.TB, m gocv.Mat, q int) []byte {
	t.Helper()
	buf, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, m, []int{gocv.IMWriteJpegQuality, q})
	if err != nil {
		t.Fatal(err)
	}
	defer buf.Close()
	return append([]byte(nil), buf.GetBytes()...)
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	src := picture(t, 640, 480)
	defer src.Close()
	enc, err := NewEncoder()
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	jpeg, err := enc.Encode(src, 80, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(jpeg) < 100 || jpeg[0] != 0xFF || jpeg[1] != 0xD8 || jpeg[len(jpeg)-2] != 0xFF || jpeg[len(jpeg)-1] != 0xD9 {
		t.Fatalf("not a JPEG: %d bytes", len(jpeg))
	}

	// OpenCV reads what the encoder wrote, and it looks like the source
	cv, err := gocv.IMDecode(jpeg, gocv.IMReadColor)
	if err != nil {
		t.Fatal(err)
	}
	defer cv.Close()
	// as good as OpenCV's own encode at the same quality, and about the
	// same size
	ref := opencvEncode(t, src, 80)
	cvOwn, err := gocv.IMDecode(ref, gocv.IMReadColor)
	if err != nil {
		t.Fatal(err)
	}
	defer cvOwn.Close()
	if p, want := psnr(t, src, cv), psnr(t, src, cvOwn); p < want-0.5 {
		t.Errorf("TurboJPEG's encode: PSNR %.1f dB, OpenCV's %.1f dB", p, want)
	}
	if r := float64(len(jpeg)) / float64(len(ref)); r < 0.8 || r > 1.25 {
		t.Errorf("size %d bytes, OpenCV's %d: ratio %.2f", len(jpeg), len(ref), r)
	}

	dec, err := NewDecoder(false)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	got := gocv.NewMat()
	defer got.Close()
	s, err := dec.Decode(ref, image.Point{}, &got)
	if err != nil {
		t.Fatal(err)
	}
	if s != (Scale{1, 1}) || got.Cols() != 640 || got.Rows() != 480 || got.Type() != gocv.MatTypeCV8UC3 {
		t.Fatalf("decoded at %v to %dx%d type %v", s, got.Cols(), got.Rows(), got.Type())
	}
	// the same picture OpenCV decodes from the same bytes, to rounding
	cvRef, err := gocv.IMDecode(ref, gocv.IMReadColor)
	if err != nil {
		t.Fatal(err)
	}
	defer cvRef.Close()
	if p := psnr(t, cvRef, got); p < 45 {
		t.Errorf("TurboJPEG and OpenCV decode the same JPEG differently: PSNR %.1f dB", p)
	}

	// the encoder's buffer is reused: a second encode gives the same bytes
	again, err := enc.Encode(src, 80, make([]byte, 0, len(jpeg)))
	if err != nil {
		t.Fatal(err)
	}
	if string(again) != string(jpeg) {
		t.Error("encoding the same picture twice gave different bytes")
	}
}

func TestDecodeScaled(t *testing.T) {
	src := picture(t, 1280, 720)
	defer src.Close()
	jpeg := opencvEncode(t, src, 80)
	dec, err := NewDecoder(true)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	dst := gocv.NewMat()
	defer dst.Close()
	for _, c := range []struct {
		fit   image.Point
		scale Scale
		size  image.Point
	}{
		{image.Pt(1280, 720), Scale{1, 1}, image.Pt(1280, 720)},
		{image.Pt(2000, 2000), Scale{1, 1}, image.Pt(1280, 720)},
		{image.Pt(640, 360), Scale{1, 2}, image.Pt(640, 360)},
		{image.Pt(641, 100), Scale{1, 1}, image.Pt(1280, 720)},
		{image.Pt(320, 180), Scale{1, 4}, image.Pt(320, 180)},
		{image.Pt(100, 100), Scale{1, 4}, image.Pt(320, 180)},
		{image.Pt(20, 10), Scale{1, 8}, image.Pt(160, 90)},
	} {
		s, err := dec.Decode(jpeg, c.fit, &dst)
		if err != nil {
			t.Fatal(err)
		}
		if s != c.scale || dst.Cols() != c.size.X || dst.Rows() != c.size.Y {
			t.Errorf("fit %v: decoded at %v to %dx%d, want %v to %v", c.fit, s, dst.Cols(), dst.Rows(), c.scale, c.size)
			continue
		}
		// it is the picture, shrunk: as close to the shrunk source as
		// OpenCV's full decode shrunk afterwards, to within 1 dB
		want, full := gocv.NewMat(), gocv.NewMat()
		gocv.Resize(src, &want, c.size, 0, 0, gocv.InterpolationArea)
		cv, err := gocv.IMDecode(jpeg, gocv.IMReadColor)
		if err != nil {
			t.Fatal(err)
		}
		gocv.Resize(cv, &full, c.size, 0, 0, gocv.InterpolationArea)
		if p, ref := psnr(t, want, dst), psnr(t, want, full); p < ref-1 {
			t.Errorf("fit %v: PSNR %.1f dB against the shrunk source, OpenCV decode+shrink %.1f dB", c.fit, p, ref)
		}
		want.Close()
		full.Close()
		cv.Close()
	}
}

func TestBadInput(t *testing.T) {
	src := picture(t, 320, 240)
	defer src.Close()
	jpeg := opencvEncode(t, src, 80)
	dec, err := NewDecoder(false)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	dst := gocv.NewMat()
	defer dst.Close()
	for name, b := range map[string][]byte{
		"empty":     nil,
		"not JPEG":  []byte("hello, this is not a picture at all"),
		"header":    jpeg[:20],
		"truncated": jpeg[:len(jpeg)/2],
	} {
		if _, err := dec.Decode(b, image.Point{}, &dst); err == nil {
			t.Errorf("%s: decoded without an error", name)
		}
	}

	enc, err := NewEncoder()
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	f := gocv.NewMatWithSize(10, 10, gocv.MatTypeCV32F)
	defer f.Close()
	if _, err := enc.Encode(f, 80, nil); err == nil {
		t.Error("encoded a float Mat")
	}
	if _, err := enc.Encode(src, 0, nil); err == nil {
		t.Error("encoded at quality 0")
	}
	empty := gocv.NewMat()
	defer empty.Close()
	if _, err := enc.Encode(empty, 80, nil); err == nil {
		t.Error("encoded an empty Mat")
	}
	enc.Close()
	if _, err := enc.Encode(src, 80, nil); err != ErrClosed {
		t.Errorf("after Close: %v, want ErrClosed", err)
	}
}

func TestGreyAndBGRA(t *testing.T) {
	src := picture(t, 160, 120)
	defer src.Close()
	enc, err := NewEncoder()
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	for _, code := range []gocv.ColorConversionCode{gocv.ColorBGRToGray, gocv.ColorBGRToBGRA} {
		m := gocv.NewMat()
		gocv.CvtColor(src, &m, code)
		jpeg, err := enc.Encode(m, 90, nil)
		m.Close()
		if err != nil {
			t.Fatalf("%v: %v", code, err)
		}
		back, err := gocv.IMDecode(jpeg, gocv.IMReadUnchanged)
		if err != nil || back.Empty() || back.Cols() != 160 || back.Rows() != 120 {
			t.Fatalf("%v: OpenCV cannot read it back: %v", code, err)
		}
		back.Close()
	}
}

func TestScales(t *testing.T) {
	ss := Scales()
	if len(ss) < 4 || ss[0] != (Scale{1, 1}) && ss[0] != (Scale{8, 8}) {
		t.Fatalf("scales %v", ss)
	}
	for i := 1; i < len(ss); i++ {
		if float64(ss[i].Num)/float64(ss[i].Denom) >= float64(ss[i-1].Num)/float64(ss[i-1].Denom) {
			t.Fatalf("scales not largest first: %v", ss)
		}
	}
	if got := (Scale{3, 8}).Apply(641, 481); got != image.Pt(241, 181) {
		t.Errorf("3/8 of 641x481 = %v", got)
	}
}

// Decoding at the tile's size against OpenCV's decode at full size and its
// reduced decode, and encoding against OpenCV's encode, on one 640x480 and
// one 1280x720 picture at quality 80:
//
//	go test -run '^$' -bench . ./internal/turbojpeg/
func BenchmarkDecode(b *testing.B) {
	for _, sz := range []image.Point{{640, 480}, {1280, 720}} {
		src := picture(b, sz.X, sz.Y)
		jpeg := opencvEncode(b, src, 80)
		src.Close()
		for _, k := range []int{1, 2, 4} {
			name := fmt.Sprintf("%dx%d/1_%d", sz.X, sz.Y, k)
			b.Run(name+"/turbojpeg", func(b *testing.B) {
				dec, err := NewDecoder(false)
				if err != nil {
					b.Fatal(err)
				}
				defer dec.Close()
				dst := gocv.NewMat()
				defer dst.Close()
				b.SetBytes(int64(len(jpeg)))
				for b.Loop() {
					if err := dec.DecodeAt(jpeg, Scale{1, k}, &dst); err != nil {
						b.Fatal(err)
					}
				}
			})
			flag := map[int]gocv.IMReadFlag{1: gocv.IMReadColor, 2: gocv.IMReadReducedColor2, 4: gocv.IMReadReducedColor4}[k]
			b.Run(name+"/opencv", func(b *testing.B) {
				b.SetBytes(int64(len(jpeg)))
				for b.Loop() {
					m, err := gocv.IMDecode(jpeg, flag)
					if err != nil {
						b.Fatal(err)
					}
					m.Close()
				}
			})
		}
	}
}

func BenchmarkEncode(b *testing.B) {
	for _, sz := range []image.Point{{640, 480}, {1280, 720}} {
		src := picture(b, sz.X, sz.Y)
		name := fmt.Sprintf("%dx%d", sz.X, sz.Y)
		b.Run(name+"/turbojpeg", func(b *testing.B) {
			enc, err := NewEncoder()
			if err != nil {
				b.Fatal(err)
			}
			defer enc.Close()
			var buf []byte
			for b.Loop() {
				if buf, err = enc.Encode(src, 80, buf); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/opencv", func(b *testing.B) {
			params := []int{gocv.IMWriteJpegQuality, 80}
			for b.Loop() {
				buf, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, src, params)
				if err != nil {
					b.Fatal(err)
				}
				buf.Close()
			}
		})
		src.Close()
	}
}
