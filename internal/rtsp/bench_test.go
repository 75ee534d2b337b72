package rtsp

import (
	"context"
	"syscall"
	"testing"
	"time"
)

// BenchmarkPassthrough measures the CPU this process spends per access
// unit (gortsplib's goroutines, the passthrough, the reader: getrusage of
// the whole process) while it reads a 720p, 15 fps, 2 Mbit/s H.264 camera
// (x264 from real footage, GStreamer's RTSP server, RTSP over TCP). The
// camera sets the pace: ns/op is its frame interval; cpu-ms/frame is the
// figure. Run it over 20 s of the stream:
//
//	go test -run '^$' -bench Passthrough -benchtime 300x ./internal/rtsp/
func BenchmarkPassthrough(b *testing.B) {
	seconds := b.N/15 + 3
	ts, _ := clip(b, "1280:720", 15, seconds, "2M")
	srv := startServer(b, h264Launch(ts))
	src, err := Open(context.Background(), srv.URL(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(seconds+30)*time.Second)
	defer cancel()
	if _, err := src.Read(ctx); err != nil { // the first, outside the measure
		b.Fatal(err)
	}
	bytes := 0
	before := cpu(b)
	b.ResetTimer()
	for range b.N {
		au, err := src.Read(ctx)
		if err != nil {
			b.Fatal(err)
		}
		bytes += len(au.Data)
	}
	b.StopTimer()
	used := cpu(b) - before
	b.ReportMetric(float64(used)/float64(time.Millisecond)/float64(b.N), "cpu-ms/frame")
	b.ReportMetric(float64(bytes)*8/float64(b.N)*15/1e6, "Mbit/s")
	if s := src.Stats(); s.Dropped+s.Lost+s.Errors != 0 {
		b.Errorf("stats %+v", s)
	}
}

// cpu returns the user and system CPU time this process has used.
func cpu(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
