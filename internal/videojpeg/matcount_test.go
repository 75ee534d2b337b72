//go:build !matprofile

package videojpeg

// openMats is how many gocv Mats are open: unknown without -tags
// matprofile, where only avcodec.Live is checked.
func openMats() int { return 0 }
