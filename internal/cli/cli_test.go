package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestNewLogger(t *testing.T) {
	if _, err := NewLogger(io.Discard, "loud"); err == nil {
		t.Fatal("accepted a bad level")
	}
	if _, err := NewLogger(io.Discard, "debug"); err != nil {
		t.Fatal(err)
	}
}

func TestParseError(t *testing.T) {
	var stderr bytes.Buffer
	if code := ParseError(&stderr, "hub", fmt.Errorf("reading: %w", pflag.ErrHelp)); code != ExitOK || stderr.Len() != 0 {
		t.Fatalf("--help: code %d, stderr %q", code, stderr.String())
	}
	if code := ParseError(&stderr, "hub", errors.New("unexpected argument \"x\"")); code != ExitUsage ||
		stderr.String() != "hub: unexpected argument \"x\"\nRun hub --help for usage.\n" {
		t.Fatalf("bad argument: code %d, stderr %q", code, stderr.String())
	}
}

func TestStart(t *testing.T) {
	var stdout, stderr bytes.Buffer
	fs := pflag.NewFlagSet("agent", pflag.ContinueOnError)
	var c Common
	c.AddFlags(fs)
	if err := fs.Parse([]string{"--version"}); err != nil {
		t.Fatal(err)
	}
	if log, code, done := c.Start("agent", &stdout, &stderr); !done || code != ExitOK || log != nil ||
		!strings.HasPrefix(stdout.String(), "camhub agent ") || stderr.Len() != 0 {
		t.Fatalf("--version: done %v code %d, stdout %q stderr %q", done, code, stdout.String(), stderr.String())
	}

	c = Common{}
	fs = pflag.NewFlagSet("agent", pflag.ContinueOnError)
	c.AddFlags(fs)
	if err := fs.Parse([]string{"--log-level", "loud"}); err != nil {
		t.Fatal(err)
	}
	stdout.Reset()
	if _, code, done := c.Start("agent", &stdout, &stderr); !done || code != ExitUsage ||
		!strings.Contains(stderr.String(), "--log-level") || stdout.Len() != 0 {
		t.Fatalf("bad level: done %v code %d, stderr %q", done, code, stderr.String())
	}

	c = Common{LogLevel: "warn"}
	log, code, done := c.Start("agent", &stdout, &stderr)
	if done || code != ExitOK || log == nil || !log.Enabled(t.Context(), 4) || log.Enabled(t.Context(), 0) {
		t.Fatalf("warn: done %v code %d log %v", done, code, log)
	}
}
