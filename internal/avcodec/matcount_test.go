//go:build !matprofile

package avcodec

// openMats is how many gocv Mats are open: unknown without -tags
// matprofile, where only Live is checked.
func openMats() int { return 0 }
