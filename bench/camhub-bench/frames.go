package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"image"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"gocv.io/x/gocv"
)

// Frame sizes of the benchmark.
var sizes = []image.Point{{640, 480}, {1280, 720}}

func sizeName(p image.Point) string { return fmt.Sprintf("%dx%d", p.X, p.Y) }

// framesCmd renders a moving Mandelbrot zoom with ffmpeg at 1280x720 and
// encodes every frame with OpenCV at quality 80, at 1280x720 and (centre
// cropped to 4:3) at 640x480: rich, distinct pictures, each one different
// from the last, as a camera's are.
func framesCmd(args []string) error {
	fs := flag.NewFlagSet("frames", flag.ExitOnError)
	out := fs.String("out", "bench/out/frames", "output `directory`")
	n := fs.Int("n", 100, "number of frames")
	quality := fs.Int("quality", 80, "JPEG quality")
	fs.Parse(args)
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		return errors.New("ffmpeg is needed to render the frames (apt-get install ffmpeg)")
	}
	for _, s := range sizes {
		if err := os.MkdirAll(filepath.Join(*out, sizeName(s)), 0o755); err != nil {
			return err
		}
	}
	const w, h = 1280, 720
	// -ss skips the first second, where the zoom still shows mostly the
	// set's flat interior.
	cmd := exec.CommandContext(context.Background(), "ffmpeg", "-loglevel", "error", "-f", "lavfi",
		"-i", fmt.Sprintf("mandelbrot=size=%dx%d:rate=30", w, h), "-ss", "1", "-frames:v", fmt.Sprint(*n),
		"-f", "rawvideo", "-pix_fmt", "bgr24", "-")
	cmd.Stderr = os.Stderr
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	defer cmd.Wait()
	r := bufio.NewReaderSize(pipe, 1<<20)
	buf := make([]byte, w*h*3)
	small := gocv.NewMat()
	defer small.Close()
	video, err := gocv.VideoWriterFile(filepath.Join(*out, "1280x720.avi"), "MJPG", 30, w, h, true)
	if err != nil {
		return err
	}
	defer video.Close()
	params := []int{gocv.IMWriteJpegQuality, *quality}
	var total [2]int
	for i := range *n {
		if _, err := io.ReadFull(r, buf); err != nil {
			return fmt.Errorf("frame %d from ffmpeg: %w", i, err)
		}
		full, err := gocv.NewMatFromBytes(h, w, gocv.MatTypeCV8UC3, buf)
		if err != nil {
			return err
		}
		crop := full.Region(image.Rect((w-h*4/3)/2, 0, (w+h*4/3)/2, h))
		gocv.Resize(crop, &small, image.Pt(640, 480), 0, 0, gocv.InterpolationArea)
		crop.Close()
		for k, m := range []gocv.Mat{small, full} {
			jpeg, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, m, params)
			if err != nil {
				return err
			}
			b := jpeg.GetBytes()
			total[k] += len(b)
			err = os.WriteFile(filepath.Join(*out, sizeName(sizes[k]), fmt.Sprintf("%03d.jpg", i)), b, 0o644)
			jpeg.Close()
			if err != nil {
				return err
			}
		}
		if err := video.Write(full); err != nil {
			return err
		}
		full.Close()
	}
	fmt.Fprintf(os.Stderr, "frames: %d at 640x480 (mean %d KiB) and 1280x720 (mean %d KiB), quality %d, in %s\n",
		*n, total[0]/(*n)>>10, total[1]/(*n)>>10, *quality, *out)
	return nil
}

// loadFrames reads the JPEGs of a frames directory, in name order.
func loadFrames(dir string) ([][]byte, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.jpg"))
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no .jpg frames in %s (run camhub-bench frames)", dir)
	}
	sort.Strings(names)
	frames := make([][]byte, 0, len(names))
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			return nil, err
		}
		frames = append(frames, b)
	}
	return frames, nil
}

func meanSize(frames [][]byte) int {
	t := 0
	for _, f := range frames {
		t += len(f)
	}
	return t / len(frames)
}

func parseSize(s string) (image.Point, error) {
	var p image.Point
	if _, err := fmt.Sscanf(strings.ToLower(s), "%dx%d", &p.X, &p.Y); err != nil {
		return p, fmt.Errorf("size %q: want WIDTHxHEIGHT", s)
	}
	return p, nil
}
