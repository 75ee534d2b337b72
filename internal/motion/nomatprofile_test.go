//go:build cgo && !matprofile

package motion_test

import "testing"

// matLeaks checks nothing without -tags matprofile.
func matLeaks(t *testing.T) func(string) { return func(string) {} }
