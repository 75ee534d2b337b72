package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"camhub/internal/cli"
	"camhub/internal/testenv"
	"camhub/internal/wire"
)

// A source URL with a secret in its query string, given by file or by
// environment (so not in the process list), never shows the secret: not in
// the status report (which viewer list, /api/cams and CAMS_STATUS show),
// not in the log.
func TestSourceSecretsKept(t *testing.T) {
	const url = "http://127.0.0.1:1/videostream.cgi?user=admin&pwd=hunter2"
	file := filepath.Join(t.TempDir(), "source")
	if err := os.WriteFile(file, []byte(url+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, setup := range map[string]func() []string{
		"--source-file": func() []string { return []string{"--source-file", file} },
		"CAMHUB_SOURCE": func() []string { t.Setenv("CAMHUB_SOURCE", url); return nil },
	} {
		t.Run(name, func(t *testing.T) {
			s := testenv.NATS(t, nil)
			nc := testenv.Conn(t, s.ClientURL())
			ch := make(chan *nats.Msg, 64)
			if _, err := nc.ChanSubscribe(wire.StatusSubject("gate"), ch); err != nil {
				t.Fatal(err)
			}
			nc.Flush()
			ctx, cancel := context.WithCancel(context.Background())
			var stderr testenv.Buffer // nats.go logs its close through the logger after run returns
			done := make(chan int, 1)
			args := append([]string{"--id", "gate", "--nats", s.ClientURL(), "--report-interval", "200ms"}, setup()...)
			go func() { done <- run(ctx, args, &bytes.Buffer{}, &stderr) }()
			var st *wire.Status
			select {
			case m := <-ch:
				var err error
				if st, err = wire.ParseStatus(m.Subject, m.Data); err != nil {
					t.Fatal(err)
				}
			case c := <-done:
				t.Fatalf("run returned %d: %s", c, stderr.String())
			case <-time.After(20 * time.Second):
				t.Fatal("no status report")
			}
			cancel()
			<-done
			if !strings.Contains(st.Source, "videostream.cgi") || !strings.Contains(st.Source, "pwd=REDACTED") {
				t.Fatalf("status source %q: want the URL with pwd redacted", st.Source)
			}
			if strings.Contains(st.Source+stderr.String(), "hunter2") {
				t.Fatalf("the secret shows: source %q, log:\n%s", st.Source, stderr.String())
			}
		})
	}
	if code, _, stderr := runCmd(t, "--id", "gate", "--source", "testpattern", "--source-file", file); code != cli.ExitUsage ||
		!strings.Contains(stderr, "not both") {
		t.Fatalf("--source with --source-file: exit %d, %q", code, stderr)
	}
}
