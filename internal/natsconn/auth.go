package natsconn

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/spf13/pflag"

	"camhub/internal/join"
	"camhub/internal/wire"
)

// PasswordEnv is the environment variable a client's password may come from
// instead of --password-file. Passwords are never flags (they would show in
// ps) nor YAML keys, and never logged.
const PasswordEnv = "CAMHUB_PASSWORD"

// Auth is how a client proves who it is to the hub and checks the hub's
// certificate: the flags --user, --password-file and --tls-ca.
type Auth struct {
	User         string
	PasswordFile string
	TLSCA        string
	// Join and JoinFile give a join token (see package join); StateDir is
	// where it is kept for later starts (see Resolve).
	Join, JoinFile string
	StateDir       string

	token *join.Token // set by Resolve
}

// AddFlags defines --user, --password-file and --tls-ca on fs, filling a.
func (a *Auth) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&a.User, "user", "", "NATS `user` to connect as (password from --password-file or $"+PasswordEnv+")")
	fs.StringVar(&a.PasswordFile, "password-file", "", "read the NATS password from this `file` (first line)")
	fs.StringVar(&a.TLSCA, "tls-ca", "", "connect with TLS, trusting the hub's certificate if signed by this CA `file` (PEM)")
	fs.StringVar(&a.Join, "join", "", "join the hub with this `token` (from hub camera add / hub user add): kept in --state-dir,\n"+
		"so later starts need no --join. Other users of the machine see it in ps: prefer\n"+
		"--join-file or $"+JoinEnv)
	fs.StringVar(&a.JoinFile, "join-file", "", "join the hub with the token in this `file`")
	fs.StringVar(&a.StateDir, "state-dir", "", "`directory` joined credentials are kept in (mode 0700; default $XDG_STATE_HOME/camhub\n"+
		"or ~/.local/state/camhub)")
}

// Options returns the nats.Options for a: the joined token's nkey and
// pinned CA (see Resolve), or user and password, TLS.
func (a Auth) Options() ([]nats.Option, error) {
	var opts []nats.Option
	if a.token != nil {
		return tokenOptions(a.token)
	}
	if a.User != "" {
		pw, err := a.password()
		if err != nil {
			return nil, err
		}
		opts = append(opts, nats.UserInfo(a.User, pw), nats.CustomInboxPrefix(wire.InboxPrefix(a.User)))
	} else if a.PasswordFile != "" {
		return nil, errors.New("--password-file needs --user")
	}
	if a.TLSCA != "" {
		if _, err := os.Stat(a.TLSCA); err != nil {
			return nil, fmt.Errorf("--tls-ca: %w", err)
		}
		opts = append(opts, nats.RootCAs(a.TLSCA))
	}
	return opts, nil
}

func (a Auth) password() (string, error) {
	if a.PasswordFile != "" {
		return ReadSecret(a.PasswordFile)
	}
	if pw, ok := os.LookupEnv(PasswordEnv); ok && pw != "" {
		return pw, nil
	}
	return "", fmt.Errorf("user %q: no password: give --password-file or set %s", a.User, PasswordEnv)
}

// ReadSecret reads a secret from the first line of file.
func ReadSecret(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("reading secret: %w", err)
	}
	s, _, _ := strings.Cut(string(b), "\n")
	s = strings.TrimSpace(s)
	if s == "" {
		return "", fmt.Errorf("secret file %s is empty", file)
	}
	return s, nil
}
