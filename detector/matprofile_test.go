//go:build cgo && matprofile

package detector_test

import (
	"testing"

	"camhub/internal/testenv/cvtest"
)

func matLeaks(t *testing.T) func(string) { return cvtest.MatLeaks(t) }
