package web

import (
	"encoding/base64"
	"strings"
	"testing"

	"camhub/internal/wire"
)

// The credentials of a request come from outside: none of their parsers
// may panic, and what they accept must be well-formed.

func FuzzParseAuthorization(f *testing.F) {
	for _, s := range []string{
		"Basic " + base64.StdEncoding.EncodeToString([]byte("frontonly:pw-frontonly")),
		"basic " + base64.StdEncoding.EncodeToString([]byte("u:p:with:colons")),
		"Basic " + base64.StdEncoding.EncodeToString([]byte("nocolon")),
		"Basic " + base64.StdEncoding.EncodeToString([]byte(":empty-user")),
		"Basic " + base64.StdEncoding.EncodeToString([]byte("a.b:pw")),
		"Basic !!!not-base64", "Basic", "Basic ", "Bearer frontonly.secret.with.dots", "Bearer .x", "Bearer x.",
		"bearer family-ha.t0ken", "Digest username=\"x\"", "", " ", "Bearer " + strings.Repeat("a", 2000) + ".x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		user, pw, ok := parseAuthorization(h)
		if !ok {
			if user != "" || pw != "" {
				t.Fatalf("refused %q but returned %q, %q", h, user, pw)
			}
			return
		}
		if wire.ValidateID(user) != nil || len(user) > maxUserLen || pw == "" || len(pw) > maxPasswordLen {
			t.Fatalf("parseAuthorization(%q) accepted user %q password of %d bytes", h, user, len(pw))
		}
	})
}

func FuzzSessionID(f *testing.F) {
	id := strings.Repeat("0123456789abcdef", 4)
	for _, s := range []string{
		SessionCookie + "=" + id, "a=b; " + SessionCookie + "=" + id + "; c=d", SessionCookie + "=" + strings.ToUpper(id),
		SessionCookie + "=" + id[:63], SessionCookie + "=" + id + "0", SessionCookie + "=\"" + id + "\"",
		SessionCookie + "=; " + SessionCookie + "=" + id, "=;;;=", "", SessionCookie,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		id, ok := sessionID(h)
		if ok != validSessionID(id) || (!ok && id != "") {
			t.Fatalf("sessionID(%q) = %q, %v", h, id, ok)
		}
		if ok && (len(id) != 2*sessionIDBytes || strings.Trim(id, "0123456789abcdef") != "") {
			t.Fatalf("sessionID(%q) accepted %q", h, id)
		}
	})
}

func FuzzParseLogin(f *testing.F) {
	for _, c := range []struct{ ct, body string }{
		{"application/x-www-form-urlencoded", "user=frontonly&password=pw-frontonly"},
		{"application/x-www-form-urlencoded; charset=UTF-8", "user=a&password=b&extra=1"},
		{"application/x-www-form-urlencoded", "user=a&user=b&password=c"},
		{"application/x-www-form-urlencoded", "user=%zz&password=c"},
		{"application/x-www-form-urlencoded", "user=&password="},
		{"application/json", `{"user":"viewer","password":"pw-viewer"}`},
		{"application/json", `{"user":"viewer","password":"pw"} {"user":"x"}`},
		{"application/json", `{"user":1}`},
		{"application/json; charset=utf-8", `{"user":"a\u0000","password":"\ud800"}`},
		{"multipart/form-data; boundary=x", "--x--"},
		{"text/plain", "user=a&password=b"},
		{"", ""},
		{"application/json;;;", "{"},
	} {
		f.Add(c.ct, c.body)
	}
	f.Fuzz(func(t *testing.T, ct, body string) {
		user, pw, _, err := parseLogin(ct, []byte(body))
		if err != nil {
			return
		}
		if user == "" || pw == "" || len(user) > maxUserLen || len(pw) > maxPasswordLen {
			t.Fatalf("parseLogin(%q, %q) accepted user %q password %q", ct, body, user, pw)
		}
	})
}

// Permissions come from the hub, but a subject matcher that panicked on
// any would take logins down: it is fuzzed too, against its definition.
func FuzzSubjectMatches(f *testing.F) {
	for _, c := range [][2]string{
		{"cams.*.frames", "cams.front.frames"}, {">", "cams.front.frames"}, {"cams.>", "cams"}, {"cams.front.frames", "cams.front.frames"},
		{"cams.*", "cams.front.frames"}, {"*.*.frames", "cams.x.frames"}, {"", ""}, {"a..b", "a..b"}, {"cams.front.>", "cams.front"},
	} {
		f.Add(c[0], c[1])
	}
	f.Fuzz(func(t *testing.T, pattern, subject string) {
		got := subjectMatches(pattern, subject)
		if strings.ContainsAny(pattern, "*>") {
			return
		}
		if got != (pattern == subject) {
			t.Fatalf("subjectMatches(%q, %q) = %v for a literal pattern", pattern, subject, got)
		}
	})
}

func TestSubjectMatches(t *testing.T) {
	for _, c := range []struct {
		p, s string
		want bool
	}{
		{"cams.*.frames", "cams.front.frames", true},
		{"cams.*.frames", "cams.front.status", false},
		{">", "cams.front.frames", true},
		{"cams.>", "cams.front.frames", true},
		{"cams.>", "cams", false},
		{"cams.front.frames", "cams.back.frames", false},
		{"cams.*", "cams.front.frames", false},
		{"cams.front.video.*", "cams.front.video.k", true},
		{"_INBOX_frontonly.>", "cams.front.frames", false},
	} {
		if got := subjectMatches(c.p, c.s); got != c.want {
			t.Errorf("subjectMatches(%q, %q) = %v, want %v", c.p, c.s, got, c.want)
		}
	}
	p := &subjectPerm{Allow: []string{"cams.>"}, Deny: []string{"cams.back.frames"}}
	if !p.allows("cams.front.frames") || p.allows("cams.back.frames") || p.allows("other.x") {
		t.Error("allow and deny lists")
	}
}
