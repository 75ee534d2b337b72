package hub

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
	"go.yaml.in/yaml/v3"
	"golang.org/x/crypto/bcrypt"

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

// User is one entry of the users file. A user logs in with its NATS nkey
// (Nkey, the public key "U...": the seed stays with the user), with a
// password, or with either. The password comes from exactly one of Password
// (a bcrypt hash, "$2a$..."), PasswordFile (plain text, first line;
// relative to the users file) or PasswordEnv (an environment variable).
type User struct {
	Name         string   `yaml:"user"`
	Role         string   `yaml:"role"`
	Cams         []string `yaml:"cams,omitempty"`
	Nkey         string   `yaml:"nkey,omitempty"`
	Password     string   `yaml:"password,omitempty"`
	PasswordFile string   `yaml:"password_file,omitempty"`
	PasswordEnv  string   `yaml:"password_env,omitempty"`
}

// usersFile is the users file's layout.
type usersFile struct {
	Users []User `yaml:"users"`
}

// LoadUsers reads the users file and returns its users that log in with a
// password as NATS users with their permissions, secrets resolved (users
// with an nkey alone are checked, not returned: see LoadAuth).
func LoadUsers(file string) ([]*server.User, error) {
	a, err := LoadAuth(file)
	if err != nil {
		return nil, err
	}
	return a.Users, nil
}

// Auth is what a users file gives the NATS server: its users by password
// and by nkey, with their permissions.
type Auth struct {
	Users []*server.User
	Nkeys []*server.NkeyUser
	// Restricted maps what the server knows a restricted user (every role
	// but admin) by, its name or its nkey, to its name.
	Restricted map[string]string
	// Names is how many users the file has.
	Names int
}

// LoadAuth reads the users file. An empty file, or one without users, is
// valid here: nobody but the hub itself may log in.
func LoadAuth(file string) (*Auth, error) {
	users, err := readUsers(file)
	if err != nil {
		return nil, err
	}
	return natsAuth(users, file)
}

// readUsers reads the users of file, unchecked.
func readUsers(file string) ([]User, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrAuth, err)
	}
	var f usersFile
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: %s: %v", ErrAuth, file, err)
	}
	return f.Users, nil
}

func natsAuth(users []User, file string) (*Auth, error) {
	a := &Auth{Restricted: map[string]string{}}
	seen := map[string]bool{}
	for i, u := range users {
		nu, nk, err := u.natsUser(filepath.Dir(file))
		if err != nil {
			return nil, fmt.Errorf("%w: %s: user %d (%q): %v", ErrAuth, file, i+1, u.Name, err)
		}
		if seen[u.Name] {
			return nil, fmt.Errorf("%w: %s: user %q twice", ErrAuth, file, u.Name)
		}
		seen[u.Name] = true
		a.Names++
		if nu != nil {
			a.Users = append(a.Users, nu)
			if nu.Permissions != nil {
				a.Restricted[nu.Username] = u.Name
			}
		}
		if nk != nil {
			if _, dup := a.Restricted[nk.Nkey]; dup || seen[nk.Nkey] {
				return nil, fmt.Errorf("%w: %s: user %q: nkey used twice", ErrAuth, file, u.Name)
			}
			seen[nk.Nkey] = true
			a.Nkeys = append(a.Nkeys, nk)
			if nk.Permissions != nil {
				a.Restricted[nk.Nkey] = u.Name
			}
		}
	}
	return a, nil
}

func (u User) natsUser(dir string) (*server.User, *server.NkeyUser, error) {
	if err := wire.ValidateID(u.Name); err != nil {
		return nil, nil, fmt.Errorf("user name: %v", err)
	}
	for _, id := range u.Cams {
		if err := wire.ValidateID(id); err != nil {
			return nil, nil, fmt.Errorf("cams: %v", err)
		}
	}
	perms, err := RolePermissions(u.Role, u.Name, u.Cams)
	if err != nil {
		return nil, nil, err
	}
	var nk *server.NkeyUser
	if u.Nkey != "" {
		if !nkeys.IsValidPublicUserKey(u.Nkey) {
			return nil, nil, errors.New("nkey: not a user public key (U...)")
		}
		nk = &server.NkeyUser{Nkey: u.Nkey, Permissions: perms}
	}
	if nk != nil && u.Password == "" && u.PasswordFile == "" && u.PasswordEnv == "" {
		return nil, nk, nil
	}
	pw, err := u.password(dir)
	if err != nil {
		return nil, nil, err
	}
	// Each login gets its own copy: the server keeps what it is given.
	return &server.User{Username: u.Name, Password: pw, Permissions: clonePerms(perms)}, nk, nil
}

func clonePerms(p *server.Permissions) *server.Permissions {
	if p == nil {
		return nil
	}
	c := *p
	if p.Publish != nil {
		pub := *p.Publish
		c.Publish = &pub
	}
	if p.Subscribe != nil {
		sub := *p.Subscribe
		c.Subscribe = &sub
	}
	return &c
}

func (u User) password(dir string) (string, error) {
	n := 0
	for _, s := range []string{u.Password, u.PasswordFile, u.PasswordEnv} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		return "", errors.New("give an nkey, or exactly one of password (a bcrypt hash), password_file or password_env, or both")
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
// H.264), their small tier's, and status reports, exactly the subjects of
// the wire contract, and nothing else; it subscribes to nothing.
func AgentPermissions(cams []string) *server.Permissions {
	var pub []string
	for _, id := range cams {
		pub = append(pub, wire.FramesSubject(id), wire.VideoSubject(id, true), wire.VideoSubject(id, false), wire.StatusSubject(id),
			wire.LoFramesSubject(id), wire.LoVideoSubject(id, true), wire.LoVideoSubject(id, false))
	}
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: pub},
		Subscribe: &server.SubjectPermission{Deny: []string{">"}},
	}
}

// ViewerPermissions lets a viewer read cams (every camera if empty): live
// frames (both tiers), status, motion and snapshots, the camera list, Home
// Assistant's discovery configs (and say Home Assistant started), and the replay buffer,
// events and event clips through JetStream. Replies
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
// list of all (CAMS_STATUS) that way, but no frames; it reads its cameras'
// newest frames with direct gets, and their oldest, events and clips
// through consumers filtered to them, which the permissions name.
func ViewerPermissions(user string, cams []string) *server.Permissions {
	const api = "$JS.API."
	fs, ss, es, cs := wire.FramesStream, wire.StatusStream, wire.EventsStream, wire.ClipsStream
	pub := []string{
		api + "STREAM.INFO." + ss,
		api + "STREAM.MSG.GET." + ss,
		// Who am I and what may I do: the web viewer checks a login
		// and reads its cameras with this.
		UserInfoSubject,
	}
	// The replay buffer, events and clips are read alike: through
	// consumers the viewer creates (per camera, below) and then uses.
	for _, st := range []string{fs, es, cs} {
		pub = append(pub,
			api+"STREAM.INFO."+st,
			api+"CONSUMER.INFO."+st+".*",
			api+"CONSUMER.DELETE."+st+".*",
			api+"CONSUMER.MSG.NEXT."+st+".*")
	}
	// Home Assistant's discovery configs (which name every camera, as the
	// status list does) and its birth message, over MQTT. MQTT's QoS 1
	// and 2 subscriptions deliver through $MQTT.sub.> subjects that
	// would show a viewer other sessions' messages: viewers subscribe
	// with QoS 0, which is what Home Assistant does.
	pub = append(pub, wire.HAStatus)
	// (an MQTT subscription to homeassistant/# is also one to its parent
	// level, homeassistant)
	sub := []string{wire.InboxPrefix(user) + ".>", wire.AllHA, wire.HAPrefix}
	if len(cams) == 0 {
		pub = append(pub, api+"STREAM.MSG.GET."+fs, api+"CONSUMER.CREATE."+fs+".>",
			api+"DIRECT.GET."+fs, api+"DIRECT.GET."+fs+".>",
			api+"CONSUMER.CREATE."+es+".>", api+"CONSUMER.CREATE."+cs+".>")
		sub = append(sub, wire.AllFrames, wire.AllVideo, wire.AllStatus, wire.AllMotion, wire.AllEvents, wire.AllSnapshots,
			wire.AllLoFrames, wire.AllLoVideo)
	}
	for _, id := range cams {
		// An ordered consumer with one filter subject is created on
		// $JS.API.CONSUMER.CREATE.<stream>.<name>.<filter>; a direct get
		// of a subject's last message on $JS.API.DIRECT.GET.<stream>.<subject>.
		pub = append(pub,
			api+"CONSUMER.CREATE."+fs+".*."+wire.FramesSubject(id),
			api+"CONSUMER.CREATE."+fs+".*."+wire.VideoFilter(id),
			api+"DIRECT.GET."+fs+"."+wire.FramesSubject(id),
			api+"DIRECT.GET."+fs+"."+wire.VideoSubject(id, true),
			// its events, and the clips of any of its events
			api+"CONSUMER.CREATE."+es+".*."+wire.EventsSubject(id),
			api+"CONSUMER.CREATE."+cs+".*."+wire.ClipFilter("*", id))
		sub = append(sub, wire.FramesSubject(id), wire.VideoFilter(id), wire.StatusSubject(id),
			wire.MotionSubject(id), wire.EventsSubject(id), wire.SnapshotSubject(id),
			wire.LoFramesSubject(id), wire.LoVideoFilter(id))
	}
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: pub},
		Subscribe: &server.SubjectPermission{Allow: sub},
	}
}

// UserInfoSubject is where a client asks the server who it is logged in as
// and with which permissions (the reply goes to its own inbox).
const UserInfoSubject = "$SYS.REQ.USER.INFO"

// internalUser is the hub's own in-process connection: an admin with a
// random password made at each start, returned with the server's user,
// which holds its bcrypt hash (of the lowest cost: 192 random bits need no
// stretching; a hash keeps nats-server from warning of a plain password).
func internalUser() (*server.User, string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return nil, "", err
	}
	pw := hex.EncodeToString(b)
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		return nil, "", err
	}
	return &server.User{Username: internalUserName, Password: string(h)}, pw, nil
}

// internalUserName is the hub's own user, which no users file may have.
const internalUserName = "camhub-hub-internal"
