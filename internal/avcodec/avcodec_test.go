package avcodec

import (
	"bytes"
	"errors"
	"image"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"camhub/internal/h264"
	"camhub/internal/turbojpeg"

	"gocv.io/x/gocv"
)

func newEncoder(t testing.TB, cfg EncoderConfig) *Encoder {
	t.Helper()
	e, err := NewEncoder(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func newDecoder(t testing.TB) *Decoder {
	t.Helper()
	d, err := NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// encodePattern encodes n pictures of the moving pattern from picture
// first on, one packet per picture.
func encodePattern(t testing.TB, e *Encoder, first, n int) []Packet {
	t.Helper()
	cfg := e.Config()
	img := gocv.NewMat()
	defer img.Close()
	var out []Packet
	for i := first; i < first+n; i++ {
		draw(&img, cfg.Width, cfg.Height, i)
		pkts, err := e.Encode(img, frameTime(i, cfg.FPS))
		if err != nil {
			t.Fatal(err)
		}
		if len(pkts) != 1 {
			t.Fatalf("picture %d: %d packets, want 1 (no delay)", i, len(pkts))
		}
		out = append(out, pkts...)
	}
	return out
}

// TestRoundTrip encodes 60 pictures of a moving pattern at 640x480 with
// libx264 and decodes them: each packet is one access unit with the
// picture's time, keyframes come every KeyInterval with SPS and PPS in
// front, and every decoded picture is the one encoded.
func TestRoundTrip(t *testing.T) {
	noLeaks(t)
	for _, preset := range []string{PresetUltrafast, PresetSuperfast, PresetVeryfast} {
		t.Run(preset, func(t *testing.T) {
			const fps = 30
			e := newEncoder(t, EncoderConfig{Width: 640, Height: 480, FPS: fps, Preset: preset, Codec: CodecX264})
			defer e.Close()
			if e.Name() != CodecX264 || e.Config().KeyInterval != time.Second || e.Config().CRF != DefaultCRF(preset) {
				t.Fatalf("name %q, config %+v", e.Name(), e.Config())
			}
			pkts := encodePattern(t, e, 0, 60)
			d := newDecoder(t)
			defer d.Close()
			want, got := gocv.NewMat(), gocv.NewMat()
			defer want.Close()
			defer got.Close()
			var bytes int
			for i, p := range pkts {
				bytes += len(p.Data)
				if p.PTS != frameTime(i, fps) || p.DTS != p.PTS {
					t.Errorf("packet %d: PTS %v DTS %v, want %v", i, p.PTS, p.DTS, frameTime(i, fps))
				}
				if key := i%fps == 0; p.Key != key || h264.IsKeyframe(p.Data) != key {
					t.Errorf("packet %d: Key %v, IsKeyframe %v, want %v (one a second)", i, p.Key, h264.IsKeyframe(p.Data), key)
				}
				nalus, err := h264.Split(p.Data)
				if err != nil {
					t.Fatalf("packet %d: %v", i, err)
				}
				slices := 0
				for _, n := range nalus {
					if typ := h264.Type(n); typ == h264.TypeIDR || typ == h264.TypeNonIDR {
						slices++
					}
				}
				if slices != 1 {
					t.Errorf("packet %d: %d slices, want 1 (one thread)", i, slices)
				}
				if p.Key {
					sps, pps, _ := h264.Params(p.Data)
					if sps == nil || pps == nil {
						t.Fatalf("keyframe %d without SPS/PPS", i)
					}
					s, err := h264.ParseSPS(sps)
					if err != nil {
						t.Fatal(err)
					}
					if s.Width != 640 || s.Height != 480 || s.Profile != 66 || s.Codec()[:7] != "avc1.42" {
						t.Errorf("SPS %+v %s: want 640x480 baseline", s, s.Codec())
					}
				}

				ok, err := d.Decode(p.Data, &got)
				if err != nil || !ok {
					t.Fatalf("decoding packet %d: %v %v", i, ok, err)
				}
				if d.Size() != image.Pt(640, 480) {
					t.Fatalf("size %v", d.Size())
				}
				draw(&want, 640, 480, i)
				mad, psnr := compare(t, want, got)
				if mad > 4 || psnr < 30 {
					t.Errorf("picture %d: mean abs diff %.2f, PSNR %.1f dB", i, mad, psnr)
				}
			}
			t.Logf("%s: %d bytes a picture", preset, bytes/len(pkts))

			// flushing gives nothing more (zero latency) and ends the stream
			if rest, err := e.Flush(); err != nil || len(rest) != 0 {
				t.Errorf("Flush: %d packets, %v", len(rest), err)
			}
			if _, err := e.Encode(want, time.Hour); err == nil {
				t.Error("Encode after Flush")
			}
		})
	}
}

func TestKeyframes(t *testing.T) {
	noLeaks(t)
	// 20 fps, a keyframe every 0.5 s: every 10th picture
	e := newEncoder(t, EncoderConfig{Width: 320, Height: 240, FPS: 20, KeyInterval: 500 * time.Millisecond, Codec: CodecX264})
	defer e.Close()
	pkts := encodePattern(t, e, 0, 25)
	e.ForceKeyframe()
	pkts = append(pkts, encodePattern(t, e, 25, 15)...)
	for i, p := range pkts {
		// forced at 25; x264 counts the interval from there
		want := i == 0 || i == 10 || i == 20 || i == 25 || i == 35
		if p.Key != want {
			t.Errorf("picture %d: key %v, want %v", i, p.Key, want)
		}
		if p.Key {
			if sps, pps, _ := h264.Params(p.Data); sps == nil || pps == nil {
				t.Errorf("keyframe %d without parameter sets", i)
			}
		}
	}
}

// TestBitrate: in bitrate mode the stream stays near the target.
func TestBitrate(t *testing.T) {
	noLeaks(t)
	const fps, target = 30, 400_000
	e := newEncoder(t, EncoderConfig{Width: 640, Height: 480, FPS: fps, Bitrate: target, Codec: CodecX264})
	defer e.Close()
	pkts := encodePattern(t, e, 0, 90)
	var n int
	for _, p := range pkts {
		n += len(p.Data)
	}
	got := float64(n*8) / (float64(len(pkts)) / fps)
	if got > 1.3*target || got < 0.3*target {
		t.Errorf("%.0f bit/s, target %d", got, target)
	}
	// and constant quality makes more of this pattern
	q := newEncoder(t, EncoderConfig{Width: 640, Height: 480, FPS: fps, CRF: 18, Codec: CodecX264})
	defer q.Close()
	var m int
	for _, p := range encodePattern(t, q, 0, 90) {
		m += len(p.Data)
	}
	if m <= n {
		t.Errorf("CRF 18 made %d bytes, %d bit/s %d bytes: the bitrate had no effect", m, target, n)
	}
}

// TestDecodeRealClip decodes x264's encoding of real footage, made by
// ffmpeg, and compares every picture with FFmpeg's own decoding of it.
func TestDecodeRealClip(t *testing.T) {
	noLeaks(t)
	needVtest(t)
	dir := t.TempDir()
	clip := filepath.Join(dir, "vtest.h264")
	const n = 40
	run(t, "ffmpeg", "-i", vtest, "-frames:v", strconv.Itoa(n), "-vf", "scale=640:480",
		"-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-profile:v", "baseline", "-g", "10", "-bf", "0",
		"-crf", "26", "-f", "h264", clip)
	ref := run(t, "ffmpeg", "-i", clip, "-f", "rawvideo", "-pix_fmt", "bgr24", "-")
	stream, err := os.ReadFile(clip)
	if err != nil {
		t.Fatal(err)
	}
	aus, err := h264.AccessUnits(stream)
	if err != nil {
		t.Fatal(err)
	}
	if len(aus) != n || len(ref) != n*640*480*3 {
		t.Fatalf("%d access units, %d bytes of reference pictures; want %d pictures", len(aus), len(ref), n)
	}
	d := newDecoder(t)
	defer d.Close()
	got := gocv.NewMat()
	defer got.Close()
	for i, au := range aus {
		ok, err := d.Decode(au, &got)
		if err != nil || !ok {
			t.Fatalf("access unit %d: %v %v", i, ok, err)
		}
		want, err := gocv.NewMatFromBytes(480, 640, gocv.MatTypeCV8UC3, ref[i*640*480*3:(i+1)*640*480*3])
		if err != nil {
			t.Fatal(err)
		}
		// the same decoder; only the conversion to BGR may round apart
		mad, psnr := compare(t, want, got)
		want.Close()
		if mad > 1.5 || psnr < 38 {
			t.Errorf("picture %d: mean abs diff %.2f, PSNR %.1f dB against FFmpeg's decoding", i, mad, psnr)
		}
	}
}

// TestResolutionChange: one decoder, a stream that goes from 640x480 to
// 320x240 and to 1280x720 at keyframes, as a camera reconfigured does.
func TestResolutionChange(t *testing.T) {
	noLeaks(t)
	d := newDecoder(t)
	defer d.Close()
	got, want := gocv.NewMat(), gocv.NewMat()
	defer got.Close()
	defer want.Close()
	frame := 0
	for _, sz := range []image.Point{{640, 480}, {320, 240}, {1280, 720}, {640, 480}} {
		e := newEncoder(t, EncoderConfig{Width: sz.X, Height: sz.Y, FPS: 15, Codec: CodecX264})
		pkts := encodePattern(t, e, frame, 5)
		e.Close()
		for i, p := range pkts {
			ok, err := d.Decode(p.Data, &got)
			if err != nil || !ok {
				t.Fatalf("%v picture %d: %v %v", sz, i, ok, err)
			}
			if d.Size() != sz || got.Cols() != sz.X || got.Rows() != sz.Y {
				t.Fatalf("%v picture %d: size %v, Mat %dx%d", sz, i, d.Size(), got.Cols(), got.Rows())
			}
			draw(&want, sz.X, sz.Y, frame+i)
			if mad, psnr := compare(t, want, got); mad > 4 || psnr < 30 {
				t.Errorf("%v picture %d: mean abs diff %.2f, PSNR %.1f dB", sz, i, mad, psnr)
			}
		}
		frame += 5
	}
}

// TestBadInput: a delta before any keyframe, truncated access units and
// garbage never crash the decoder, and it decodes the next good keyframe.
func TestBadInput(t *testing.T) {
	noLeaks(t)
	e := newEncoder(t, EncoderConfig{Width: 320, Height: 240, FPS: 15, KeyInterval: 2 * time.Second, Codec: CodecX264})
	pkts := encodePattern(t, e, 0, 31) // keyframes at 0 and 30
	e.Close()
	d := newDecoder(t)
	defer d.Close()
	dst := gocv.NewMat()
	defer dst.Close()

	// a delta frame first
	if ok, err := d.Decode(pkts[3].Data, &dst); ok || !errors.Is(err, ErrNeedKeyframe) {
		t.Fatalf("delta before a keyframe: %v %v, want ErrNeedKeyframe", ok, err)
	}
	// not Annex B at all: refused before libavcodec sees it
	for name, b := range map[string][]byte{
		"nil":     nil,
		"text":    []byte("this is not H.264"),
		"JPEG":    {0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, 'J', 'F', 'I', 'F', 0, 1},
		"zeros":   make([]byte, 64),
		"a start": {0, 0, 0, 1},
	} {
		if ok, err := d.Decode(b, &dst); ok || !errors.Is(err, ErrInvalidData) {
			t.Errorf("%s: %v %v, want ErrInvalidData", name, ok, err)
		}
	}
	// a keyframe cut in the middle of its slice: libavcodec conceals the
	// rest or rejects it; either way, no picture passes for a good one
	key := pkts[0].Data
	ok, err := d.Decode(key[:len(key)/2], &dst)
	t.Logf("keyframe cut in half: %v %v", ok, err)
	if ok && err == nil {
		t.Error("a keyframe cut in half decoded without an error")
	}
	// the parameter sets alone: no picture, no error
	sps, pps, _ := h264.Params(key)
	if ok, err := d.Decode(h264.Join([][]byte{sps, pps}), &dst); ok || err != nil {
		t.Errorf("parameter sets alone: %v %v", ok, err)
	}
	// garbage behind a start code, and a keyframe whose SPS claims
	// 8192x8192, more than MaxPixels
	huge := hugeSPS(t)
	nalus, _ := h264.Split(key)
	for name, b := range map[string][]byte{
		"random slice": append([]byte{0, 0, 0, 1, 0x65}, randomBytes(1, 2000)...),
		"random delta": append([]byte{0, 0, 0, 1, 0x41}, randomBytes(2, 2000)...),
		"random NALUs": append([]byte{0, 0, 1}, randomBytes(3, 5000)...),
		"huge SPS":     h264.Join([][]byte{huge, pps, nalus[len(nalus)-1]}),
	} {
		ok, err := d.Decode(b, &dst)
		t.Logf("%s: %v %v", name, ok, err)
		if ok && err == nil {
			t.Errorf("%s: a picture without an error", name)
		}
	}
	// a fresh start: the next keyframe decodes cleanly, and the deltas
	// after it, one of them truncated
	for i, p := range pkts {
		b := p.Data
		if i == 30 {
			b = b[:len(b)*2/3]
		}
		ok, err := d.Decode(b, &dst)
		switch {
		case i == 30:
			t.Logf("keyframe cut to 2/3: %v %v", ok, err)
		case err != nil || !ok:
			t.Fatalf("packet %d after the garbage: %v %v", i, ok, err)
		}
	}

	// every byte of every packet flipped at random, many times over:
	// errors, never a crash
	r := rand.New(rand.NewPCG(4, 4))
	errs := 0
	for range 300 {
		p := pkts[r.IntN(len(pkts))].Data
		b := bytes.Clone(p)
		for range 1 + r.IntN(8) {
			b[r.IntN(len(b))] ^= byte(1 + r.IntN(255))
		}
		if _, err := d.Decode(b, &dst); err != nil {
			errs++
		}
	}
	t.Logf("300 damaged access units: %d errors", errs)
	if errs == 0 {
		t.Error("no damaged access unit gave an error")
	}

	// parameter sets sent alone are kept for the keyframe after them
	d3 := newDecoder(t)
	defer d3.Close()
	if ok, err := d3.Decode(h264.Join([][]byte{sps, pps}), &dst); ok || err != nil {
		t.Errorf("parameter sets alone, first: %v %v", ok, err)
	}
	if ok, err := d3.Decode(h264.Join(nalus[len(nalus)-1:]), &dst); !ok || err != nil {
		t.Errorf("a keyframe after its parameter sets: %v %v", ok, err)
	}

	// a decoder that starts on a truncated keyframe
	d2 := newDecoder(t)
	defer d2.Close()
	if ok, err := d2.Decode(key[:40], &dst); ok {
		t.Errorf("40 bytes of keyframe: a picture (%v)", err)
	}
	if _, err := d.Decode(pkts[0].Data, &dst); err != nil {
		t.Errorf("a good keyframe after all that: %v", err)
	}
}

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.UintN(256))
	}
	return b
}

func TestEncoderErrors(t *testing.T) {
	noLeaks(t)
	for _, cfg := range []EncoderConfig{
		{Width: 0, Height: 480, FPS: 10},
		{Width: 641, Height: 480, FPS: 10},
		{Width: 640, Height: 480},
		{Width: 640, Height: 480, FPS: -1},
		{Width: 640, Height: 480, FPS: 10, Preset: "placebo"},
		{Width: 640, Height: 480, FPS: 10, Codec: "h264_nvenc"},
		{Width: 640, Height: 480, FPS: 10, CRF: 52},
		{Width: 640, Height: 480, FPS: 10, Bitrate: -5},
		{Width: 20000, Height: 480, FPS: 10},
	} {
		if e, err := NewEncoder(cfg); err == nil {
			e.Close()
			t.Errorf("%+v: opened", cfg)
		}
	}

	e := newEncoder(t, EncoderConfig{Width: 320, Height: 240, FPS: 10, Codec: CodecX264})
	defer e.Close()
	// Live counts what is open: a context, a frame, a packet
	if Live() != 3 {
		t.Errorf("an open encoder: %s, want 3 objects", LiveString())
	}
	for name, m := range map[string]gocv.Mat{
		"wrong size": gocv.NewMatWithSize(480, 640, gocv.MatTypeCV8UC3),
		"grey":       gocv.NewMatWithSize(240, 320, gocv.MatTypeCV8UC1),
		"empty":      gocv.NewMat(),
	} {
		if _, err := e.Encode(m, 0); err == nil {
			t.Errorf("%s: encoded", name)
		}
		m.Close()
	}
	img := gocv.NewMat()
	defer img.Close()
	draw(&img, 320, 240, 0)
	e.Close()
	e.Close()
	if _, err := e.Encode(img, 0); err != ErrClosed {
		t.Errorf("after Close: %v, want ErrClosed", err)
	}
	if _, err := e.Flush(); err != ErrClosed {
		t.Errorf("Flush after Close: %v, want ErrClosed", err)
	}
	d := newDecoder(t)
	if Live() != 4 { // a context, two frames, a packet; the scaler comes with a picture
		t.Errorf("an open decoder: %s, want 4 objects", LiveString())
	}
	d.Close()
	d.Close()
	if _, err := d.Decode([]byte{0, 0, 1, 0x65}, &img); err != ErrClosed {
		t.Errorf("Decode after Close: %v, want ErrClosed", err)
	}
}

// TestAuto: auto opens something on any machine, and says what; the
// hardware encoder asked for by name either opens or says why not.
func TestAuto(t *testing.T) {
	noLeaks(t)
	e := newEncoder(t, EncoderConfig{Width: 320, Height: 240, FPS: 10})
	t.Logf("auto chose %s", e.Name())
	if e.Name() != CodecX264 && e.Name() != CodecV4L2M2M {
		t.Errorf("auto chose %q", e.Name())
	}
	img := gocv.NewMat()
	defer img.Close()
	draw(&img, 320, 240, 0)
	if _, err := e.Encode(img, 0); err != nil {
		t.Error(err)
	}
	e.Close()

	hw, err := NewEncoder(EncoderConfig{Width: 320, Height: 240, FPS: 10, Codec: CodecV4L2M2M})
	if err != nil {
		t.Logf("no hardware encoder here: %v", err)
		if !errors.Is(err, ErrNoEncoder) {
			t.Errorf("%v does not wrap ErrNoEncoder", err)
		}
		return
	}
	defer hw.Close()
	var pkts []Packet
	for i := range 30 {
		draw(&img, 320, 240, i)
		p, err := hw.Encode(img, frameTime(i, 10))
		if err != nil {
			t.Fatal(err)
		}
		pkts = append(pkts, p...)
	}
	rest, err := hw.Flush()
	if err != nil {
		t.Fatal(err)
	}
	pkts = append(pkts, rest...)
	if len(pkts) == 0 || !pkts[0].Key {
		t.Fatalf("hardware encoder: %d packets, the first a keyframe: %v", len(pkts), len(pkts) > 0 && pkts[0].Key)
	}
}

// TestConcurrent: encoders and decoders in several goroutines at once,
// each its own (run with -race).
func TestConcurrent(t *testing.T) {
	noLeaks(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := range 4 {
		wg.Go(func() {
			e, err := NewEncoder(EncoderConfig{Width: 160 + 32*g, Height: 120, FPS: 15, Codec: CodecX264})
			if err != nil {
				errs <- err
				return
			}
			defer e.Close()
			d, err := NewDecoder()
			if err != nil {
				errs <- err
				return
			}
			defer d.Close()
			img, out := gocv.NewMat(), gocv.NewMat()
			defer img.Close()
			defer out.Close()
			for i := range 20 {
				draw(&img, 160+32*g, 120, i)
				pkts, err := e.Encode(img, frameTime(i, 15))
				if err != nil {
					errs <- err
					return
				}
				for _, p := range pkts {
					if ok, err := d.Decode(p.Data, &out); err != nil || !ok {
						errs <- errors.Join(err, errors.New("no picture"))
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// hugeSPS returns a baseline SPS (id 0) of 8192x8192, a picture of 64 Mi
// pixels.
func hugeSPS(t testing.TB) []byte {
	t.Helper()
	var bits []bool
	u := func(v uint, n int) {
		for i := n - 1; i >= 0; i-- {
			bits = append(bits, v>>i&1 == 1)
		}
	}
	ue := func(v uint) { // exp-Golomb
		n := 0
		for x := v + 1; x > 1; x >>= 1 {
			n++
		}
		u(0, n)
		u(v+1, n+1)
	}
	ue(0)   // seq_parameter_set_id
	ue(0)   // log2_max_frame_num_minus4
	ue(2)   // pic_order_cnt_type
	ue(1)   // max_num_ref_frames
	u(0, 1) // gaps_in_frame_num_value_allowed_flag
	ue(511) // pic_width_in_mbs_minus1
	ue(511) // pic_height_in_map_units_minus1
	u(1, 1) // frame_mbs_only_flag
	u(1, 1) // direct_8x8_inference_flag
	u(0, 1) // frame_cropping_flag
	u(0, 1) // vui_parameters_present_flag
	u(1, 1) // rbsp_stop_one_bit
	for len(bits)%8 != 0 {
		bits = append(bits, false)
	}
	sps := []byte{0x67, 66, 0xC0, 51}
	for i := 0; i < len(bits); i += 8 {
		var b byte
		for j := range 8 {
			if bits[i+j] {
				b |= 0x80 >> j
			}
		}
		sps = append(sps, b)
	}
	s, err := h264.ParseSPS(sps)
	if err != nil || s.Width != 8192 || s.Height != 8192 {
		t.Fatalf("the huge SPS parses as %+v, %v", s, err)
	}
	return sps
}

// TestQualityAgainstJPEG: on real footage (vtest, 640x480, 10 fps) the
// default encoder matches TurboJPEG at quality 80 in SSIM (ffmpeg's ssim
// filter against the source frames) with a sixth of the bytes or less.
// Measured: JPEG 0.9761 at 52.8 kB a frame; superfast (CRF 26.7, the
// default) 0.9763 at 8.3 kB, 6.4x fewer; veryfast (CRF 25) 0.9762 at
// 7.5 kB, 7.0x fewer; ultrafast (CRF 26) 0.9768 at 10.3 kB, 5.1x fewer.
// (The allowance below is for another CPU's conversion code paths.)
func TestQualityAgainstJPEG(t *testing.T) {
	noLeaks(t)
	const n = 30
	frames := vtestFrames(t, 640, 480, n)
	defer closeAll(frames)
	dir := t.TempDir()
	var ref, h, jpegs []byte
	e := newEncoder(t, EncoderConfig{Width: 640, Height: 480, FPS: 10, Codec: CodecX264})
	defer e.Close()
	jenc, err := turbojpeg.NewEncoder()
	if err != nil {
		t.Fatal(err)
	}
	defer jenc.Close()
	for i, f := range frames {
		pix, err := f.DataPtrUint8()
		if err != nil {
			t.Fatal(err)
		}
		ref = append(ref, pix...)
		pkts, err := e.Encode(f, frameTime(i, 10))
		if err != nil {
			t.Fatal(err)
		}
		h = append(h, pkts[0].Data...)
		j, err := jenc.Encode(f, 80, nil)
		if err != nil {
			t.Fatal(err)
		}
		jpegs = append(jpegs, j...)
	}
	for name, b := range map[string][]byte{"ref.bgr": ref, "x.h264": h, "x.mjpeg": jpegs} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ssim := func(file string) float64 {
		t.Helper()
		// both at 10 fps, so that the filter pairs picture i with picture i
		cmd := exec.Command("ffmpeg", "-hide_banner", "-framerate", "10", "-i", filepath.Join(dir, file),
			"-f", "rawvideo", "-pix_fmt", "bgr24", "-s", "640x480", "-r", "10", "-i", filepath.Join(dir, "ref.bgr"),
			"-lavfi", "[0:v]format=yuv420p[a];[1:v]format=yuv420p[b];[a][b]ssim", "-f", "null", "-")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("ffmpeg ssim: %v\n%s", err, out)
		}
		m := regexp.MustCompile(`SSIM Y:.* All:([0-9.]+)`).FindSubmatch(out)
		if m == nil {
			t.Fatalf("no SSIM in ffmpeg's output:\n%s", out)
		}
		v, _ := strconv.ParseFloat(string(m[1]), 64)
		return v
	}
	sh, sj := ssim("x.h264"), ssim("x.mjpeg")
	ratio := float64(len(jpegs)) / float64(len(h))
	t.Logf("x264 %s crf %g: SSIM %.4f, %d bytes a frame; JPEG q80: SSIM %.4f, %d bytes a frame; %.1fx fewer bytes",
		e.Config().Preset, e.Config().CRF, sh, len(h)/n, sj, len(jpegs)/n, ratio)
	if sh < sj-0.002 || ratio < 6 {
		t.Errorf("H.264 SSIM %.4f against JPEG's %.4f, %.1fx fewer bytes: want the same SSIM with 6x fewer", sh, sj, ratio)
	}
}
