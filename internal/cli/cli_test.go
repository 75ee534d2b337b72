package cli

import "testing"

func TestNewLogger(t *testing.T) {
	if _, err := NewLogger("loud"); err == nil {
		t.Fatal("accepted a bad level")
	}
	if _, err := NewLogger("debug"); err != nil {
		t.Fatal(err)
	}
}
