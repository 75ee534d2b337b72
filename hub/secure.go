package hub

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// usersPoll is how often the hub looks at its users file for changes.
const usersPoll = 500 * time.Millisecond

// secure sets up TLS from the data directory: the CA (made on first
// start), the server certificate for the hub's names, and the URLs join
// tokens give.
func (s *Server) secure(opts *server.Options) error {
	dir := s.cfg.Data
	ca, err := LoadCA(dir)
	if err != nil {
		return err
	}
	names := HostNames(s.cfg.Listen, s.cfg.Advertise)
	certFile, keyFile, renewed, err := ca.serverCert(dir, names)
	if err != nil {
		return err
	}
	if renewed {
		s.log.Info("issued the hub's server certificate", "names", strings.Join(names, ","), "file", certFile)
	}
	tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: certFile, KeyFile: keyFile})
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	tc.MinVersion = tls.VersionTLS12
	opts.TLSConfig, opts.TLS, opts.TLSTimeout = tc, true, 5
	return nil
}

// logHowToJoin tells the operator the commands that add cameras and users.
func (s *Server) logHowToJoin() {
	data := s.cfg.Data
	if abs, err := filepath.Abs(data); err == nil {
		data = abs
	}
	s.log.Info("secured: TLS only, with the hub's own CA; clients log in as a camera or user of the data directory",
		"data", data, "users_file", s.usersFile)
	s.log.Info("to add a camera: hub camera add CAMERA --data " + data + " >CAMERA.join, then on the camera's machine: agent --join-file CAMERA.join --source ...")
	s.log.Info("to add a viewer: hub user add NAME --role viewer [--cams a,b] --data " + data + " >NAME.join, then: viewer --join-file NAME.join")
	s.log.Info("to list or revoke: hub camera|user list|remove --data " + data + " (applies at once, no restart)")
}

// fileStamp is what tells a file changed.
type fileStamp struct {
	info os.FileInfo
}

func stampOf(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{fi}
}

func (a fileStamp) same(b fileStamp) bool {
	if a.info == nil || b.info == nil {
		return a.info == b.info
	}
	return os.SameFile(a.info, b.info) && a.info.ModTime().Equal(b.info.ModTime()) && a.info.Size() == b.info.Size()
}

// watchUsers applies every change of the users file to the running server
// until the hub closes.
func (s *Server) watchUsers() {
	ctx, cancel := context.WithCancel(context.Background())
	s.stopWatch = cancel
	last := stampOf(s.usersFile)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(usersPoll)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			now := stampOf(s.usersFile)
			if now.same(last) {
				continue
			}
			last = now
			if err := s.ReloadUsers(); err != nil {
				s.log.Error("users file changed, and is not valid: the hub keeps the users it had", "file", s.usersFile, "error", err)
			}
		}
	}()
}

// ReloadUsers reads the users file again and applies it to the running
// server at once: new users may log in, a removed user's connections are
// closed, a changed user's permissions apply to its connections. The hub
// does this by itself when the file changes.
func (s *Server) ReloadUsers() error {
	if s.usersFile == "" || s.ns == nil {
		return errors.New("the hub has no users file")
	}
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	auth, err := LoadAuth(s.usersFile)
	if err != nil {
		return err
	}
	for _, u := range auth.Users {
		if u.Username == s.self.Username {
			return fmt.Errorf("%w: %s: user name %q is the hub's own", ErrAuth, s.usersFile, u.Username)
		}
	}
	opts := s.opts.Clone()
	opts.Users = append(auth.Users, &server.User{Username: s.self.Username, Password: s.self.Password})
	opts.Nkeys = auth.Nkeys
	if err := s.ns.ReloadOptions(opts); err != nil {
		return fmt.Errorf("applying the users file: %w", err)
	}
	s.opts = opts
	if s.guard != nil {
		s.guard.setRestricted(auth.Restricted)
	}
	before := s.users
	s.users = auth.Names
	s.log.Info("users changed: applied without a restart", "file", s.usersFile, "users", s.users, "before", before)
	return nil
}
