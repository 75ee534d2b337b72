package cli

import (
	"io"
	"testing"
)

func TestNewLogger(t *testing.T) {
	if _, err := NewLogger(io.Discard, "loud"); err == nil {
		t.Fatal("accepted a bad level")
	}
	if _, err := NewLogger(io.Discard, "debug"); err != nil {
		t.Fatal(err)
	}
}
