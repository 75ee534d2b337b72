//go:build cgo && matprofile

package motion_test

import (
	"testing"

	"camhub/internal/testenv/cvtest"
)

func matLeaks(t *testing.T) func(string) { return cvtest.MatLeaks(t) }
