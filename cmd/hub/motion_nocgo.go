//go:build !cgo

package main

import (
	"log/slog"

	"camhub/hub"
)

// detectorBuilt: a hub built without cgo has no motion detector.
const detectorBuilt = false

// startMotion says there is no detector in this build.
func startMotion(o *options, _ *hub.Server, log *slog.Logger) (func(), error) {
	if o.motion.Enabled {
		log.Warn("this hub was built without cgo and has no motion detector: run the detector command next to it (cmd/detector)")
	} else {
		log.Info("no motion detector in this build (built without cgo)")
	}
	return func() {}, nil
}
