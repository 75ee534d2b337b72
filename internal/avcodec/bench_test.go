package avcodec

import (
	"fmt"
	"image"
	"runtime"
	"syscall"
	"testing"
	"time"

	"camhub/internal/turbojpeg"

	"gocv.io/x/gocv"
)

// Encoding and decoding 30 frames of real footage (OpenCV's vtest clip,
// 10 fps, scaled) with libx264 and with TurboJPEG at quality 80, as the
// agent and the viewer would, one thread each:
//
//	go test -run '^$' -bench . -benchtime 300x ./internal/avcodec/
//
// Besides ns/op (wall time a frame) each reports cpu-ms/frame (the CPU
// time of the benchmark's thread, which the machine's other load does not
// inflate), B/frame, and dB: the PSNR of the decoded frames against the
// source, over one untimed pass.
const benchFrames = 30

var benchSizes = []image.Point{{640, 480}, {1280, 720}}

// threadCPU returns the CPU time the calling OS thread has used.
func threadCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// perFrame runs frame(i) in b.Loop on one OS thread and reports its CPU
// time and output bytes a frame.
func perFrame(b *testing.B, frame func(i int) int) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var bytes, n int
	cpu := threadCPU(b)
	for b.Loop() {
		bytes += frame(n)
		n++
	}
	cpu = threadCPU(b) - cpu
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(n), "cpu-ms/frame")
	b.ReportMetric(float64(bytes)/float64(n), "B/frame")
}

// meanPSNR is the mean PSNR of decoded against the source frames.
func meanPSNR(b *testing.B, src []gocv.Mat, decoded func(i int, dst *gocv.Mat)) {
	dst := gocv.NewMat()
	defer dst.Close()
	var sum float64
	for i := range src {
		decoded(i, &dst)
		_, p := compare(b, src[i], dst)
		sum += p
	}
	b.ReportMetric(sum/float64(len(src)), "dB")
}

func BenchmarkEncode(b *testing.B) {
	for _, sz := range benchSizes {
		frames := vtestFrames(b, sz.X, sz.Y, benchFrames)
		for _, preset := range []string{PresetUltrafast, PresetSuperfast, PresetVeryfast} {
			b.Run(fmt.Sprintf("%dx%d/x264-%s", sz.X, sz.Y, preset), func(b *testing.B) {
				cfg := EncoderConfig{Width: sz.X, Height: sz.Y, FPS: 10, Preset: preset, Codec: CodecX264}
				e := newEncoder(b, cfg)
				defer e.Close()
				perFrame(b, func(i int) int {
					pkts, err := e.Encode(frames[i%len(frames)], frameTime(i, 10))
					if err != nil || len(pkts) != 1 {
						b.Fatal(len(pkts), err)
					}
					return len(pkts[0].Data)
				})
				// quality, untimed: a fresh encoder over the frames once
				q := newEncoder(b, cfg)
				defer q.Close()
				d := newDecoder(b)
				defer d.Close()
				meanPSNR(b, frames, func(i int, dst *gocv.Mat) {
					pkts, err := q.Encode(frames[i], frameTime(i, 10))
					if err != nil {
						b.Fatal(err)
					}
					if ok, err := d.Decode(pkts[0].Data, dst); !ok || err != nil {
						b.Fatal(ok, err)
					}
				})
			})
		}
		b.Run(fmt.Sprintf("%dx%d/turbojpeg-q80", sz.X, sz.Y), func(b *testing.B) {
			enc, err := turbojpeg.NewEncoder()
			if err != nil {
				b.Fatal(err)
			}
			defer enc.Close()
			var buf []byte
			perFrame(b, func(i int) int {
				if buf, err = enc.Encode(frames[i%len(frames)], 80, buf); err != nil {
					b.Fatal(err)
				}
				return len(buf)
			})
			dec, err := turbojpeg.NewDecoder(false)
			if err != nil {
				b.Fatal(err)
			}
			defer dec.Close()
			meanPSNR(b, frames, func(i int, dst *gocv.Mat) {
				jpeg, err := enc.Encode(frames[i], 80, nil)
				if err != nil {
					b.Fatal(err)
				}
				if err := dec.DecodeAt(jpeg, turbojpeg.Scale{Num: 1, Denom: 1}, dst); err != nil {
					b.Fatal(err)
				}
			})
		})
		closeAll(frames)
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, sz := range benchSizes {
		frames := vtestFrames(b, sz.X, sz.Y, benchFrames)
		// what the agent would send: ultrafast, a keyframe a second
		e := newEncoder(b, EncoderConfig{Width: sz.X, Height: sz.Y, FPS: 10, Codec: CodecX264})
		var aus [][]byte
		for i, f := range frames {
			pkts, err := e.Encode(f, frameTime(i, 10))
			if err != nil {
				b.Fatal(err)
			}
			aus = append(aus, pkts[0].Data)
		}
		e.Close()
		jenc, err := turbojpeg.NewEncoder()
		if err != nil {
			b.Fatal(err)
		}
		var jpegs [][]byte
		for _, f := range frames {
			j, err := jenc.Encode(f, 80, nil)
			if err != nil {
				b.Fatal(err)
			}
			jpegs = append(jpegs, j)
		}
		jenc.Close()
		closeAll(frames)

		b.Run(fmt.Sprintf("%dx%d/h264", sz.X, sz.Y), func(b *testing.B) {
			d := newDecoder(b)
			defer d.Close()
			dst := gocv.NewMat()
			defer dst.Close()
			// from the start each time round: the first is a keyframe
			perFrame(b, func(i int) int {
				au := aus[i%len(aus)]
				if ok, err := d.Decode(au, &dst); !ok || err != nil {
					b.Fatal(ok, err)
				}
				return len(au)
			})
		})
		b.Run(fmt.Sprintf("%dx%d/turbojpeg", sz.X, sz.Y), func(b *testing.B) {
			d, err := turbojpeg.NewDecoder(false)
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			dst := gocv.NewMat()
			defer dst.Close()
			perFrame(b, func(i int) int {
				j := jpegs[i%len(jpegs)]
				if err := d.DecodeAt(j, turbojpeg.Scale{Num: 1, Denom: 1}, &dst); err != nil {
					b.Fatal(err)
				}
				return len(j)
			})
		})
	}
}
