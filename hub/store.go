package hub

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nkeys"
	"go.yaml.in/yaml/v3"
	"golang.org/x/crypto/bcrypt"

	"camhub/internal/join"
	"camhub/internal/wire"
)

// ErrExists and ErrNotFound are returned by Store's Add and Remove.
var (
	ErrExists   = errors.New("already exists")
	ErrNotFound = errors.New("not found")
)

// Store is the cameras and users of a hub's data directory, kept in its
// users file (UsersFile, the layout of --auth files, with nkeys). A running
// hub watches the file and applies every change at once. Changes are made
// under a lock file and written atomically, so concurrent `hub camera add`
// and `hub user add` commands do not lose each other's work.
type Store struct {
	dir string
	// URLs are the hub's client URLs written into join tokens; empty:
	// those the running (or last) hub recorded in the data directory.
	URLs []string
}

// OpenStore opens the store of data directory dir, making the directory
// and its CA if needed.
func OpenStore(dir string) (*Store, error) {
	if err := EnsureDataDir(dir); err != nil {
		return nil, err
	}
	return &Store{dir: dir}, nil
}

// File is the store's users file.
func (s *Store) File() string { return filepath.Join(s.dir, UsersFile) }

// List returns the store's entries, cameras (role agent) and users.
func (s *Store) List() ([]User, error) {
	users, err := s.read()
	if err != nil {
		return nil, err
	}
	return users, nil
}

func (s *Store) read() ([]User, error) {
	users, err := readUsers(s.File())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return users, err
}

// NewUser is a user to add: Role and Cams as in the users file; WebHosts,
// if set, are the host names and addresses of a `viewer --http` this user
// runs, for which the token carries a certificate.
type NewUser struct {
	Name     string
	Role     string
	Cams     []string
	WebHosts []string
	// Password makes a random password too (for the web login), returned
	// by Add and kept in the store as a bcrypt hash.
	Password bool
}

// AddCamera adds camera id (an nkey user of role agent that may publish
// id's subjects alone) and returns its join token.
func (s *Store) AddCamera(id string) (*join.Token, error) {
	t, _, err := s.Add(NewUser{Name: id, Role: RoleAgent, Cams: []string{id}})
	return t, err
}

// Add adds a user and returns its join token and, if asked for, its
// password. Nothing but the public key and the password's hash is kept.
func (s *Store) Add(nu NewUser) (*join.Token, string, error) {
	u := User{Name: nu.Name, Role: nu.Role, Cams: nu.Cams}
	if err := wire.ValidateID(u.Name); err != nil {
		return nil, "", fmt.Errorf("name: %w", err)
	}
	if err := wire.ValidateIDs(u.Cams, 0); err != nil {
		return nil, "", fmt.Errorf("cams: %w", err)
	}
	if _, err := RolePermissions(u.Role, u.Name, u.Cams); err != nil {
		return nil, "", err
	}
	if u.Name == internalUserName {
		return nil, "", fmt.Errorf("name %q is the hub's own", u.Name)
	}
	kp, err := nkeys.CreateUser()
	if err != nil {
		return nil, "", err
	}
	seed, err := kp.Seed()
	if err != nil {
		return nil, "", err
	}
	if u.Nkey, err = kp.PublicKey(); err != nil {
		return nil, "", err
	}
	var password string
	if nu.Password {
		b := make([]byte, 18)
		if _, err := rand.Read(b); err != nil {
			return nil, "", err
		}
		password = base64.RawURLEncoding.EncodeToString(b)
		h, err := bcrypt.GenerateFromPassword([]byte(password), bcryptCost)
		if err != nil {
			return nil, "", err
		}
		u.Password = string(h)
	}
	ca, err := LoadCA(s.dir)
	if err != nil {
		return nil, "", err
	}
	urls, err := s.urls()
	if err != nil {
		return nil, "", err
	}
	t := &join.Token{V: join.Version, URLs: urls, CA: string(ca.CertPEM), User: u.Name, Role: u.Role, Cams: u.Cams, Seed: string(seed)}
	if len(nu.WebHosts) > 0 {
		cert, key, err := ca.Issue("camhub viewer "+u.Name, nu.WebHosts, serverValidity)
		if err != nil {
			return nil, "", err
		}
		t.WebCert, t.WebKey = string(cert), string(key)
	}
	err = s.update(func(users []User) ([]User, error) {
		for _, o := range users {
			if o.Name == u.Name {
				return nil, fmt.Errorf("%q: %w (remove it first to issue a new token)", u.Name, ErrExists)
			}
		}
		return append(users, u), nil
	})
	if err != nil {
		return nil, "", err
	}
	return t, password, nil
}

// Remove removes the camera or user name: a running hub refuses its
// credential at once and closes its connections.
func (s *Store) Remove(name string) error {
	return s.update(func(users []User) ([]User, error) {
		i := slices.IndexFunc(users, func(u User) bool { return u.Name == name })
		if i < 0 {
			return nil, fmt.Errorf("%q: %w", name, ErrNotFound)
		}
		return slices.Delete(users, i, i+1), nil
	})
}

// update changes the users file under the store's lock.
func (s *Store) update(change func([]User) ([]User, error)) error {
	unlock, err := lockFile(filepath.Join(s.dir, UsersFile+".lock"), 10*time.Second)
	if err != nil {
		return err
	}
	defer unlock()
	users, err := s.read()
	if err != nil {
		return err
	}
	users, err = change(users)
	if err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("# camhub's cameras and users: change with `hub camera|user add|remove`.\n")
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if users == nil {
		users = []User{}
	}
	if err := enc.Encode(usersFile{Users: users}); err != nil {
		return err
	}
	if err := enc.Close(); err != nil {
		return err
	}
	// The result must load as the hub will load it.
	if _, err := natsAuth(users, s.File()); err != nil {
		return err
	}
	return writeSecret(s.File(), []byte(b.String()))
}

// urls returns s.URLs or those the hub recorded.
func (s *Store) urls() ([]string, error) {
	if len(s.URLs) > 0 {
		return s.URLs, nil
	}
	b, err := os.ReadFile(filepath.Join(s.dir, URLsFile))
	if errors.Is(err, os.ErrNotExist) {
		return ClientURLs(DefaultListen, nil), nil
	}
	if err != nil {
		return nil, err
	}
	urls := strings.Fields(string(b))
	if len(urls) == 0 {
		return ClientURLs(DefaultListen, nil), nil
	}
	return urls, nil
}

// bcryptCost is the cost of the passwords' hashes: the server checks one
// at every password login.
var bcryptCost = bcrypt.DefaultCost

// DefaultListen is the hub's default client listener.
const DefaultListen = "0.0.0.0:4222"
