package join_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nkeys"

	"camhub/internal/join"
)

// caPEM is a throwaway CA certificate.
func caPEM(t testing.TB, isCA bool) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: isCA,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func seed(t testing.TB) string {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	s, _ := kp.Seed()
	return string(s)
}

func valid(t testing.TB) *join.Token {
	return &join.Token{V: 1, URLs: []string{"tls://hub.local:4222", "tls://[fd00::1]:4222"}, CA: caPEM(t, true),
		User: "front", Role: join.RoleAgent, Cams: []string{"front"}, Seed: seed(t)}
}

func TestRoundTrip(t *testing.T) {
	tok := valid(t)
	s, err := tok.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s, "camhub1.") || strings.ContainsAny(s, "+/= \n") {
		t.Fatalf("token %q: want camhub1. and base64url", s[:20])
	}
	got, err := join.Parse("  " + s + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if got.User != "front" || got.Seed != tok.Seed || len(got.URLs) != 2 || got.HasWeb() {
		t.Fatalf("got %v", got)
	}
	if _, err := got.TLSConfig(); err != nil {
		t.Fatal(err)
	}
	pub, err := got.PublicKey()
	if err != nil || !nkeys.IsValidPublicUserKey(pub) {
		t.Fatalf("public key %q, %v", pub, err)
	}
}

// A token never shows its seed through fmt or slog.
func TestTokenHidesSeed(t *testing.T) {
	tok := valid(t)
	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("joined", "token", tok)
	for _, s := range []string{fmt.Sprint(tok), fmt.Sprintf("%+v", tok), fmt.Sprintf("%#v", tok), tok.String(), b.String()} {
		if strings.Contains(s, tok.Seed) || strings.Contains(s, "BEGIN") {
			t.Fatalf("shows a secret: %s", s)
		}
	}
}

func TestParseErrors(t *testing.T) {
	notCA := caPEM(t, false)
	enc := func(mod func(*join.Token)) string {
		tok := valid(t)
		mod(tok)
		s, err := tok.Encode()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for _, tc := range []struct{ name, in, want string }{
		{"empty", "", "does not start"},
		{"other", "nats://hub:4222", "does not start"},
		{"future", "camhub2.eyJ2IjoyfQ", "not a version 1 token"},
		{"not base64", "camhub1.%%%", "not base64url"},
		{"not json", "camhub1." + base64.RawURLEncoding.EncodeToString([]byte("{nope")), "not JSON"},
		{"version", enc(func(t *join.Token) { t.V = 2 }), "version 2"},
		{"no urls", enc(func(t *join.Token) { t.URLs = nil }), "no hub URLs"},
		{"plain url", enc(func(t *join.Token) { t.URLs = []string{"nats://hub:4222"} }), "want tls://host:port"},
		{"url with user", enc(func(t *join.Token) { t.URLs = []string{"tls://a:b@hub:4222"} }), "want tls://host:port"},
		{"no port", enc(func(t *join.Token) { t.URLs = []string{"tls://hub"} }), "want tls://host:port"},
		{"no ca", enc(func(t *join.Token) { t.CA = "" }), "ca: no PEM"},
		{"not a ca", enc(func(t *join.Token) { t.CA = notCA }), "not a CA"},
		{"bad user", enc(func(t *join.Token) { t.User = "a.b" }), "user"},
		{"bad role", enc(func(t *join.Token) { t.Role = "root" }), "role"},
		{"agent without cams", enc(func(t *join.Token) { t.Cams = nil }), "names its cameras"},
		{"bad cam", enc(func(t *join.Token) { t.Cams = []string{">"} }), "cams"},
		{"bad seed", enc(func(t *join.Token) { t.Seed = "SUnope" }), "seed"},
		{"account seed", enc(func(t *join.Token) { kp, _ := nkeys.CreateAccount(); s, _ := kp.Seed(); t.Seed = string(s) }), "not a user nkey"},
		{"web half", enc(func(t *join.Token) { t.WebCert = "x" }), "go together"},
		{"too long", "camhub1." + strings.Repeat("A", join.MaxLen), "at most"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := join.Parse(tc.in)
			if !errors.Is(err, join.ErrToken) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if len(tc.in) > 30 && strings.Contains(err.Error(), tc.in[10:30]) {
				t.Fatalf("the error quotes the token: %v", err)
			}
		})
	}
}
