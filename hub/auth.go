package hub

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	"go.yaml.in/yaml/v3"

	"camhub/internal/natsconn"
	"camhub/internal/wire"
)

// Roles a user of the hub can have.
const (
	RoleAdmin  = "admin"  // everything
	RoleAgent  = "agent"  // publish its cameras' frames and status, nothing else
	RoleViewer = "viewer" // read cameras (all, or those listed), nothing else
)

// ErrAuth is wrapped by every error in a users file.
var ErrAuth = errors.New("bad users file")

// User is one entry of the users file. The password comes from exactly one
// of Password (a bcrypt hash, "$2a$..."), PasswordFile (plain text, first
// line; relative to the users file) or PasswordEnv (an environment variable).
type User struct {
	Name         string   `yaml:"user"`
	Role         string   `yaml:"role"`
	Cams         []string `yaml:"cams"`
	Password     string   `yaml:"password"`
	PasswordFile string   `yaml:"password_file"`
	PasswordEnv  string   `yaml:"password_env"`
}

// usersFile is the users file's layout.
type usersFile struct {
	Users []User `yaml:"users"`
}

// LoadUsers reads the users file and returns NATS users with their
// permissions, secrets resolved.
func LoadUsers(file string) ([]*server.User, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrAuth, err)
	}
	var f usersFile
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrAuth, file, err)
	}
	if len(f.Users) == 0 {
		return nil, fmt.Errorf("%w: %s: no users", ErrAuth, file)
	}
	seen := map[string]bool{}
	var users []*server.User
	for i, u := range f.Users {
		nu, err := u.natsUser(filepath.Dir(file))
		if err != nil {
			return nil, fmt.Errorf("%w: %s: user %d (%q): %v", ErrAuth, file, i+1, u.Name, err)
		}
		if seen[u.Name] {
			return nil, fmt.Errorf("%w: %s: user %q twice", ErrAuth, file, u.Name)
		}
		seen[u.Name] = true
		users = append(users, nu)
	}
	return users, nil
}

func (u User) natsUser(dir string) (*server.User, error) {
	if err := wire.ValidateID(u.Name); err != nil {
		return nil, fmt.Errorf("user name: %v", err)
	}
	for _, id := range u.Cams {
		if err := wire.ValidateID(id); err != nil {
			return nil, fmt.Errorf("cams: %v", err)
		}
	}
	pw, err := u.password(dir)
	if err != nil {
		return nil, err
	}
	perms, err := RolePermissions(u.Role, u.Name, u.Cams)
	if err != nil {
		return nil, err
	}
	return &server.User{Username: u.Name, Password: pw, Permissions: perms}, nil
}

func (u User) password(dir string) (string, error) {
	n := 0
	for _, s := range []string{u.Password, u.PasswordFile, u.PasswordEnv} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		return "", errors.New("give exactly one of password (a bcrypt hash), password_file or password_env")
	}
	switch {
	case u.Password != "":
		if !strings.HasPrefix(u.Password, "$2") {
			return "", errors.New("password must be a bcrypt hash ($2a$...); put plain passwords in password_file or password_env")
		}
		return u.Password, nil
	case u.PasswordFile != "":
		f := u.PasswordFile
		if !filepath.IsAbs(f) {
			f = filepath.Join(dir, f)
		}
		return natsconn.ReadSecret(f)
	default:
		pw := os.Getenv(u.PasswordEnv)
		if pw == "" {
			return "", fmt.Errorf("environment variable %s is empty", u.PasswordEnv)
		}
		return pw, nil
	}
}

// RolePermissions is the permission template of every role: what a user
// of role may do on the NATS server, cams being the cameras it is limited
// to (for an admin: none, meaning unrestricted, and nil is returned). Every
// kind of credential the hub issues takes its permissions from here.
//
// Some of what a viewer may do cannot be expressed as NATS permissions
// (JetStream takes a consumer's durability, deliver subject and lifetime
// from the request's body); the hub's consumer guard enforces the rest of
// the viewer's contract: see ConsumerPolicy.
func RolePermissions(role, user string, cams []string) (*server.Permissions, error) {
	switch role {
	case RoleAdmin:
		if len(cams) > 0 {
			return nil, errors.New("an admin has every camera: remove cams")
		}
		return nil, nil
	case RoleAgent:
		if len(cams) == 0 {
			return nil, errors.New("an agent needs cams: the ids it may publish")
		}
		return AgentPermissions(cams), nil
	case RoleViewer:
		return ViewerPermissions(user, cams), nil
	default:
		return nil, fmt.Errorf("role %q: want %s, %s or %s", role, RoleAdmin, RoleAgent, RoleViewer)
	}
}

// AgentPermissions lets an agent publish its cameras' frames (JPEG or
// H.264) and status reports, exactly the subjects of the wire contract, and
// nothing else; it subscribes to nothing.
func AgentPermissions(cams []string) *server.Permissions {
	var pub []string
	for _, id := range cams {
		pub = append(pub, wire.FramesSubject(id), wire.VideoSubject(id, true), wire.VideoSubject(id, false), wire.StatusSubject(id))
	}
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: pub},
		Subscribe: &server.SubjectPermission{Deny: []string{">"}},
	}
}

// ViewerPermissions lets a viewer read cams (every camera if empty): live
// frames and status, the camera list and replay through JetStream. Replies
// come to the user's own inbox prefix (wire.InboxPrefix), so one viewer
// cannot read another's replies.
//
// A viewer reads the replay buffer through ephemeral pull consumers it
// creates; it may not list consumers, so it can use only those whose names
// it knows. camhub names its consumers with 128 random bits
// (replay.ConsumerNamePrefix), which no other user can guess or, with the
// monitoring endpoint on loopback, look up.
//
// Reading the newest or oldest message of a subject ($JS.API.STREAM.MSG.GET)
// names the subject in the request's body, not its subject, so NATS cannot
// limit it per camera: a viewer limited to some cameras may get the status
// list of all (CAMS_STATUS) but no frames through it, and so has no snapshot
// or export.
func ViewerPermissions(user string, cams []string) *server.Permissions {
	const api = "$JS.API."
	fs, ss := wire.FramesStream, wire.StatusStream
	pub := []string{
		api + "STREAM.INFO." + fs,
		api + "STREAM.INFO." + ss,
		api + "STREAM.MSG.GET." + ss,
		api + "CONSUMER.INFO." + fs + ".*",
		api + "CONSUMER.DELETE." + fs + ".*",
		api + "CONSUMER.MSG.NEXT." + fs + ".*",
		"$SYS.REQ.USER.INFO", // the server's own answer: which cameras this user may see
	}
	sub := []string{wire.InboxPrefix(user) + ".>"}
	if len(cams) == 0 {
		pub = append(pub, api+"STREAM.MSG.GET."+fs, api+"CONSUMER.CREATE."+fs+".>",
			api+"DIRECT.GET."+fs, api+"DIRECT.GET."+fs+".>")
		sub = append(sub, wire.AllFrames, wire.AllVideo, wire.AllStatus)
	}
	for _, id := range cams {
		// An ordered consumer with one filter subject is created on
		// $JS.API.CONSUMER.CREATE.<stream>.<name>.<filter>; a direct get
		// of a subject's last message on $JS.API.DIRECT.GET.<stream>.<subject>.
		pub = append(pub,
			api+"CONSUMER.CREATE."+fs+".*."+wire.FramesSubject(id),
			api+"CONSUMER.CREATE."+fs+".*."+wire.VideoFilter(id),
			api+"DIRECT.GET."+fs+"."+wire.FramesSubject(id),
			api+"DIRECT.GET."+fs+"."+wire.VideoSubject(id, true))
		sub = append(sub, wire.FramesSubject(id), wire.VideoFilter(id), wire.StatusSubject(id))
	}
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: pub},
		Subscribe: &server.SubjectPermission{Allow: sub},
	}
}

// internalUser is the hub's own in-process connection: an admin with a
// random password made at each start.
func internalUser() (*server.User, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	return &server.User{Username: "camhub-hub-internal", Password: hex.EncodeToString(b)}, nil
}
