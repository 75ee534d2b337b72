package main

import (
	"errors"
	"flag"
	"fmt"
	"image"
	"os"
	"path/filepath"
	"time"

	"gocv.io/x/gocv"

	"camhub/internal/avcodec"
	"camhub/internal/h264"
	"camhub/internal/testenv"
)

// Footage of the H.264 benchmarks: vtest scaled to 1280x720, taken as a
// 15 fps camera.
const (
	footageDir  = "vtest-1280x720" // its JPEGs, quality 80
	footageH264 = "vtest-1280x720.h264"
	footageFPS  = 15
)

// footageCmd encodes frames of OpenCV's vtest clip (testenv.Vtest, real
// footage from Debian's opencv-doc) at 1280x720 twice, as an agent would
// with each codec: JPEG at quality 80 (OpenCV), and H.264 with the agent's
// encoder defaults (internal/avcodec: libx264, its default preset and CRF,
// a keyframe a second at 15 fps), written as one Annex B stream.
func footageCmd(args []string) error {
	fs := flag.NewFlagSet("footage", flag.ExitOnError)
	out := fs.String("out", "bench/out/frames", "output `directory`")
	n := fs.Int("n", 300, "number of frames")
	quality := fs.Int("quality", 80, "JPEG quality")
	fs.Parse(args)
	if _, err := os.Stat(testenv.Vtest); err != nil {
		return fmt.Errorf("%w: install opencv-doc (scripts/deps.sh bench)", err)
	}
	const w, h = 1280, 720
	dir := filepath.Join(*out, footageDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	enc, err := avcodec.NewEncoder(avcodec.EncoderConfig{Width: w, Height: h, FPS: footageFPS, Codec: avcodec.CodecX264})
	if err != nil {
		return err
	}
	defer enc.Close()
	vc, err := gocv.VideoCaptureFile(testenv.Vtest)
	if err != nil {
		return err
	}
	defer vc.Close()
	img, scaled := gocv.NewMat(), gocv.NewMat()
	defer img.Close()
	defer scaled.Close()
	params := []int{gocv.IMWriteJpegQuality, *quality}
	var stream []byte
	jpegBytes := 0
	for i := range *n {
		if !vc.Read(&img) || img.Empty() { // the clip ended: from its start again
			vc.Set(gocv.VideoCapturePosFrames, 0)
			if !vc.Read(&img) || img.Empty() {
				return errors.New("cannot read " + testenv.Vtest)
			}
		}
		gocv.Resize(img, &scaled, image.Pt(w, h), 0, 0, gocv.InterpolationLinear)
		buf, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, scaled, params)
		if err != nil {
			return err
		}
		jpegBytes += buf.Len()
		err = os.WriteFile(filepath.Join(dir, fmt.Sprintf("%03d.jpg", i)), buf.GetBytes(), 0o644)
		buf.Close()
		if err != nil {
			return err
		}
		pkts, err := enc.Encode(scaled, time.Duration(i)*time.Second/footageFPS)
		if err != nil {
			return err
		}
		for _, p := range pkts {
			stream = append(stream, p.Data...)
		}
	}
	pkts, err := enc.Flush()
	if err != nil {
		return err
	}
	for _, p := range pkts {
		stream = append(stream, p.Data...)
	}
	if err := os.WriteFile(filepath.Join(*out, footageH264), stream, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "footage: %d frames of vtest at %dx%d: JPEG q%d mean %d KiB, H.264 (%s, CRF %g) mean %.1f KiB, in %s\n",
		*n, w, h, *quality, jpegBytes/(*n)>>10, enc.Config().Preset, enc.Config().CRF, float64(len(stream))/float64(*n)/1024, *out)
	return nil
}

// videoFrame is one access unit of a benchmark camera, with what its
// headers say.
type videoFrame struct {
	au    []byte
	key   bool
	codec string
}

// loadVideo reads an Annex B H.264 stream (footageCmd's) as access units.
func loadVideo(path string) ([]videoFrame, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w (run camhub-bench footage)", err)
	}
	aus, err := h264.AccessUnits(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(aus) == 0 || !h264.IsKeyframe(aus[0]) {
		return nil, fmt.Errorf("%s: does not start with a keyframe", path)
	}
	frames := make([]videoFrame, len(aus))
	codec := ""
	for i, au := range aus {
		key := h264.IsKeyframe(au)
		if key {
			sps, _, err := h264.Params(au)
			if err != nil {
				return nil, fmt.Errorf("%s: access unit %d: %w", path, i, err)
			}
			if codec, err = h264.CodecString(sps); err != nil {
				return nil, fmt.Errorf("%s: access unit %d: %w", path, i, err)
			}
		}
		frames[i] = videoFrame{au: au, key: key, codec: codec}
	}
	return frames, nil
}
