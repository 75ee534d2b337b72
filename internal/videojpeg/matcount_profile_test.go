//go:build matprofile

package videojpeg

import "gocv.io/x/gocv"

// openMats is how many gocv Mats are open (go test -tags matprofile).
func openMats() int { return gocv.MatProfile.Count() }
