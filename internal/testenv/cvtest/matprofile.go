//go:build matprofile

package cvtest

import (
	"bytes"
	"testing"

	"gocv.io/x/gocv"
)

// MatLeaks notes how many Mats are open now and returns a check that fails
// the test, with where the extra ones were made, if that number changed.
// The count is kept only in builds with -tags matprofile.
func MatLeaks(t testing.TB) (check func(when string)) {
	before := gocv.MatProfile.Count()
	return func(when string) {
		t.Helper()
		if n := gocv.MatProfile.Count(); n != before {
			var b bytes.Buffer
			gocv.MatProfile.WriteTo(&b, 1)
			t.Fatalf("%s: %d Mats open, %d before:\n%s", when, n, before, b.String())
		}
	}
}
