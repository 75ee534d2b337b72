package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"camhub/hub"
)

func TestParse(t *testing.T) {
	var help strings.Builder
	if _, err := parse([]string{"--help"}, &help); !errors.Is(err, pflag.ErrHelp) || !strings.Contains(help.String(), "--motion-cams") {
		t.Fatalf("--help: %v\n%s", err, help.String())
	}
	o, err := parse([]string{"--motion-cams", "front,garden", "--motion-threshold", "30", "--motion-cameras", `{"garden":{"enabled":false}}`}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cam, err := o.motion.Camera()
	if err != nil || cam.Motion.Threshold != 30 || len(o.motion.Cams) != 2 || len(o.motion.Cameras) != 1 {
		t.Errorf("%+v %+v %v", o.motion, cam, err)
	}
	for _, args := range [][]string{{"--motion-cams", "a b"}, {"--motion-threshold", "0"}, {"extra"}, {"--motion-mask", "0,0"}} {
		if _, err := parse(args, io.Discard); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}

// A detector joins with an admin's token (hub user add NAME --role admin):
// it then dials the token's hub, unless --nats says otherwise; a camera's
// token is refused.
func TestParseJoin(t *testing.T) {
	dir := t.TempDir()
	st, err := hub.OpenStore(filepath.Join(dir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	st.URLs = []string{"tls://hub.example:4222"}
	write := func(nu hub.NewUser) string {
		tok, _, err := st.Add(nu)
		if err != nil {
			t.Fatal(err)
		}
		s, err := tok.Encode()
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(dir, nu.Name+".join")
		if err := os.WriteFile(f, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	admin := write(hub.NewUser{Name: "detector", Role: hub.RoleAdmin, Password: true})
	state := filepath.Join(dir, "state")
	o, err := parse([]string{"--join-file", admin, "--state-dir", state}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.nats != "tls://hub.example:4222" || o.auth.Token() == nil {
		t.Errorf("joined: nats %q, token %v", o.nats, o.auth.Token())
	}
	if o, err := parse([]string{"--join-file", admin, "--state-dir", state, "--nats", "tls://other:4222"}, io.Discard); err != nil || o.nats != "tls://other:4222" {
		t.Errorf("--nats with a token: %v %q", err, o.nats)
	}
	cam := write(hub.NewUser{Name: "front", Role: hub.RoleAgent, Cams: []string{"front"}})
	if _, err := parse([]string{"--join-file", cam, "--state-dir", state}, io.Discard); err == nil {
		t.Error("a camera's token: no error")
	}
}
