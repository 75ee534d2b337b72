//go:build cgo

package main

import (
	"log/slog"

	"camhub/detector"
	"camhub/hub"
)

// detectorBuilt: this hub has the motion detector (cgo: OpenCV, libavcodec).
const detectorBuilt = true

// startMotion starts the motion detector on the hub's own connection,
// unless --motion=false, and returns what stops it.
func startMotion(o *options, h *hub.Server, log *slog.Logger) (stop func(), err error) {
	if !o.motion.Enabled {
		log.Info("motion detection off (--motion=false)")
		return func() {}, nil
	}
	cam, err := o.motion.Camera()
	if err != nil {
		return nil, err
	}
	if (o.hub.Cluster != "" || o.hub.LeafListen != "" || o.hub.Leaf != "") && len(o.motion.Cams) == 0 {
		log.Warn("every hub of a cluster, and every site, that runs the motion detector analyses every camera it receives, and each keeps its own events of them: " +
			"give each hub its share with --motion-cams, or run it on one hub only (--motion=false on the others)")
	}
	d, err := detector.New(h.Conn(), detector.Config{Defaults: cam, Cameras: o.motion.Cameras, Only: o.motion.Cams, Snapshots: o.ha.h264Snapshots(o.hub)}, log.With("component", "motion"))
	if err != nil {
		return nil, err
	}
	if err := d.Start(); err != nil {
		d.Close()
		return nil, err
	}
	return d.Close, nil
}
