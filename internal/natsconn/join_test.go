package natsconn_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"camhub/hub"
	"camhub/internal/join"
	. "camhub/internal/natsconn"
)

// token makes a real token from a hub data directory.
func token(t *testing.T, name string, viewer bool) string {
	t.Helper()
	st, err := hub.OpenStore(filepath.Join(t.TempDir(), "data"))
	if err != nil {
		t.Fatal(err)
	}
	var tok *join.Token
	if viewer {
		tok, _, err = st.Add(hub.NewUser{Name: name, Role: hub.RoleViewer})
	} else {
		tok, err = st.AddCamera(name)
	}
	if err != nil {
		t.Fatal(err)
	}
	s, err := tok.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A token given once is kept (0700/0600) and found by later starts.
func TestResolveKeepsToken(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state")
	file := filepath.Join(t.TempDir(), "front.join")
	if err := os.WriteFile(file, []byte(token(t, "front", false)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a := Auth{JoinFile: file, StateDir: state}
	tok, err := a.Resolve(KindAgent, "")
	if err != nil || tok == nil || tok.User != "front" {
		t.Fatalf("token %v, %v", tok, err)
	}
	for p, want := range map[string]os.FileMode{state: 0o700, filepath.Join(state, "agent-front.join"): 0o600} {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm() != want {
			t.Fatalf("%s: %v, %v; want mode %v", p, fi, err, want)
		}
	}
	// Later starts: by id, or the only camera kept.
	for _, id := range []string{"front", ""} {
		b := Auth{StateDir: state}
		if tok, err := b.Resolve(KindAgent, id); err != nil || tok == nil || tok.User != "front" {
			t.Fatalf("id %q: %v, %v", id, tok, err)
		}
		if b.URLs("nats://x:4222", false) != strings.Join(tok.URLs, ",") || b.URLs("nats://x:4222", true) != "nats://x:4222" {
			t.Fatal("URLs: want the token's unless given")
		}
		opts, err := b.Options()
		if err != nil || len(opts) != 3 {
			t.Fatalf("options %d, %v", len(opts), err)
		}
	}
	// Another camera is not found; --user turns joining off.
	if tok, err := (&Auth{StateDir: state}).Resolve(KindAgent, "back"); tok != nil || err != nil {
		t.Fatalf("back: %v, %v", tok, err)
	}
	if tok, err := (&Auth{StateDir: state, User: "front"}).Resolve(KindAgent, "front"); tok != nil || err != nil {
		t.Fatalf("--user: %v, %v", tok, err)
	}
}

func TestResolveErrors(t *testing.T) {
	cam, view := token(t, "front", false), token(t, "family", true)
	for _, tc := range []struct {
		name string
		a    Auth
		kind string
		want string
	}{
		{"camera token for a viewer", Auth{Join: cam}, KindViewer, "camera's token"},
		{"viewer token for an agent", Auth{Join: view}, KindAgent, "viewer's token"},
		{"both", Auth{Join: cam, JoinFile: "x"}, KindAgent, "not both"},
		{"with user", Auth{Join: cam, User: "u"}, KindAgent, "not both"},
		{"mangled", Auth{Join: cam[:len(cam)-40]}, KindAgent, "bad join token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.a.StateDir = t.TempDir()
			_, err := tc.a.Resolve(tc.kind, "")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), cam[20:60]) || strings.Contains(err.Error(), view[20:60]) {
				t.Fatalf("the error shows the token: %v", err)
			}
		})
	}
}

func TestJoinInArgs(t *testing.T) {
	if !JoinInArgs([]string{"--id", "x", "--join", "camhub1.x"}) || !JoinInArgs([]string{"--join=camhub1.x"}) || JoinInArgs([]string{"--join-file", "f"}) {
		t.Fatal("JoinInArgs")
	}
}
