package main

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"camhub/hub"
	"camhub/internal/wire"
)

// relayModes: "raw" is a bare nats-server with plain publishers and
// subscribers (no camhub code: the ceiling); the others are the camhub hub
// with the CAMS buffer off, in memory or on file, agents' headers on every
// frame and viewers' Feeds receiving.
var relayModes = []string{"raw", "off", "memory", "file"}

var relayTopologies = []struct{ pubs, subs int }{{1, 1}, {8, 1}, {1, 8}}

// relay measures the most frames per second one hub relays for a topology
// of publishers and subscribers in one process, all on loopback TCP:
// publishers send as fast as the connection takes them, n frames each,
// and the rate is the frames received by all subscribers over the time
// from the first publish to the last receipt.
func relay(res *results, frames [][]byte, size string, n, reps int) error {
	for _, topo := range relayTopologies {
		// the modes take turns, reps times, and each reports its median
		// run: load from elsewhere on the machine then falls on all alike
		runs := map[string][]Result{}
		for range reps {
			for _, mode := range relayModes {
				var r Result
				var err error
				// labelled, so a -cpuprofile separates the modes (pprof -tagfocus)
				pprof.Do(context.Background(), pprof.Labels("relay", mode), func(context.Context) {
					r, err = relayOnce(mode, topo.pubs, topo.subs, frames, n)
				})
				if err != nil {
					return fmt.Errorf("relay %s %d->%d: %w", mode, topo.pubs, topo.subs, err)
				}
				runs[mode] = append(runs[mode], r)
			}
		}
		for _, mode := range relayModes {
			rs := runs[mode]
			slices.SortFunc(rs, func(a, b Result) int { return cmp.Compare(a.Values["frames_per_s"], b.Values["frames_per_s"]) })
			r := rs[len(rs)/2]
			r.Name = fmt.Sprintf("%s %d->%d %s", mode, topo.pubs, topo.subs, size)
			r.Labels = map[string]string{"mode": mode, "topology": fmt.Sprintf("%d->%d", topo.pubs, topo.subs), "size": size}
			r.Values["frame_bytes"] = float64(meanSize(frames))
			r.Values["runs"] = float64(reps)
			r.Values["min_frames_per_s"] = rs[0].Values["frames_per_s"]
			r.Values["max_frames_per_s"] = rs[len(rs)-1].Values["frames_per_s"]
			res.add(r)
		}
	}
	return nil
}

func relayOnce(mode string, pubs, subs int, frames [][]byte, n int) (Result, error) {
	var url string
	switch mode {
	case "raw":
		ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, MaxPayload: 8 << 20, NoSigs: true})
		if err != nil {
			return Result{}, err
		}
		ns.Start()
		defer ns.Shutdown()
		if !ns.ReadyForConnections(10 * time.Second) {
			return Result{}, fmt.Errorf("nats-server did not start")
		}
		url = ns.ClientURL()
	default:
		cfg := hub.Config{Listen: "127.0.0.1:0", Replay: 30 * time.Second, ReplayBytes: 1 << 30, Storage: mode}
		if mode == "off" {
			cfg.Storage = hub.StorageMemory
		}
		if mode == hub.StorageFile {
			dir, err := os.MkdirTemp("", "camhub-bench-")
			if err != nil {
				return Result{}, err
			}
			defer os.RemoveAll(dir)
			cfg.StoreDir = dir
		}
		h, err := hub.Start(context.Background(), cfg, slog.New(slog.DiscardHandler))
		if err != nil {
			return Result{}, err
		}
		defer h.Close()
		url = h.ClientURL()
		if mode == "off" {
			nc, err := nats.Connect(url)
			if err != nil {
				return Result{}, err
			}
			js, _ := jetstream.New(nc)
			err = js.DeleteStream(context.Background(), wire.FramesStream)
			nc.Close()
			if err != nil {
				return Result{}, err
			}
		}
	}

	// subscribers: a raw one counts; a camhub one parses the frame's
	// headers and keeps the newest frame per camera, as a viewer's feed
	// does. Every receipt wakes publishers waiting for the window.
	var mu sync.Mutex
	cond := sync.NewCond(&mu)
	var got uint64
	var last time.Time
	var conns []*nats.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range subs {
		nc, err := nats.Connect(url)
		if err != nil {
			return Result{}, err
		}
		conns = append(conns, nc)
		var newest sync.Map
		sub, err := nc.Subscribe(wire.AllFrames, func(m *nats.Msg) {
			if mode != "raw" {
				if _, err := wire.ParseFrame(m.Header); err == nil {
					newest.Store(m.Subject, m)
				}
			}
			now := time.Now()
			mu.Lock()
			got++
			last = now
			mu.Unlock()
			cond.Broadcast()
		})
		if err != nil {
			return Result{}, err
		}
		sub.SetPendingLimits(-1, -1)
		if err := nc.Flush(); err != nil {
			return Result{}, err
		}
	}

	// publishers: as fast as the window lets them. At most window frames
	// per subscriber are in flight (published, not yet received), so what
	// is measured is the rate the relay sustains, not how fast buffers
	// fill until a slow consumer is cut off.
	const window = 32
	var published uint64
	var pconns []*nats.Conn
	for range pubs {
		nc, err := nats.Connect(url)
		if err != nil {
			return Result{}, err
		}
		pconns = append(pconns, nc)
		defer nc.Close()
	}
	w, h, err := jpegSize(frames[0])
	if err != nil {
		return Result{}, err
	}
	cpu0 := selfCPU()
	start := time.Now()
	var wg sync.WaitGroup
	var perr atomic.Value
	for p, nc := range pconns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			subject := wire.FramesSubject(fmt.Sprintf("relay%d", p))
			msg := &nats.Msg{Subject: subject, Header: make(nats.Header, 5)}
			for i := range n {
				mu.Lock()
				for published*uint64(subs) > got+window*uint64(subs) {
					cond.Wait()
				}
				published++
				mu.Unlock()
				msg.Data = frames[i%len(frames)]
				var err error
				if mode == "raw" {
					err = nc.Publish(subject, msg.Data)
				} else {
					wire.Frame{Seq: uint64(i + 1), Time: time.Now(), Width: w, Height: h}.SetHeader(msg.Header)
					err = nc.PublishMsg(msg)
				}
				if err != nil {
					perr.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if e, ok := perr.Load().(error); ok {
		return Result{}, e
	}
	total := uint64(pubs * subs * n)
	mu.Lock()
	for got < total {
		cond.Wait()
	}
	el := last.Sub(start)
	mu.Unlock()
	cpu := selfCPU() - cpu0
	fps := float64(total) / el.Seconds()
	return Result{Bench: "relay", Values: map[string]float64{
		"frames_per_s":     fps,
		"mb_per_s":         fps * float64(meanSize(frames)) / 1e6,
		"cpu_ms_per_frame": float64(cpu) / 1e6 / float64(total),
	}}, nil
}
