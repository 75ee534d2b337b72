package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/spf13/pflag"

	"camhub/hass"
	"camhub/hub"
	"camhub/notify"
)

// haFlags are the Home Assistant settings.
type haFlags struct {
	discovery     bool
	snapshotEvery time.Duration
}

func (f *haFlags) add(fs *pflag.FlagSet) {
	fs.BoolVar(&f.discovery, "ha-discovery", true, "with --mqtt (or --nats): publish Home Assistant MQTT discovery for every camera (motion, frame rate, snapshot) and the snapshots")
	fs.DurationVar(&f.snapshotEvery, "snapshot-every", hass.DefaultSnapshotEvery, "publish a JPEG camera's newest frame on cams.<id>.snapshot this often (and when motion starts); 0: only on motion")
}

// h264Snapshots is how often the detector publishes H.264 cameras'
// snapshots: as often as the hub does JPEG cameras', when Home Assistant
// discovery is on.
func (f *haFlags) h264Snapshots(c hub.Config) time.Duration {
	if !f.discovery || (c.MQTT == "" && c.NATS == "") {
		return 0
	}
	return f.snapshotEvery
}

// startExtras starts what runs in the hub's process besides the detector:
// notifications and Home Assistant discovery. It returns what stops them.
func startExtras(ctx context.Context, o *options, h *hub.Server, log *slog.Logger) (stop func(), err error) {
	var stops []func()
	stop = func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	ncfg, err := o.notify.Config()
	if err != nil {
		return nil, err
	}
	if !ncfg.Empty() {
		n, err := notify.New(h.Conn(), ncfg, log.With("component", "notify"))
		if err != nil {
			return nil, err
		}
		if err := n.Start(ctx); err != nil {
			return nil, err
		}
		stops = append(stops, n.Close)
		h.AddCollector(n.Collector())
	}
	if o.ha.discovery && (o.hub.MQTT != "" || o.hub.NATS != "") {
		p, err := hass.New(h.Conn(), hass.Config{SnapshotEvery: o.ha.snapshotEvery}, log.With("component", "hass"))
		if err != nil {
			stop()
			return nil, err
		}
		if err := p.Start(ctx); err != nil {
			stop()
			return nil, err
		}
		stops = append(stops, p.Close)
	}
	return stop, nil
}
