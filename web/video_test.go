//go:build cgo

package web

import (
	"bytes"
	"context"
	"image/jpeg"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"camhub/internal/avcodec"
	"camhub/internal/testenv"
	"camhub/internal/videojpeg"
	"camhub/internal/wire"
)

// An H.264 camera's snapshot.jpg is a JPEG of its newest picture, decoded
// from the buffer; its stream.mjpg starts with the camera's next access
// unit even if that is a delta frame (from the newest keyframe in the
// buffer) and follows the camera, decoded only while someone watches.
func TestH264Camera(t *testing.T) {
	t.Cleanup(func() {
		if avcodec.Live() != 0 {
			t.Errorf("leak: %s", avcodec.LiveString())
		}
	})
	_, nc := startHub(t)
	s, ts := startWeb(t, Config{Cams: []string{"cam"}, Video: videojpeg.Factory}, nc)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	const n = 30
	aus := testenv.H264Clip(t, 320, 240, n, 10)
	times := make([]time.Time, n)
	for i := range times {
		times[i] = time.Now().Add(time.Duration(i-n) * time.Second / 15)
	}
	testenv.PublishVideo(t, js, "cam", aus[:13], times[:13], 320, 240)

	res, err := http.Get(ts.URL + "/cams/cam/snapshot.jpg")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != wire.ContentTypeJPEG {
		t.Fatalf("snapshot: %d %s: %s", res.StatusCode, res.Header.Get("Content-Type"), body)
	}
	if cfg, err := jpeg.DecodeConfig(bytes.NewReader(body)); err != nil || cfg.Width != 320 || cfg.Height != 240 {
		t.Errorf("snapshot: %+v, %v; want a 320x240 JPEG", cfg, err)
	}
	if got := res.Header.Get(wire.HeaderSeq); got != "13" {
		t.Errorf("snapshot of frame %s, want the newest, 13", got)
	}
	if avcodec.Live() != 0 {
		t.Errorf("a decoder is open with nobody watching: %s", avcodec.LiveString())
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	mj := openMJPEG(t, ctx, ts.URL+"/cams/cam/stream.mjpg")
	// garbage on the camera's subjects changes nothing
	if err := nc.PublishMsg(&nats.Msg{Subject: wire.VideoSubject("cam", true), Data: []byte("garbage")}); err != nil {
		t.Fatal(err)
	}
	// the camera's next access unit, a delta frame: the stream starts from
	// the keyframe before it in the buffer, not at the camera's next one
	if err := nc.PublishMsg(testenv.VideoMsg(t, "cam", 14, times[13], aus[13], 320, 240)); err != nil {
		t.Fatal(err)
	}
	p, err := mj.next()
	if err != nil {
		t.Fatal(err)
	}
	if cfg, err := jpeg.DecodeConfig(bytes.NewReader(p.jpeg)); err != nil || cfg.Width != 320 || cfg.Height != 240 || p.seq != 14 {
		t.Errorf("first MJPEG part: frame %d, %+v, %v; want frame 14, 320x240", p.seq, cfg, err)
	}
	for i := 14; i < n; i++ {
		if err := nc.PublishMsg(testenv.VideoMsg(t, "cam", uint64(i+1), times[i], aus[i], 320, 240)); err != nil {
			t.Fatal(err)
		}
	}
	for p.seq != n {
		if p, err = mj.next(); err != nil {
			t.Fatalf("after frame %d: %v", p.seq, err)
		}
		if _, err := jpeg.DecodeConfig(bytes.NewReader(p.jpeg)); err != nil {
			t.Fatalf("frame %d: %v", p.seq, err)
		}
	}
	// the page's stream of every camera shows it too
	mux := openMux(t, ctx, ts.URL+"/api/stream")
	mp, err := mux.next()
	if err != nil {
		t.Fatal(err)
	}
	if cfg, err := jpeg.DecodeConfig(bytes.NewReader(mp.jpeg)); err != nil || mp.id != "cam" || mp.seq != n || cfg.Width != 320 {
		t.Errorf("page stream: %s frame %d, %+v, %v; want cam's frame %d, 320x240", mp.id, mp.seq, cfg, err, n)
	}
	cancel()
	testenv.Eventually(t, 10*time.Second, "the decoder freed once nobody watches", func() bool {
		return avcodec.Live() == 0 && !s.watched("cam")
	})
}

// A rewinding stream of an H.264 camera starts at the time asked for (from
// the keyframe before it, decoded, not shown) and plays on.
func TestH264Rewind(t *testing.T) {
	t.Cleanup(func() {
		if avcodec.Live() != 0 {
			t.Errorf("leak: %s", avcodec.LiveString())
		}
	})
	_, nc := startHub(t)
	_, ts := startWeb(t, Config{Cams: []string{"cam"}, Video: videojpeg.Factory}, nc)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	const n = 30
	aus := testenv.H264Clip(t, 320, 240, n, 10) // keyframes: frames 1, 11, 21
	// 4 frames a second: ?since= is a duration back from when the server
	// reads it, so the time asked for moves with the request's delay;
	// 125 ms either side of it keeps the frame it names on a loaded machine.
	const interval = time.Second / 4
	times := make([]time.Time, n)
	for i := range times {
		times[i] = time.Now().Add(time.Duration(i-n) * interval)
	}
	testenv.PublishVideo(t, js, "cam", aus, times, 320, 240)

	// halfway between frames 15 and 16
	since := time.Since(times[14].Add(interval / 2))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	mj := openMJPEG(t, ctx, ts.URL+"/cams/cam/stream.mjpg?since="+since.Round(time.Millisecond).String())
	p, err := mj.next()
	if err != nil {
		t.Fatal(err)
	}
	if p.seq != 16 {
		t.Errorf("the rewind's first picture is frame %d, want 16 (the first captured after the time asked for)", p.seq)
	}
	if cfg, err := jpeg.DecodeConfig(bytes.NewReader(p.jpeg)); err != nil || cfg.Width != 320 || cfg.Height != 240 {
		t.Errorf("first part: %+v, %v; want a 320x240 JPEG", cfg, err)
	}
	for p.seq < n {
		prev := p.seq
		if p, err = mj.next(); err != nil {
			t.Fatalf("after frame %d: %v", prev, err)
		}
	}
	cancel()
	testenv.Eventually(t, 10*time.Second, "the rewind's decoder freed", func() bool { return avcodec.Live() == 0 })
}

// The camera list tells of an H.264 camera from the access units it sends,
// whether or not anyone watches it (nothing is decoded then): it has a
// signal, its newest frame's Frame-Seq, size and age, and counts.
func TestH264CameraListed(t *testing.T) {
	_, nc := startHub(t)
	_, ts := startWeb(t, Config{Cams: []string{"cam"}, Video: videojpeg.Factory}, nc)
	const n = 12
	aus := testenv.H264Clip(t, 320, 240, n, 10)
	if c := camsByID(t, ts.URL)["cam"]; c.Signal || c.FrameAgeMS != nil {
		t.Fatalf("before any access unit: %+v", c)
	}
	bytes := 0
	for i, au := range aus {
		bytes += len(au)
		if err := nc.PublishMsg(testenv.VideoMsg(t, "cam", uint64(i+1), time.Now(), au, 320, 240)); err != nil {
			t.Fatal(err)
		}
	}
	var c Camera
	testenv.Eventually(t, 10*time.Second, "the camera list to count every access unit", func() bool {
		c = camsByID(t, ts.URL)["cam"]
		return c.Frames == n
	})
	if !c.Signal || c.FrameAgeMS == nil || c.FrameSeq != n || c.FrameWidth != 320 || c.FrameHeight != 240 ||
		c.Bytes != uint64(bytes) || c.Drops != 0 {
		t.Errorf("cam: %+v; want a signal, frame %d of 320x240, %d bytes, no drops", c, n, bytes)
	}
	if avcodec.Live() != 0 {
		t.Errorf("a decoder is open with nobody watching: %s", avcodec.LiveString())
	}
}
