// Package join is camhub's join token: everything a camera's agent or a
// viewer needs to connect to a secured hub, in one line of text that
// `hub camera add` and `hub user add` print and `agent --join` and
// `viewer --join` take.
//
// A token is "camhub1." followed by the unpadded base64url encoding of a
// JSON object:
//
//	{"v":1,
//	 "urls":["tls://hub.local:4222","tls://192.168.1.10:4222"],
//	 "ca":"-----BEGIN CERTIFICATE-----\n...",  // the hub's CA, pinned
//	 "user":"front", "role":"agent", "cams":["front"],
//	 "seed":"SUA...",                          // the user's NATS nkey seed
//	 "web_cert":"...", "web_key":"..."}        // optional: HTTPS for viewer --http
//
// The seed is a secret: a token is a credential. Token's String and
// LogValue hide it, and Parse's errors never quote the token.
package join

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"

	"github.com/nats-io/nkeys"

	"camhub/internal/wire"
)

// Prefix starts every token of this version.
const Prefix = "camhub1."

// Version is the v field of this version's tokens.
const Version = 1

// MaxLen is the longest token Parse reads: a CA, a web certificate and key
// fit many times over.
const MaxLen = 64 << 10

// Roles a token can carry; the hub's roles of the same names.
const (
	RoleAdmin  = "admin"
	RoleAgent  = "agent"
	RoleViewer = "viewer"
)

// ErrToken is wrapped by every error Parse returns.
var ErrToken = errors.New("bad join token")

// Token is a parsed join token.
type Token struct {
	V       int      `json:"v"`
	URLs    []string `json:"urls"`
	CA      string   `json:"ca"`
	User    string   `json:"user"`
	Role    string   `json:"role"`
	Cams    []string `json:"cams,omitempty"`
	Seed    string   `json:"seed"`
	WebCert string   `json:"web_cert,omitempty"`
	WebKey  string   `json:"web_key,omitempty"`
}

// Encode returns t as a token string. It does not validate t.
func (t *Token) Encode() (string, error) {
	b, err := json.Marshal(t)
	if err != nil {
		return "", err
	}
	return Prefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// Parse reads and checks a token: its prefix and encoding, the version,
// the URLs (tls://host:port), the CA certificate, the user name, role and
// cameras, the nkey seed, and the web certificate and key if present.
// Surrounding white space is ignored.
func Parse(s string) (*Token, error) {
	t, err := parse(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrToken, err)
	}
	return t, nil
}

func parse(s string) (*Token, error) {
	s = strings.TrimSpace(s)
	if len(s) > MaxLen {
		return nil, fmt.Errorf("%d bytes, at most %d", len(s), MaxLen)
	}
	body, ok := strings.CutPrefix(s, Prefix)
	if !ok {
		if strings.HasPrefix(s, "camhub") {
			return nil, errors.New("not a version 1 token: this camhub is too old for it, or it is cut short")
		}
		return nil, fmt.Errorf("does not start with %q", Prefix)
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(body, "="))
	if err != nil {
		return nil, errors.New("not base64url: cut short or mangled in copying?")
	}
	var t Token
	if err := json.Unmarshal(raw, &t); err != nil {
		return nil, errors.New("not JSON inside")
	}
	if t.V != Version {
		return nil, fmt.Errorf("version %d, want %d", t.V, Version)
	}
	if err := t.check(); err != nil {
		return nil, err
	}
	return &t, nil
}

func (t *Token) check() error {
	if len(t.URLs) == 0 {
		return errors.New("no hub URLs")
	}
	for _, u := range t.URLs {
		if err := checkURL(u); err != nil {
			return err
		}
	}
	if _, err := t.CAPool(); err != nil {
		return err
	}
	if err := wire.ValidateID(t.User); err != nil {
		return fmt.Errorf("user: %v", err)
	}
	switch t.Role {
	case RoleAgent:
		if len(t.Cams) == 0 {
			return errors.New("an agent's token names its cameras")
		}
	case RoleViewer:
	case RoleAdmin:
		if len(t.Cams) > 0 {
			return errors.New("an admin's token names no cameras")
		}
	default:
		return fmt.Errorf("role %q: want %s, %s or %s", t.Role, RoleAgent, RoleViewer, RoleAdmin)
	}
	if err := wire.ValidateIDs(t.Cams, 0); err != nil {
		return fmt.Errorf("cams: %v", err)
	}
	if _, err := t.KeyPair(); err != nil {
		return err
	}
	if (t.WebCert == "") != (t.WebKey == "") {
		return errors.New("web_cert and web_key go together")
	}
	if t.WebCert != "" {
		if _, err := t.WebCertificate(); err != nil {
			return err
		}
	}
	return nil
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "tls" || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return fmt.Errorf("hub URL %q: want tls://host:port", s)
	}
	if _, _, err := net.SplitHostPort(u.Host); err != nil {
		return fmt.Errorf("hub URL %q: want tls://host:port", s)
	}
	return nil
}

// CAPool returns a certificate pool holding the token's CA alone: the only
// root a client of the hub trusts.
func (t *Token) CAPool() (*x509.CertPool, error) {
	block, _ := pem.Decode([]byte(t.CA))
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("ca: no PEM certificate")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, errors.New("ca: not a certificate")
	}
	if !c.IsCA {
		return nil, errors.New("ca: not a CA certificate")
	}
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return pool, nil
}

// TLSConfig returns the client TLS configuration that trusts the token's CA
// and nothing else (no system roots).
func (t *Token) TLSConfig() (*tls.Config, error) {
	pool, err := t.CAPool()
	if err != nil {
		return nil, err
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// KeyPair returns the user's nkey pair from the seed.
func (t *Token) KeyPair() (nkeys.KeyPair, error) {
	kp, err := nkeys.FromSeed([]byte(t.Seed))
	if err != nil {
		return nil, errors.New("seed: not an nkey seed")
	}
	if p, err := kp.PublicKey(); err != nil || !nkeys.IsValidPublicUserKey(p) {
		return nil, errors.New("seed: not a user nkey seed")
	}
	return kp, nil
}

// PublicKey is the user's nkey public key ("U..."), which the hub's users
// store lists.
func (t *Token) PublicKey() (string, error) {
	kp, err := t.KeyPair()
	if err != nil {
		return "", err
	}
	return kp.PublicKey()
}

// HasWeb reports whether the token carries a web server certificate.
func (t *Token) HasWeb() bool { return t.WebCert != "" && t.WebKey != "" }

// WebCertificate returns the web server certificate and key (signed by the
// hub's CA) that `viewer --http` serves HTTPS with.
func (t *Token) WebCertificate() (tls.Certificate, error) {
	c, err := tls.X509KeyPair([]byte(t.WebCert), []byte(t.WebKey))
	if err != nil {
		return tls.Certificate{}, errors.New("web_cert/web_key: not a certificate and its key")
	}
	return c, nil
}

// WebCertPEM and WebKeyPEM are the web server certificate (chain) and key
// as PEM, empty when the token has none.
func (t *Token) WebCertPEM() string { return t.WebCert }
func (t *Token) WebKeyPEM() string  { return t.WebKey }

// String describes t without its secrets.
func (t *Token) String() string {
	return fmt.Sprintf("join token for %s %q (cams %s, hub %s)", t.Role, t.User, strings.Join(t.Cams, ","), strings.Join(t.URLs, ","))
}

// LogValue hides the token's secrets from logs.
func (t *Token) LogValue() slog.Value {
	return slog.GroupValue(slog.String("user", t.User), slog.String("role", t.Role),
		slog.String("cams", strings.Join(t.Cams, ",")), slog.String("urls", strings.Join(t.URLs, ",")))
}

// Format makes every fmt verb print String, so a stray %v or %+v of a
// token shows no secret.
func (t *Token) Format(f fmt.State, _ rune) { fmt.Fprint(f, t.String()) }
