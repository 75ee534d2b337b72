package viewer

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"camhub/hub/hubtest"
	"camhub/internal/testenv"
	"camhub/internal/wire"
)

// A status report's text fields reach the user's terminal through viewer
// list: escape sequences in them (retitle, clear the screen) are printed
// escaped, never as they came.
func TestListEscapesControlCharacters(t *testing.T) {
	h := hubtest.Start(t, nil)
	nc := testenv.Conn(t, h.ClientURL())
	st := wire.Status{
		ID: "front", Host: "pi\x1b]0;pwned\x07\x1b[2J\u202e", Source: "testpattern", State: wire.StateSourceError,
		Error: "bad\r\nline\tx", Started: time.Now(), Time: time.Now(), IntervalMS: 1000, Version: "test",
	}
	data, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish(wire.StatusSubject("front"), data); err != nil {
		t.Fatal(err)
	}
	nc.Flush()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(out.String(), "front"); {
		if time.Now().After(deadline) {
			t.Fatalf("no camera listed: %q", out.String())
		}
		out.Reset()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := PrintList(ctx, js, &out, false)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
	text := out.String()
	t.Log(text)
	for _, bad := range []string{"\x1b", "\x07", "\r", "\u202e", "line\tx"} {
		if strings.Contains(text, bad) {
			t.Fatalf("the list prints %q raw:\n%q", bad, text)
		}
	}
	for _, want := range []string{`pi\x1b]0;pwned\a\x1b[2J\u202e`, `bad\r\nline\tx`} {
		if !strings.Contains(text, want) {
			t.Fatalf("the list does not show %q escaped:\n%s", want, text)
		}
	}
	if strings.Count(text, "\n") != 2 {
		t.Fatalf("want a header and one line:\n%s", text)
	}
}
