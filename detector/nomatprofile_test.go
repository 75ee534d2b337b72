//go:build cgo && !matprofile

package detector_test

import "testing"

// matLeaks checks nothing without -tags matprofile (avcodec.Live is
// checked always).
func matLeaks(t *testing.T) func(string) { return func(string) {} }
