package main

import (
	"context"
	"flag"
	"fmt"
	"os/signal"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"camhub/internal/wire"
)

// publishedIDs are the ids of the cameras "publish -cams n" simulates with
// the default prefix. They send no status reports: a grid is given their
// ids, as it would not discover them.
func publishedIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("bench%d", i)
	}
	return ids
}

// publishCmd runs simulated cameras: each has its own connection, as an
// agent does, and publishes the frames of a directory in turn with
// camhub's headers on an absolute schedule of fps, Frame-Time being the
// moment of publishing. With -video each camera publishes the access units
// of an H.264 stream instead, in order, on cams.<id>.video.key|delta with
// the video headers, as an agent with --codec h264 does. It runs until
// -seconds pass or it is signalled, then prints how many frames it sent.
// Cameras start spread over one frame interval; with -video, over the
// stream's keyframe interval unless -gop-phase aligned: independent
// cameras' keyframes fall anywhere in it, while aligned puts every
// camera's keyframe (the largest access unit, sixteen times a delta in
// the bench's footage) in the same frame interval, the worst case for the
// hub.
func publishCmd(args []string) error {
	fs := flag.NewFlagSet("publish", flag.ExitOnError)
	url := fs.String("nats", nats.DefaultURL, "NATS `URL`")
	dir := fs.String("frames", "bench/out/frames/640x480", "`directory` of JPEG frames")
	cams := fs.Int("cams", 8, "number of cameras")
	fps := fs.Float64("fps", 30, "frames per second per camera")
	seconds := fs.Float64("seconds", 0, "stop after this long (0: when signalled)")
	prefix := fs.String("prefix", "bench", "camera ids are PREFIX0, PREFIX1, ...")
	video := fs.String("video", "", "publish the access units of this Annex B H.264 `file` (camhub-bench footage) instead of JPEGs")
	phase := fs.String("gop-phase", "spread", "with -video: spread the cameras' keyframes over the keyframe interval, or align them in one frame interval: spread or aligned (the `phase`)")
	fs.Parse(args)
	if *phase != "spread" && *phase != "aligned" {
		return fmt.Errorf("-gop-phase %q: want spread or aligned", *phase)
	}

	var frames [][]byte
	var aus []videoFrame
	var err error
	if *video != "" {
		aus, err = loadVideo(*video)
		*dir = filepath.Join(filepath.Dir(*video), footageDir) // its JPEGs tell the size
	}
	if err != nil {
		return err
	}
	if frames, err = loadFrames(*dir); err != nil {
		return err
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	if *seconds > 0 {
		var c2 context.CancelFunc
		ctx, c2 = context.WithTimeout(ctx, time.Duration(*seconds*float64(time.Second)))
		defer c2()
	}
	w, h, err := jpegSize(frames[0])
	if err != nil {
		return err
	}
	var sent, failed atomic.Uint64
	var wg sync.WaitGroup
	start := time.Now().Add(100 * time.Millisecond)
	period := time.Duration(float64(time.Second) / *fps)
	spread := period // the interval the cameras' starts are spread over
	if aus != nil && *phase == "spread" {
		spread *= time.Duration(keyInterval(aus))
	}
	for c := range *cams {
		nc, err := nats.Connect(*url, nats.ReconnectBufSize(-1))
		if err != nil {
			return err
		}
		defer nc.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("%s%d", *prefix, c)
			msg := &nats.Msg{Subject: wire.FramesSubject(id), Header: make(nats.Header, 9)}
			subjects := [2]string{wire.VideoSubject(id, false), wire.VideoSubject(id, true)}
			// cameras start spread over one period (or keyframe
			// interval), as independent ones do
			next := start.Add(spread * time.Duration(c) / time.Duration(*cams))
			t := time.NewTimer(time.Until(next))
			defer t.Stop()
			for seq := uint64(1); ; seq++ {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				now := time.Now()
				if aus != nil { // from the stream's start: a keyframe first
					f := aus[int(seq-1)%len(aus)]
					msg.Subject = subjects[0]
					if f.key {
						msg.Subject = subjects[1]
					}
					pts := now.UnixNano() * wire.VideoClockRate / int64(time.Second)
					wire.Video{Frame: wire.Frame{Seq: seq, Time: now, Width: w, Height: h}, Codec: f.codec, Key: f.key, PTS: pts, DTS: pts}.SetHeader(msg.Header)
					msg.Data = f.au
				} else {
					wire.Frame{Seq: seq, Time: now, Width: w, Height: h}.SetHeader(msg.Header)
					msg.Data = frames[(int(seq)+c*7)%len(frames)]
				}
				if err := nc.PublishMsg(msg); err != nil {
					failed.Add(1)
				} else {
					sent.Add(1)
				}
				next = next.Add(period)
				if d := time.Until(next); d > 0 {
					t.Reset(d)
				} else { // late: skip the frames missed, as a camera would
					missed := -d/period + 1
					next = next.Add(missed * period)
					t.Reset(time.Until(next))
				}
			}
		}()
	}
	wg.Wait()
	fmt.Printf("{\"sent\":%d,\"failed\":%d}\n", sent.Load(), failed.Load())
	return nil
}

// natsdCmd runs a bare nats-server (no JetStream) until signalled: the
// raw NATS side of the latency comparison.
func natsdCmd(args []string) error {
	fs := flag.NewFlagSet("natsd", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:0", "`host:port`")
	fs.Parse(args)
	host, port, err := splitHostPort(*listen)
	if err != nil {
		return err
	}
	ns, err := server.NewServer(&server.Options{Host: host, Port: port, MaxPayload: 8 << 20, NoSigs: true})
	if err != nil {
		return err
	}
	ns.Start()
	defer ns.Shutdown()
	if !ns.ReadyForConnections(10 * time.Second) {
		return fmt.Errorf("nats-server did not start")
	}
	fmt.Println(ns.ClientURL())
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	<-ctx.Done()
	return nil
}

// keyInterval is the number of access units from the stream's first
// keyframe to its next (the whole stream if it has one keyframe).
func keyInterval(aus []videoFrame) int {
	for i := 1; i < len(aus); i++ {
		if aus[i].key {
			return i
		}
	}
	return len(aus)
}
