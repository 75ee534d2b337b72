package natsconn

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/nats-io/nats.go"

	"camhub/internal/atomicfile"
	"camhub/internal/join"
	"camhub/internal/wire"
)

// JoinEnv is the environment variable a join token may come from instead of
// --join (which other users of the machine see in the process list).
const JoinEnv = "CAMHUB_JOIN"

// Kinds of client a join token is stored for.
const (
	KindAgent  = "agent"
	KindViewer = "viewer"
)

// DefaultStateDir is where joined credentials are kept when --state-dir is
// not given: $XDG_STATE_HOME/camhub, or ~/.local/state/camhub.
func DefaultStateDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "camhub")
	}
	if h, err := os.UserHomeDir(); err == nil && h != "" {
		return filepath.Join(h, ".local", "state", "camhub")
	}
	return ".camhub-state"
}

// JoinInArgs reports whether args give a join token on the command line
// itself (--join TOKEN), where every user of the machine can read it.
func JoinInArgs(args []string) bool {
	return slices.ContainsFunc(args, func(a string) bool {
		return a == "--join" || strings.HasPrefix(a, "--join=")
	})
}

// Token is the join token the client connects with, nil if none.
func (a *Auth) Token() *join.Token { return a.token }

// Name is the user a connects as, for logs: --user, or the joined user.
func (a *Auth) Name() string {
	if a.token != nil {
		return a.token.User
	}
	return a.User
}

// Resolve finds the client's join token: the one given by --join or
// --join-file, which it then keeps in the state directory (0700, the file
// 0600), or else the one kept there by an earlier start. kind is
// KindAgent or KindViewer; an agent's id (empty: the only camera kept)
// picks its token. It returns nil, and no error, when there is none (the
// client then uses --user and --tls-ca, or nothing). Errors never show the
// token.
func (a *Auth) Resolve(kind, id string) (*join.Token, error) {
	a.token = nil
	given := a.Join
	if a.JoinFile != "" {
		if given != "" {
			return nil, errors.New("give --join or --join-file, not both")
		}
		b, err := os.ReadFile(a.JoinFile)
		if err != nil {
			return nil, fmt.Errorf("--join-file: %w", err)
		}
		given = string(b)
	}
	if given != "" {
		if a.User != "" || a.PasswordFile != "" || a.TLSCA != "" {
			return nil, errors.New("a join token carries the user and the hub's CA: give --join or --user/--password-file/--tls-ca, not both")
		}
		t, err := join.Parse(given)
		if err != nil {
			return nil, err
		}
		if err := checkKind(t, kind); err != nil {
			return nil, err
		}
		if err := a.keep(t, kind); err != nil {
			return nil, err
		}
		a.token = t
		return t, nil
	}
	if a.User != "" || a.TLSCA != "" {
		return nil, nil
	}
	file, err := a.kept(kind, id)
	if err != nil || file == "" {
		return nil, err
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("joined credentials: %w", err)
	}
	t, err := join.Parse(string(b))
	if err != nil {
		return nil, fmt.Errorf("joined credentials %s: %w", file, err)
	}
	if err := checkKind(t, kind); err != nil {
		return nil, fmt.Errorf("joined credentials %s: %w", file, err)
	}
	a.token = t
	return t, nil
}

func checkKind(t *join.Token, kind string) error {
	switch {
	case kind == KindAgent && t.Role != join.RoleAgent && t.Role != join.RoleAdmin:
		return fmt.Errorf("this is a %s's token: a camera joins with the token of `hub camera add`", t.Role)
	case kind == KindViewer && t.Role == join.RoleAgent:
		return errors.New("this is a camera's token: a viewer joins with the token of `hub user add`")
	}
	return nil
}

func (a *Auth) stateDir() string {
	if a.StateDir != "" {
		return a.StateDir
	}
	return DefaultStateDir()
}

// keptName is the file a token of kind is kept in.
func keptName(kind, user string) string {
	if kind == KindAgent {
		return "agent-" + user + ".join"
	}
	return "viewer.join"
}

func (a *Auth) keep(t *join.Token, kind string) error {
	dir := a.stateDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	s, err := t.Encode()
	if err != nil {
		return err
	}
	return atomicfile.WriteFileMode(filepath.Join(dir, keptName(kind, t.User)), []byte(s+"\n"), 0o600)
}

// kept returns the file of the token kept for kind (and id), "" if none.
func (a *Auth) kept(kind, id string) (string, error) {
	dir := a.stateDir()
	if kind == KindViewer {
		return existing(filepath.Join(dir, keptName(kind, "")))
	}
	if id != "" {
		if wire.ValidateID(id) != nil {
			return "", nil
		}
		return existing(filepath.Join(dir, keptName(kind, id)))
	}
	files, _ := filepath.Glob(filepath.Join(dir, "agent-*.join"))
	switch len(files) {
	case 0:
		return "", nil
	case 1:
		return files[0], nil
	default:
		return "", fmt.Errorf("%d cameras joined in %s: give --id", len(files), dir)
	}
}

func existing(file string) (string, error) {
	if _, err := os.Stat(file); errors.Is(err, os.ErrNotExist) {
		return "", nil
	} else if err != nil {
		return "", fmt.Errorf("joined credentials: %w", err)
	}
	return file, nil
}

// URLs returns the hub URLs to dial: flagURLs if the user gave them
// (changed), else the joined token's, else flagURLs.
func (a *Auth) URLs(flagURLs string, changed bool) string {
	if a.token != nil && !changed {
		return strings.Join(a.token.URLs, ",")
	}
	return flagURLs
}

// tokenOptions are the nats.Options of a joined client: its nkey, its own
// inbox prefix, and TLS trusting the hub's CA alone.
func tokenOptions(t *join.Token) ([]nats.Option, error) {
	kp, err := t.KeyPair()
	if err != nil {
		return nil, err
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return nil, err
	}
	tc, err := t.TLSConfig()
	if err != nil {
		return nil, err
	}
	return []nats.Option{
		nats.Nkey(pub, kp.Sign),
		nats.CustomInboxPrefix(wire.InboxPrefix(t.User)),
		nats.Secure(tc),
	}, nil
}

// WarnJoinInArgs logs that a token given with --join is visible to other
// users of the machine.
func WarnJoinInArgs(log *slog.Logger) {
	log.Warn("the join token given with --join is visible to every user of this machine (ps) until it is kept: " +
		"prefer --join-file FILE or the " + JoinEnv + " environment variable; it is kept in the state directory now, so later starts need no --join")
}
